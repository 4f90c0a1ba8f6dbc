"""The registry of output kinds: every file a feed is published as.

A kind declares where its file lives, its content type, how one summary's entry
is rendered and the frame around the entries. Adding an output to every feed is
one module beside this one (and its template), named in ``all_kinds``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from digestpub.model import TagInfo
from digestpub.render import Frame
from digestpub.site import ALL_FEED, Site

if TYPE_CHECKING:
    from digestpub.render.entries import EntryBatch


@dataclass(frozen=True)
class FeedView:
    """What a feed's frame shows besides its entries."""

    site: Site
    feed: str
    """``ALL_FEED`` or a tag's slug."""
    tag: TagInfo | None
    all_tags: Mapping[str, TagInfo]
    updated: datetime | None
    """The newest version among the feed's shown items; ``None`` when it shows none."""

    @property
    def empty(self) -> bool:
        return self.updated is None

    @property
    def is_everything(self) -> bool:
        return self.feed == ALL_FEED


@dataclass(frozen=True)
class Kind:
    name: str
    """Stable: the state records each feed's published files by it."""
    content_type: str
    separator: bytes
    """What goes between two entries."""
    path: Callable[[Site, str], str]
    """Where a feed's file of this kind lives, by feed."""
    entries: Callable[[EntryBatch], list[bytes]]
    """Each summary's entry, in the batch's order."""
    frame: Callable[[FeedView], Frame]

    def fill(self, frame: Frame, entries: Sequence[bytes | memoryview]) -> bytes:
        return b"".join((frame.head, self.separator.join(entries), frame.tail))


@cache
def all_kinds() -> tuple[Kind, ...]:
    """Every kind, in the order a run renders them."""
    from digestpub.render import atom, jsonfeed, page, rss

    return (rss.KIND, atom.KIND, jsonfeed.KIND, page.KIND)
