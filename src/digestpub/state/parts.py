"""How each part of the state is held in memory and serialised.

- the head (``Head``): tags and their counts, the listing cursor, and the file and
  checksum of every other part;
- seen: the version tag of each source object of one month, and the ids it held
  when last read, so a run knows what an object took with it when it is gone;
- ids: 256 shards, by id hash, of each summary's newest version (``IdEntry``),
  the ids recorded since the shards were last written, and the sorted hashes of
  every id, so a new id is told new without reading its shard;
- windows: a line per feed, its newest items (a few more than ``feed_size``, so
  an edit that drops an item leaves the feed full) and its files as published,
  with where each entry sits in them. A run parses only the lines of the feeds
  it touches;
- pages: each feed's complete archive pages (``page_size`` summaries each, numbered
  from the oldest), in the same lines, spread over a few files by the hash of
  ``<feed>/<page>``: a run reads a page only to correct it;
- tallies: per feed, each page's count, date range, newest version and counts per
  month, for the archive indexes and the sitemap.
"""

from __future__ import annotations

import bisect
import hashlib
import sys
import zlib
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import AliasChoices, BaseModel, Field, TypeAdapter

from digestpub.model import Problem, TagInfo
from digestpub.site import ALL_FEED

STATE_FORMAT = 7
"""7: archives are pages numbered from the oldest, fixed when each summary is first published."""


class Announcement(BaseModel):
    """The feeds a run changed, for the WebSub hubs, recorded in the head it commits.

    The hubs are told once the head is written; a run stopped between the two
    (a killed process, a function's time limit) leaves no report, and the next
    run tells the hubs in its place.
    """

    report: str
    """The state key of the run's report: there once the run has told the hubs."""
    topics: list[str]


class Head(BaseModel):
    format: int = STATE_FORMAT
    cursor: str | None = None
    last_full_scan: datetime | None = None
    total: int = 0
    tags: dict[str, TagInfo] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    """Hashes of the files published outside any feed (the OPML list), by path."""
    skipped: dict[str, list[Problem]] = Field(default_factory=dict, validation_alias=AliasChoices("skipped", "broken"))
    """Skipped inputs by key, kept until the object changes, so every run reports them."""
    rendering: str | None = None
    """A hash of the site settings, templates and versions the published files were rendered with."""
    parts: dict[str, str] = Field(default_factory=dict)
    """Each part's file, by the part's name."""
    checksums: dict[str, str] = Field(default_factory=dict)
    """The checksum of each part's file, by the part's name: a file that does not match is refused."""
    page_size: int | None = None
    """Summaries per archive page: fixed at a site's first run, so a later setting cannot renumber it."""
    corrections_due: dict[str, str] = Field(default_factory=dict)
    """Per feed, when its oldest correction leaves its subscription documents (``sortable_time`` text)."""
    announcing: Announcement | None = None
    """What the run that last changed feeds had to tell the hubs."""
    id_authority: str | None = None
    """``host,year`` of every ``tag:`` id, fixed at the site's first run (``identity``); none: an older state."""


HEAD = TypeAdapter(Head)
SeenObject = tuple[str, list[str]]
"""A source object as last read: its version tag, and the ids of the summaries it held."""
SEEN = TypeAdapter(dict[str, SeenObject])


def checksum(data: bytes) -> str:
    # SHA-256: CPUs run it in hardware, faster than BLAKE2 on state-sized bytes.
    return hashlib.sha256(data).hexdigest()[:32]


@dataclass(slots=True)
class IdEntry:
    """Where the published version of one summary came from, and what it carried.

    ``version`` is ``sortable_time`` text. A plain dataclass read and written with
    orjson: a cold run records tens of thousands.
    """

    version: str
    key: str
    digest: str
    slugs: list[str]
    positions: list[int]
    """Its place in the order of first publication of each of its feeds: everything, then ``slugs``.
    It fixes the archive page that holds it there (``position // page_size + 1``)."""

    def position(self, feed: str) -> int | None:
        """Its place in ``feed`` (``ALL_FEED`` or a slug), ``None`` where it is not in that feed."""
        if feed == ALL_FEED:
            return self.positions[0]
        try:
            return self.positions[1 + self.slugs.index(feed)]
        except ValueError:
            return None


