"""The registry of output kinds: every file a feed, or one month's archive of it, is published as.

A kind declares where its file lives, its content type, how one summary's entry
is rendered and the frame around the entries. Adding an output to every feed is
one module beside this one (and its template), named in ``all_kinds``; an
archive kind (``archive_kinds``) shares its name and entries with the
subscription kind it archives, so each entry is rendered once for both.
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
    month: str | None = None
    """The UTC month (``YYYY-MM``) of an archive; ``None`` for the subscription feed."""
    months: tuple[str, ...] = ()
    """The feed's months that hold any item, oldest first."""
    complete: bool = True
    """The subscription feed shows the feed's whole history."""

    def neighbours(self) -> tuple[str | None, str | None]:
        """The months before and after this archive's that hold any item."""
        assert self.month is not None
        older = [month for month in self.months if month < self.month]
        newer = [month for month in self.months if month > self.month]
        return (older[-1] if older else None, newer[0] if newer else None)

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
    path: Callable[[Site, str, str | None], str]
    """Where a feed's file of this kind lives, by feed and month (``None`` for the subscription feed)."""
    entries: Callable[[EntryBatch], list[bytes]]
    """Each summary's entry, in the batch's order."""
    frame: Callable[[FeedView], Frame]

    def fill(self, frame: Frame, entries: Sequence[bytes | memoryview]) -> bytes:
        if not entries:
            return frame.head + frame.tail
        # One join over every piece: a month's archive is megabytes, and joining the
        # entries first would copy them twice and hold both copies at once.
        pieces: list[bytes | memoryview] = [self.separator] * (2 * len(entries) + 1)
        pieces[0], pieces[-1] = frame.head, frame.tail
        pieces[1:-1:2] = entries
        return b"".join(pieces)


@cache
def all_kinds() -> tuple[Kind, ...]:
    """Every kind, in the order a run renders them."""
    from digestpub.render import atom, jsonfeed, page, rss

    return (rss.KIND, atom.KIND, jsonfeed.KIND, page.KIND)


@cache
def archive_kinds() -> tuple[Kind, ...]:
    """Every kind a month's archive is published as (JSON Feed has no archive standard)."""
    from digestpub.render import atom, month, rss

    return (rss.KIND, atom.KIND, month.KIND)
