"""Building the published files: feeds (RSS, Atom, JSON Feed), OPML and HTML pages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Output:
    """One file to publish under the destination."""

    path: str
    body: bytes
    content_type: str
