"""The version, in one place: the package metadata, feeds' generator tag and the command read it."""

__version__ = "0.1.0"
