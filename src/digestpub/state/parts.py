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
- months: a file per UTC month of ``published_at``, in the same lines: each
  feed's archive of that month (every item of the month, and its archive files
  as published). A run reads only the months it touches; the head counts each
  feed's items per month, for the links between months and the sitemap.
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
from pydantic import BaseModel, Field, TypeAdapter

from digestpub.model import Problem, TagInfo

STATE_FORMAT = 6
"""6: seen records the ids each source object held, so a deleted object's summaries can leave the site."""


class MonthTally(BaseModel):
    """One feed's items in one month: how many, and the newest version among them (``sortable_time`` text)."""

    count: int
    newest: str


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
    broken: dict[str, list[Problem]] = Field(default_factory=dict)
    """Skipped inputs by key, kept until the object changes, so every run reports them."""
    rendering: str | None = None
    """A hash of the site settings, templates and versions the published files were rendered with."""
    parts: dict[str, str] = Field(default_factory=dict)
    """Each part's file, by the part's name."""
    checksums: dict[str, str] = Field(default_factory=dict)
    """The checksum of each part's file, by the part's name: a file that does not match is refused."""
    months: dict[str, dict[str, MonthTally]] = Field(default_factory=dict)
    """Per feed, its non-empty UTC months (``YYYY-MM``), oldest first."""
    announcing: Announcement | None = None
    """What the run that last changed feeds had to tell the hubs."""


HEAD = TypeAdapter(Head)
SeenObject = tuple[str, list[str]]
"""A source object as last read: its version tag, and the ids of the summaries it held."""
SEEN = TypeAdapter(dict[str, SeenObject])


def checksum(data: bytes) -> str:
    # SHA-256 runs in hardware here, over twice as fast as BLAKE2 on state-sized bytes.
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
    month: str
    """The UTC month (``YYYY-MM``) of its ``published_at``: whose archives hold it."""


def ids_from_json(data: bytes) -> dict[str, IdEntry]:
    return {summary_id: IdEntry(*row) for summary_id, row in orjson.loads(data).items()}


def ids_to_json(ids: dict[str, IdEntry]) -> bytes:
    return orjson.dumps({summary_id: (e.version, e.key, e.digest, e.slugs, e.month) for summary_id, e in ids.items()})


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
    """

    id: str
    published: str
    version: str
    key: str
    line: int | None

    def __reduce__(self) -> tuple[type[WindowItem], tuple[Any, ...]]:
        # Forked writers send a cold run's 30,000 of these back: as constructor
        # arguments they unpickle five times faster than as slot state.
        return (WindowItem, (self.id, self.published, self.version, self.key, self.line))


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
    """The byte length of each entry in it: those of the window's first items, in order."""


@dataclass(slots=True)
class Window:
    """A feed's newest items (a few more than it shows) and its files as last published."""

    items: list[WindowItem] = field(default_factory=list)
    files: dict[str, PublishedFile] = field(default_factory=dict)
    """By output kind (``render.kinds``)."""


_WINDOW_LINE_START = b'{"feed":"'


def window_from_line(line: bytes) -> Window:
    rows = orjson.loads(line)
    return Window(
        [WindowItem(*item) for item in rows["items"]],
        {kind: PublishedFile(*published) for kind, published in rows["files"].items()},
    )


def window_line(feed: str, window: Window) -> bytes:
    # Rows rather than objects: one file holds every feed's window. The feed
    # first, so a line says whose it is without being parsed.
    return orjson.dumps(
        {
            "feed": feed,
            "items": [(item.id, item.published, item.version, item.key, item.line) for item in window.items],
            "files": {kind: (file.digest, file.version, file.head, file.sizes) for kind, file in window.files.items()},
        }
    )


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