def ids_from_json(data: bytes) -> dict[str, IdEntry]:
    return {summary_id: IdEntry(*row) for summary_id, row in orjson.loads(data).items()}


def ids_to_json(ids: dict[str, IdEntry]) -> bytes:
    return orjson.dumps(
        {summary_id: (e.version, e.key, e.digest, e.slugs, e.positions) for summary_id, e in ids.items()}
    )


ID_SHARDS = 256
"""About 200 ids a shard at 50,000 summaries: a run reads one small shard per new id,
and writes them all only when it folds the recent ids in."""


def id_shard(summary_id: str) -> str:
    digest = hashlib.blake2b(summary_id.encode("utf-8", "surrogatepass"), digest_size=2).digest()
    return f"{int.from_bytes(digest, 'big') % ID_SHARDS:03x}"


_KNOWN_IDS_HEADER = b"digestpub known id hashes 1\n"


def id_hash(summary_id: str) -> int:
    # CRC-32: a hash shared by two ids only costs a shard read, and it is cheap.
    return zlib.crc32(summary_id.encode("utf-8", "surrogatepass"))


def holds(hashes: array[int], value: int) -> bool:
    at = bisect.bisect_left(hashes, value)
    return at < len(hashes) and hashes[at] == value


def known_from_bytes(data: bytes) -> array[int]:
    if not data.startswith(_KNOWN_IDS_HEADER):
        raise ValueError("it does not start as a file of known id hashes does")
    hashes = array("I")
    hashes.frombytes(data[len(_KNOWN_IDS_HEADER) :])
    if sys.byteorder == "big":
        hashes.byteswap()
    return hashes


def known_to_bytes(hashes: array[int]) -> bytes:
    if sys.byteorder == "big":
        hashes = array("I", hashes)
        hashes.byteswap()
    return _KNOWN_IDS_HEADER + hashes.tobytes()


@dataclass(slots=True)
class WindowItem:
    """One summary in a feed's window: enough to order it and to render its entry again.

    Times are ``sortable_time`` text. ``key`` and ``line`` say where the summary
    was read, to render it again when its bytes cannot be cut out of a published file.
    ``position`` is its place in the feed's order of first publication.
    """

    id: str
    published: str
    version: str
    key: str
    line: int | None
    position: int

    def __reduce__(self) -> tuple[type[WindowItem], tuple[Any, ...]]:
        # Forked writers send a cold run's windows back: as constructor
        # arguments they unpickle faster than as slot state.
        return (WindowItem, (self.id, self.published, self.version, self.key, self.line, self.position))


@dataclass(slots=True)
class PublishedFile:
    """One of a feed's files as last published: to skip an identical upload, and to cut entries from."""

    digest: str
    """Hash of the bytes."""
    version: str
    """The destination's version tag for them: bytes that no longer match it are not used."""
    head: int
    """Bytes before the first entry."""
    sizes: list[int]
    """The byte length of each entry in it: those of the items it shows (``Window.shown``), in order."""


@dataclass(slots=True)
class Tombstone:
    """A summary that left a feed: Atom documents say so (RFC 6721) until ``until``."""

    id: str
    when: str
    until: str


@dataclass(slots=True)
class Window:
    """What a feed's subscription documents hold, or one archive page of it, and its files as last published.

    A subscription window's ``items`` are its newest (a few more than it shows),
    every item of its open page (``position`` from ``opened``) and its
    corrections, newest first. A page's ``items`` are all of its own.
    """

    items: list[WindowItem] = field(default_factory=list)
    files: dict[str, PublishedFile] = field(default_factory=dict)
    """By output kind (``render.kinds``)."""
    positions: int = 0
    """Summaries the feed has placed in its order of first publication: the next one's ``position``."""
    corrections: dict[str, str] = field(default_factory=dict)
    """Corrected summaries of complete pages, by id, with when they leave the subscription documents."""
    tombstones: list[Tombstone] = field(default_factory=list)


