"""The registry of output kinds: every file a feed, or one archive page of it, is published as.

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
from digestpub.state.parts import Tombstone

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
    page: int | None = None
    """The archive page; ``None`` for the subscription documents."""
    complete_pages: int = 0
    """How many of the feed's pages are complete once the run is done."""
    span: tuple[datetime, datetime] | None = None
    """The oldest and newest ``published`` an archive page shows."""
    tombstones: tuple[Tombstone, ...] = ()
    """Summaries that left the feed lately: Atom says so (RFC 6721)."""
    recent_months: tuple[tuple[str, int], ...] = ()
    """The feed's summaries in each of its last twelve months (``YYYY-MM``), oldest first."""

    @property
    def complete(self) -> bool:
        """The subscription documents hold the feed's whole history: no page is complete yet."""
        return self.complete_pages == 0

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
    path: Callable[[Site, str, int | None], str]
    """Where a feed's file of this kind lives, by feed and page (``None`` for the subscription documents)."""
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
    """Every kind a complete archive page is published as (JSON Feed has no archive standard)."""
    from digestpub.render import archive_page, atom, rss

    return (rss.KIND, atom.KIND, archive_page.KIND)
