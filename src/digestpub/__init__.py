"""digestpub: per-tag feeds, tag pages and email digests from paper summaries."""

from __future__ import annotations

__version__ = "0.1.0"