@dataclass(slots=True)
class PageTally:
    """One page of a feed, in numbers: for the archive indexes and the sitemap. Times are ``sortable_time`` text."""

    count: int
    oldest: str
    """The oldest ``published`` among its items ("" for an empty page); ``newest`` likewise."""
    newest: str
    version: str
    """The newest version among its items: the page's ``lastmod``."""
    months: dict[str, int]
    """How many of its items were published in each month (``YYYY-MM``, in the site's time zone)."""


Tallies = dict[str, list[PageTally]]
"""Per feed, each of its complete pages in order, page 1 first, then its open page."""


def tallies_from_json(data: bytes) -> Tallies:
    return {feed: [PageTally(*row) for row in rows] for feed, rows in orjson.loads(data).items()}


def tallies_to_json(tallies: Tallies) -> bytes:
    return orjson.dumps(
        {
            feed: [(page.count, page.oldest, page.newest, page.version, page.months) for page in pages]
            for feed, pages in sorted(tallies.items())
        }
    )


PAGE_SHARDS = 64
"""Files the complete pages are spread over: a run that corrects or completes a few pages rewrites a few of them."""


def page_name(feed: str, page: int) -> str:
    return f"{feed}/{page}"


def page_shard(name: str) -> str:
    digest = hashlib.blake2b(name.encode(), digest_size=2).digest()
    return f"{int.from_bytes(digest, 'big') % PAGE_SHARDS:02x}"


_WINDOW_LINE_START = b'{"feed":"'


def window_from_line(line: bytes) -> Window:
    rows = orjson.loads(line)
    return Window(
        [WindowItem(*item) for item in rows["items"]],
        _files_from_rows(rows["files"]),
        rows.get("positions", 0),
        rows.get("corrections", {}),
        [Tombstone(*row) for row in rows.get("tombstones", ())],
    )


def _files_from_rows(rows: dict[str, list[Any]]) -> dict[str, PublishedFile]:
    return {kind: PublishedFile(*published) for kind, published in rows.items()}


def _files_to_rows(files: dict[str, PublishedFile]) -> dict[str, tuple[str, str, int, list[int]]]:
    return {kind: (file.digest, file.version, file.head, file.sizes) for kind, file in files.items()}


def window_line(feed: str, window: Window) -> bytes:
    # Rows rather than objects: one file holds every feed's window. The feed
    # first, so a line says whose it is without being parsed.
    line: dict[str, Any] = {
        "feed": feed,
        "items": [(item.id, item.published, item.version, item.key, item.line, item.position) for item in window.items],
        "files": _files_to_rows(window.files),
    }
    if window.positions:
        line["positions"] = window.positions
    if window.corrections:
        line["corrections"] = window.corrections
    if window.tombstones:
        line["tombstones"] = [(stone.id, stone.when, stone.until) for stone in window.tombstones]
    return orjson.dumps(line)


def window_lines(data: bytes) -> dict[str, bytes]:
    """Each feed's line, by feed, found without parsing the lines (slugs need no JSON escapes)."""
    lines: dict[str, bytes] = {}
    for line in data.splitlines():
        if not line:
            continue
        if not line.startswith(_WINDOW_LINE_START):
            raise ValueError(f"a line starts with {line[:20]!r}, not with its feed")
        end = line.index(b'"', len(_WINDOW_LINE_START))
        lines[line[len(_WINDOW_LINE_START) : end].decode()] = line
    return lines


def windows_file(lines: dict[str, bytes]) -> bytes:
    return b"".join(lines[feed] + b"\n" for feed in sorted(lines))
