"""What an output kind is: every file a feed, or one archive page of it, is published as.

A kind declares where its file lives, its content type, how one summary's entry
is rendered and the frame around the entries; a feed format adds its file name
and the name people know it by. This module holds only the declarations' shape:
the lists of kinds are ``render.feed_formats`` (the feed formats, one line each)
and ``render.registry`` (every kind a run renders, the web pages among them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from digestpub.model import TagInfo
from digestpub.render import Frame
from digestpub.site import ALL_FEED, Site
from digestpub.state.parts import Tombstone

if TYPE_CHECKING:
    from digestpub.render.batch import EntryBatch


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
class CombinedView:
    """What a feed of several tags says of itself around its entries."""

    site: Site
    feed_id: str
    title: str
    description: str
    url: str
    """Its own address: the combined feed endpoint's one URL for its tags."""
    updated: datetime | None


@dataclass(frozen=True)
class Combining:
    """How a feed format serves a feed of several tags: from its own published tag documents,
    so that a reader who moves there from the tag feeds meets the same entries under the same ids."""

    entries: Callable[[bytes], dict[str, bytes]]
    """Each entry of a published document of this format, by its id."""
    frame: Callable[[CombinedView], Frame]


@dataclass(frozen=True)
class Kind:
    name: str
    """Stable: the state records each feed's published files by it, and the combined feed's ``format`` names it."""
    content_type: str
    separator: bytes
    """What goes between two entries."""
    path: Callable[[Site, str, int | None], str]
    """Where a feed's file of this kind lives, by feed and page (``None`` for the subscription documents)."""
    entries: Callable[[EntryBatch], list[bytes]]
    """Each summary's entry, in the batch's order."""
    frame: Callable[[FeedView], Frame]
    label: str = ""
    """The name people know a feed format by, in links and menus."""
    file_name: str = ""
    """A feed format's file, in each feed's folder; empty for a kind that is no feed format."""
    archived: bool = False
    """A feed's complete pages are published in this kind too (RFC 5005)."""
    preferred: bool = False
    """The feed format a reader gets who names none: the OPML's, and the combined feed's by default."""
    combining: Combining | None = None
    """A feed format that serves feeds of several tags; one without is not offered for them."""

    @property
    def media_type(self) -> str:
        """The content type without its parameters, as ``type`` attributes name it."""
        return self.content_type.split(";")[0]

    def url(self, site: Site, feed: str, page: int | None = None) -> str:
        return site.url(self.path(site, feed, page))

    def tags_url(self, site: Site, slugs: Iterable[str]) -> str:
        """The combined feed of ``slugs`` (the endpoint's one URL for them: sorted, comma-separated);
        no slug is every summary, as for a subscriber with no tags."""
        ordered = sorted(set(slugs))
        if not ordered:
            return self.url(site, ALL_FEED)
        return site.api(f"feed?tags={','.join(ordered)}&format={self.name}")

    def fill(self, frame: Frame, entries: Sequence[bytes | memoryview]) -> bytes:
        if not entries:
            return frame.head + frame.tail
        # One join over every piece: a month's archive is megabytes, and joining the
        # entries first would copy them twice and hold both copies at once.
        pieces: list[bytes | memoryview] = [self.separator] * (2 * len(entries) + 1)
        pieces[0], pieces[-1] = frame.head, frame.tail
        pieces[1:-1:2] = entries
        return b"".join(pieces)


@dataclass(frozen=True)
class InFeedFolder:
    """The path of a feed format's file: ``file_name`` in the feed's folder, or in its archive page's."""

    file_name: str

    def __call__(self, site: Site, feed: str, page: int | None) -> str:
        return site.feed_path(feed, self.file_name, page)


def feed_format(
    name: str,
    label: str,
    content_type: str,
    file_name: str,
    separator: bytes,
    entries: Callable[[EntryBatch], list[bytes]],
    frame: Callable[[FeedView], Frame],
    *,
    archived: bool,
    preferred: bool = False,
    combining: Combining | None = None,
) -> Kind:
    """A kind that is a feed format: a file of its own in each feed's folder."""
    return Kind(
        name,
        content_type,
        separator,
        InFeedFolder(file_name),
        entries,
        frame,
        label=label,
        file_name=file_name,
        archived=archived,
        preferred=preferred,
        combining=combining,
    )
