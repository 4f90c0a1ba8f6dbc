"""The publish state: what was seen, each summary's newest version, each feed's window.

State is split so a run loads only what it touches, and cost follows the new
summaries rather than the history. Its parts, by name (each part's file is the
name with the id of the run that wrote it, ``catalog/ids/0a3.<run>.json``):

- ``catalog/head.json``: tags and their counts, the listing cursor, index hashes,
  and the file of every other part; the one file under its own name;
- ``catalog/seen/YYYY/MM.json``: version tags of the source objects of one month;
- ``catalog/ids/XYZ.json``: one of 256 shards, by id hash, of each summary's newest version;
  ``catalog/ids/recent.json`` holds those recorded since the shards were last written,
  and ``catalog/ids/known.bin`` the sorted hashes of every id, so a new id is told new
  without reading its shard;
- ``catalog/log/YYYY/MM/DD/<run>.jsonl``: what each run of that day published, for
  newsletters; a file per run, under its own name;
- ``catalog/windows.jsonl``: a line per feed, its newest items (a few more than
  ``feed_size``, so an edit that drops an item leaves the feed full) and its files
  as published. Items hold where their entries sit in those files, not the
  entries: a run copies the entries it did not change out of the files it
  published last time. A run parses only the lines of the feeds it touches.

Parts are never rewritten in place: a run writes each part it changed under a
new name, and then the head, which names the current file of every part. The
head is the one write that commits a run, so a run stopped on the way (a
function's time limit, a killed process) leaves the state as it was, and the
next run does its work again. The files the head no longer names are deleted
once it is written. The newsletter log is the exception: a run's log file is
written before its head, so a stopped run may log a summary that the next run
logs again; an issue leaves out what the last one carried, so no reader gets
it twice, and none misses it.

The head is written on the condition that it is still the version the run
read, and a run holds ``lock.json`` while it works, so overlapping runs never
lose an update.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import re
import socket
import sys
import time
import uuid
import zlib
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from digestpub.errors import PreconditionFailed, StateLocked, StorageError
from digestpub.model import Problem, Summary, SummaryRef, TagInfo
from digestpub.ports import ObjectStore

log = logging.getLogger("digestpub.catalog")

STATE_FORMAT = 3
"""3: the head names each part's file. 2: parts under fixed names (still read, and
converted by the next run that saves)."""
_READABLE_FORMATS = (2, 3)
ALL_FEED = "_all"
"""The feed of every summary; a slug never starts with ``_``, so it cannot clash."""

HEAD_KEY = "catalog/head.json"
WINDOWS_KEY = "catalog/windows.jsonl"
_WINDOWS_IN_ONE_DOCUMENT_KEY = "catalog/windows.json"
"""Every window in one JSON document, as earlier builds wrote them: read once, then replaced."""
RECENT_IDS_KEY = "catalog/ids/recent.json"
KNOWN_IDS_KEY = "catalog/ids/known.bin"
"""A hash of every id ever recorded, sorted: a new id is told new without reading its shard."""
RECENT_IDS_LIMIT = 2_000
_LOCK_KEY = "lock.json"


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


def _ids_from_json(data: bytes) -> dict[str, IdEntry]:
    return {summary_id: IdEntry(*row) for summary_id, row in orjson.loads(data).items()}


def _ids_to_json(ids: dict[str, IdEntry]) -> bytes:
    return orjson.dumps({summary_id: (e.version, e.key, e.digest, e.slugs) for summary_id, e in ids.items()})


@dataclass(slots=True)
class WindowItem:
    """One summary in a feed's window: enough to order it and to find its entry again.

    Times are ``sortable_time`` text. ``sizes`` are the byte lengths of its entry in
    each of the feed's published files (``render.entries.FORMATS`` order), so a later
    run can cut the entry out of them instead of rendering it again; ``None`` for
    the few items kept below the shown ones. ``key`` and ``line`` say where the
    summary was read, to render it again when its bytes cannot be cut out.
    """

    id: str
    published: str
    version: str
    key: str
    line: int | None
    sizes: list[int] | None = None

    def __reduce__(self) -> tuple[type[WindowItem], tuple[Any, ...]]:
        # Forked writers send a cold run's 30,000 of these back: as constructor
        # arguments they unpickle five times faster than as slot state.
        return (WindowItem, (self.id, self.published, self.version, self.key, self.line, self.sizes))


@dataclass(slots=True)
class PublishedFile:
    """A feed file or page as last published: to skip an identical upload, and to cut entries from."""

    digest: str
    """Hash of the bytes."""
    version: str
    """The destination's version tag for them: bytes that no longer match it are not used."""
    head: int
    """Bytes before the first entry."""


