"""Building the published files: feeds (RSS, Atom, JSON Feed), OPML and HTML pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Format = Literal["rss", "atom", "json", "page"]
FORMATS: tuple[Format, ...] = ("rss", "atom", "json", "page")
"""The files of every feed, in the order their frames and entry sizes are kept."""
SEPARATORS: dict[Format, bytes] = {"rss": b"\n", "atom": b"\n", "json": b",", "page": b"\n"}
"""What goes between two entries in each file."""


@dataclass(frozen=True)
class Output:
    """One file to publish under the destination."""

    path: str
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Frame:
    """A feed or page around its entries: ``head``, the entries between ``separator``, ``tail``.

    Every feed file and page has this shape, so a run can keep the bytes of the
    entries it did not change and cut them out of the file it published last time.
    """

    path: str
    content_type: str
    head: bytes
    tail: bytes
    separator: bytes

    def fill(self, entries: Sequence[bytes | memoryview]) -> bytes:
        return b"".join((self.head, self.separator.join(entries), self.tail))


def framed(kind: Format, path: str, content_type: str, document: str, closing: str) -> Frame:
    """``document`` cut before its last ``closing`` marker, where the entries go."""
    cut = document.rindex(closing)
    ending = "" if document.endswith("\n") else "\n"
    return Frame(path, content_type, document[:cut].encode(), (document[cut:] + ending).encode(), SEPARATORS[kind])