@dataclass(slots=True)
class Window:
    """A feed's newest items (a few more than it shows) and its files as last published."""

    items: list[WindowItem] = field(default_factory=list)
    files: dict[str, PublishedFile] = field(default_factory=dict)
    """By format: ``rss``, ``atom``, ``json``, ``page``."""


_WindowRows = dict[str, Any]
"""A window as stored: ``{"items": [row, ...], "files": {kind: row}}``."""


def _window_from_rows(rows: _WindowRows) -> Window:
    return Window(
        [WindowItem(*item) for item in rows["items"]],
        {kind: PublishedFile(*published) for kind, published in rows["files"].items()},
    )


def _window_to_rows(window: Window) -> _WindowRows:
    # Rows rather than objects: one file holds every feed's window.
    return {
        "items": [(item.id, item.published, item.version, item.key, item.line, item.sizes) for item in window.items],
        "files": {kind: (file.digest, file.version, file.head) for kind, file in window.files.items()},
    }


class Head(BaseModel):
    format: int = STATE_FORMAT
    cursor: str | None = None
    last_full_scan: datetime | None = None
    total: int = 0
    tags: dict[str, TagInfo] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    broken: dict[str, list[Problem]] = Field(default_factory=dict)
    """Skipped inputs by key, kept until the object changes, so every run reports them."""
    rendering: str | None = None
    """A hash of the site settings, templates and versions the published files were rendered with."""
    parts: dict[str, str] | None = Field(default_factory=dict)
    """The file that holds each part, by the part's name; ``None`` in format 2, where
    each part is the file of its name."""


_SEEN = TypeAdapter(dict[str, str])


_GENERATION_FILE = re.compile(r"\.[0-9a-f]{12}\.[a-z]+\Z")
"""A file of a part written by a run that names its files (format 3), not a part's own name."""

_WINDOW_LINE_START = b'{"feed":"'


def _window_line(feed: str, rows: _WindowRows) -> bytes:
    # The feed first, so a line says whose it is without being parsed.
    return orjson.dumps({"feed": feed, **rows})


def _window_lines(data: bytes) -> dict[str, bytes]:
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


def _window_lines_from_one_document(data: bytes) -> dict[str, bytes]:
    feeds: dict[str, _WindowRows] = orjson.loads(data)["feeds"]
    return {feed: _window_line(feed, rows) for feed, rows in feeds.items()}


M = TypeVar("M")


ID_SHARDS = 256
"""About 200 ids a shard at 50,000 summaries: a run reads one small shard per new id,
and writes them all only when it folds the recent ids in (``fold_recent_ids``)."""


def id_shard(summary_id: str) -> str:
    digest = hashlib.blake2b(summary_id.encode("utf-8", "surrogatepass"), digest_size=2).digest()
    return f"{int.from_bytes(digest, 'big') % ID_SHARDS:03x}"


_KNOWN_IDS_HEADER = b"digestpub known id hashes 1\n"


def _id_hash(summary_id: str) -> int:
    # CRC-32: a hash shared by two ids only costs a shard read, and it is cheap.
    return zlib.crc32(summary_id.encode("utf-8", "surrogatepass"))


def _holds(hashes: array[int], value: int) -> bool:
    at = bisect.bisect_left(hashes, value)
    return at < len(hashes) and hashes[at] == value


def _known_from_bytes(data: bytes) -> array[int]:
    if not data.startswith(_KNOWN_IDS_HEADER):
        raise ValueError("it does not start as a file of known id hashes does")
    hashes = array("I")
    hashes.frombytes(data[len(_KNOWN_IDS_HEADER) :])
    if sys.byteorder == "big":
        hashes.byteswap()
    return hashes


def _known_to_bytes(hashes: array[int]) -> bytes:
    if sys.byteorder == "big":
        hashes = array("I", hashes)
        hashes.byteswap()
    return _KNOWN_IDS_HEADER + hashes.tobytes()


class StateLock:
    """A lease in the state store: created only where none exists, taken over once expired."""

    def __init__(self, store: ObjectStore, ttl: timedelta, wait: timedelta) -> None:
        self.store = store
        self.ttl = ttl
        self.wait = wait
        self.run_id = uuid.uuid4().hex
        self._etag: str | None = None

    def _lease(self) -> bytes:
        now = datetime.now(UTC)
        lease = {
            "run_id": self.run_id,
            "holder": f"{socket.gethostname()}:{os.getpid()}",
            "acquired_at": now.isoformat(),
            "expires_at": (now + self.ttl).isoformat(),
        }
        return TypeAdapter(dict[str, str]).dump_json(lease)

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait.total_seconds()
        delay = 0.05
        while True:
            try:
                self._etag = self.store.put(_LOCK_KEY, self._lease(), if_none_match=True)
                return
            except PreconditionFailed:
                pass
            current = self.store.read(_LOCK_KEY)
            if current is not None:
                lease = self._parse(current[0])
                expires = lease.get("expires_at", "")
                if not expires or datetime.fromisoformat(expires) < datetime.now(UTC):
                    try:
                        self._etag = self.store.put(_LOCK_KEY, self._lease(), if_match=current[1])
                        return
                    except PreconditionFailed:
                        pass
                if time.monotonic() >= deadline:
                    raise StateLocked(
                        f"another publish run ({lease.get('holder', 'unknown')}, since "
                        f"{lease.get('acquired_at', '?')}) holds {self.store.url.rstrip('/')}/"
                        f"{_LOCK_KEY} until {expires or '?'}; try again later, or delete that "
                        "file if the run is known to be dead"
                    )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    @staticmethod
    def _parse(data: bytes) -> dict[str, str]:
        try:
            return TypeAdapter(dict[str, str]).validate_json(data)
        except ValidationError:
            return {}

    def release(self) -> None:
        current = self.store.read(_LOCK_KEY)
        if current is not None and self._parse(current[0]).get("run_id") == self.run_id:
            self.store.delete(_LOCK_KEY)
        self._etag = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class Catalog:
    """Loads state parts on first use, saves what changed, and commits them with the head."""

    def __init__(self, store: ObjectStore, *, fresh: bool = False) -> None:
        self.store = store
        self.fresh = fresh
        self._dirty: set[str] = set()
        self._seen: dict[str, dict[str, str]] = {}
        self._ids: dict[str, dict[str, IdEntry]] = {}
        self._recent_ids: dict[str, IdEntry] | None = None
        self._known: array[int] | None = None
        self._known_loaded = False
        self._newly_known: set[int] = set()
        self._window_lines: dict[str, bytes] | None = None
        self._obsolete: set[str] = set()
        """Keys of parts this digestpub no longer uses, to delete once the run is saved."""
        self._windows: dict[str, Window] = {}
        self._logs: dict[str, bytes] = {}
        found = None if fresh else store.read(HEAD_KEY)
        self._head_version = None if found is None else found[1]
        """The head as this run read it: the condition its commit is written on."""
        self.head = Head() if found is None else self._parse(HEAD_KEY, found[0], TypeAdapter(Head).validate_json)
        # Nothing published yet: no shard holds an id, so a cold run looks none up.
        self._no_shards = self.head.total == 0
        if self.head.format not in _READABLE_FORMATS:
            raise StorageError(
                f"{store.url} holds state format {self.head.format}; this digestpub reads "
                f"formats {', '.join(map(str, _READABLE_FORMATS))}: publish with --rebuild to start it afresh"
            )
        if self.head.format == 2:
            self.head.parts = None
        self._generation = uuid.uuid4().hex[:12]
        """Names this run's files of parts, beside the files of earlier runs."""
        self._written: dict[str, str] = {}
        """Parts this run wrote, by name: the files the head will name."""

    def _load(self, key: str, parse: Callable[[bytes], M]) -> M | None:
        """A part by its name, from the file the head names for it; ``None`` where there is none."""
        file = self._file_of(key)
        if file is None or self.fresh:
            return None
        found = self.store.read(file)
        if found is None:
            if self.head.parts is not None:
                raise self._damaged(file, FileNotFoundError("the state's head names it, but it is missing"))
            return None
        return self._parse(file, found[0], parse)

    def _file_of(self, key: str) -> str | None:
        """The file of a part: the one the head names, or in format 2 the part's own name."""
        return key if self.head.parts is None else self.head.parts.get(key)

    def _parse(self, file: str, data: bytes, parse: Callable[[bytes], M]) -> M:
        try:
            return parse(data)
        except (ValidationError, ValueError, KeyError, TypeError) as error:  # orjson's errors are ValueErrors
            raise self._damaged(file, error) from error

    def _damaged(self, key: str, error: Exception) -> StorageError:
        return StorageError(
            f"state file {self.store.url.rstrip('/')}/{key} is damaged ({error}); "
            "publish with --rebuild to start the state afresh"
        )

    def seen(self, day: str) -> dict[str, str]:
        """Version tags of the source objects, by key, of the month of ``day`` (``YYYY/MM/DD``).

        A file a month, not a day: a cold run over years writes a few dozen, not
        a thousand, and an incremental run still reads one or two.
        """
        month = day[:7]
        if month not in self._seen:
            self._seen[month] = self._load(f"catalog/seen/{month}.json", _SEEN.validate_json) or {}
        return self._seen[month]

    def mark_seen(self, day: str, key: str, etag: str) -> None:
        self.seen(day)[key] = etag
        self._dirty.add(f"catalog/seen/{day[:7]}.json")

    def entry(self, summary_id: str) -> IdEntry | None:
        recent = self._recent().get(summary_id)
        if recent is not None or self._no_shards:
            return recent
        known = self._known_hashes()
        if known is not None and not _holds(known, _id_hash(summary_id)):
            return None  # never recorded: no shard holds it
        return self._shard(id_shard(summary_id)).get(summary_id)

    def _known_hashes(self) -> array[int] | None:
        """The sorted hashes of every id recorded before this run; ``None`` in a state that has none yet."""
        if not self._known_loaded:
            self._known = self._load(KNOWN_IDS_KEY, _known_from_bytes)
            self._known_loaded = True
        return self._known

    def _recent(self) -> dict[str, IdEntry]:
        if self._recent_ids is None:
            self._recent_ids = self._load(RECENT_IDS_KEY, _ids_from_json) or {}
        return self._recent_ids

    def _shard(self, shard: str) -> dict[str, IdEntry]:
        if shard not in self._ids:
            self._ids[shard] = self._load(f"catalog/ids/{shard}.json", _ids_from_json) or {}
        return self._ids[shard]

    def record(self, summaries: Iterable[SummaryRef]) -> None:
        """Note the newest version of summaries, in the file of recent ids (see ``fold_recent_ids``)."""
        recent = self._recent()
        recorded = False
        for summary in summaries:
            recent[summary.id] = IdEntry(summary.version, summary.source_key, summary.digest, list(summary.tag_slugs))
            self._newly_known.add(_id_hash(summary.id))
            recorded = True
        if recorded:
            self._dirty.update((RECENT_IDS_KEY, KNOWN_IDS_KEY))

    def fold_recent_ids(self) -> None:
        """Move the recent ids into their shards once there are many.

        Until then a run that adds a hundred summaries writes one file of ids, not a
        hundred shards; the shards are written about once every ``RECENT_IDS_LIMIT`` ids.
        """
        recent = self._recent()
        if len(recent) < RECENT_IDS_LIMIT:
            return
        by_shard: dict[str, dict[str, IdEntry]] = {}
        for summary_id, entry in recent.items():
            shard = id_shard(summary_id)
            entries = by_shard.get(shard)
            if entries is None:
                entries = by_shard[shard] = {}
            entries[summary_id] = entry
        for shard, entries in by_shard.items():
            self._shard(shard).update(entries)
            self._dirty.add(f"catalog/ids/{shard}.json")
        recent.clear()
        self._dirty.add(RECENT_IDS_KEY)

    def window(self, feed: str) -> Window:
        """A feed's window; an empty one for a feed not published yet."""
        if feed not in self._windows:
            line = self._all_window_lines().get(feed)
            try:
                self._windows[feed] = Window() if line is None else _window_from_rows(orjson.loads(line))
            except (ValueError, KeyError, TypeError) as error:
                raise self._damaged(self._file_of(WINDOWS_KEY) or WINDOWS_KEY, error) from error
        return self._windows[feed]

    def _all_window_lines(self) -> dict[str, bytes]:
        # Lines stay bytes until a run touches their feed: most runs touch a few.
        if self._window_lines is None:
            lines = self._load(WINDOWS_KEY, _window_lines)
            if lines is None and self.head.parts is None:
                lines = self._load(_WINDOWS_IN_ONE_DOCUMENT_KEY, _window_lines_from_one_document)
                if lines is not None:
                    self._obsolete.add(_WINDOWS_IN_ONE_DOCUMENT_KEY)
                    self._dirty.add(WINDOWS_KEY)
            self._window_lines = lines or {}
        return self._window_lines

    def set_window(self, feed: str, window: Window) -> None:
        self.window(feed)
        self._windows[feed] = window
        self._dirty.add(WINDOWS_KEY)

    def log_published(self, moment: datetime, run_id: str, kinds: dict[str, str], summaries: list[Summary]) -> None:
        """Log what this run published, for newsletters: one new file per run, never rewritten.

        ``kinds`` maps each id to ``new`` or ``updated``.
        """
        utc = moment.astimezone(UTC)
        key = f"catalog/log/{utc:%Y/%m/%d}/{utc:%H%M%S}-{run_id[:12]}.jsonl"
        logged_at = utc.isoformat()
        lines = (
            orjson.dumps({"logged_at": logged_at, "kind": kinds[summary.id], "summary": summary})
            for summary in summaries
        )
        self._logs[key] = b"".join(line + b"\n" for line in lines)
        self._dirty.add(key)

    def touch_head(self) -> None:
        self._dirty.add(HEAD_KEY)

    def serialise(self, key: str) -> bytes:
        if key.startswith("catalog/log/"):
            return self._logs[key]
        if key == WINDOWS_KEY:
            lines = self._all_window_lines() | {
                feed: _window_line(feed, _window_to_rows(window)) for feed, window in self._windows.items()
            }
            return b"".join(lines[feed] + b"\n" for feed in sorted(lines))
        if key == RECENT_IDS_KEY:
            return _ids_to_json(self._recent())
        if key == KNOWN_IDS_KEY:
            return _known_to_bytes(self._all_known_hashes())
        name = key.removeprefix("catalog/").removesuffix(".json")
        kind, _, part = name.partition("/")
        if kind == "seen":
            return _SEEN.dump_json(self._seen[part])
        return _ids_to_json(self._ids[part])

    def _all_known_hashes(self) -> array[int]:
        known = self._known_hashes()
        if known is None:
            hashes: set[int] = set()
            if not self._no_shards:
                # A state from before the known hashes: every id in it, once.
                hashes.update(map(_id_hash, self._recent()))
                for number in range(ID_SHARDS):
                    hashes.update(map(_id_hash, self._shard(f"{number:03x}")))
            known = array("I", sorted(hashes))
        added = sorted(value for value in self._newly_known if not _holds(known, value))
        # Two sorted runs: the sort merges them rather than sorting afresh.
        return array("I", sorted(chain(known, added))) if added else known

    def changed_parts(self) -> list[str]:
        """Names of the parts this run changed, to write before ``commit``."""
        if self.head.parts is None:
            # A format 2 state is converted by this run's commit: its windows
            # document becomes a part now, even if the run touched no feed.
            self._all_window_lines()
        return sorted(self._dirty - {HEAD_KEY})

    def save_part(self, key: str) -> tuple[str, str]:
        """Write one part to a new file (a log to its own name); returns ``(key, file)`` for ``saved``."""
        if key.startswith("catalog/log/"):
            file = key
        else:
            stem, dot, suffix = key.rpartition(".")
            file = f"{stem}.{self._generation}{dot}{suffix}"  # as _GENERATION_FILE finds
        try:
            # Never over another file: a name that exists was written by another run.
            content_type = "application/octet-stream" if key == KNOWN_IDS_KEY else "application/json"
            self.store.put(file, self.serialise(key), content_type=content_type, if_none_match=True)
        except PreconditionFailed as error:
            raise StorageError(
                f"state {self.store.url.rstrip('/')}/{file} was written by another run while this one held "
                "the lock (its lease may have expired); nothing is lost: run publish again"
            ) from error
        return key, file

    def saved(self, key: str, file: str) -> None:
        self._dirty.discard(key)
        if not key.startswith("catalog/log/"):
            self._written[key] = file

    def commit(self) -> None:
        """Write the head, naming the files of the parts this run wrote; then delete the files it replaced.

        Until the head is written, the state is what it was before the run.
        """
        if not self._written and HEAD_KEY not in self._dirty:
            return
        before = self.head.parts
        if before is None:
            # Format 2: every part is the file of its name, so the head names them so
            # (not the files of this run, or of runs stopped before their head).
            before = {key: key for key in self._part_files() if not _GENERATION_FILE.search(key)}
        parts = {} if self.fresh else {key: file for key, file in before.items() if file not in self._obsolete}
        replaced = {parts[key] for key in self._written if key in parts} - set(self._written.values())
        parts.update(self._written)
        self.head.parts = dict(sorted(parts.items()))
        self.head.format = STATE_FORMAT
        if_match = self._head_version
        try:
            version = self.store.put(
                HEAD_KEY,
                self.head.model_dump_json().encode(),
                content_type="application/json",
                if_match=if_match,
                if_none_match=if_match is None and not self.fresh,
            )
        except PreconditionFailed as error:
            raise StorageError(
                f"state {self.store.url.rstrip('/')}/{HEAD_KEY} was changed by another run while this one "
                "held the lock (its lease may have expired); nothing is lost: run publish again"
            ) from error
        self._head_version = version
        self._dirty.discard(HEAD_KEY)
        self._written.clear()
        self._delete(sorted(replaced | self._obsolete))
        self._obsolete.clear()

    def _delete(self, files: list[str]) -> None:
        # The run is committed: a file left behind costs only space, and a later sweep takes it.
        for file in files:
            try:
                self.store.delete(file)
            except (StorageError, OSError) as error:
                log.warning("could not delete %s, which the state no longer names: %s", file, error)

    def sweep(self) -> list[str]:
        """Delete the files of parts the head does not name: left by stopped runs, or replaced by a rebuild.

        After ``commit``; returns the keys deleted.
        """
        named = set((self.head.parts or {}).values())
        stray = [key for key in self._part_files() if key not in named]
        self._delete(stray)
        return stray

    def _part_files(self) -> list[str]:
        """Every file of a part in the store: not the head, and not the log, which grows by a file a run."""
        listings = (
            self.store.list("catalog/ids/"),
            self.store.list("catalog/seen/"),
            # The files beside the folders, after them: the windows ("0" sorts right after "/").
            self.store.list("catalog/", start_after="catalog/seen0"),
        )
        return [info.key for listing in listings for info in listing if info.key != HEAD_KEY]
