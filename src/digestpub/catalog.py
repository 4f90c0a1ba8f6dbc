"""The publish state: what was seen, each summary's newest version, each feed's window.

State is split so a run loads only what it touches, and cost follows the new
summaries rather than the history:

- ``catalog/head.json``: tags and their counts, the listing cursor, index hashes;
- ``catalog/seen/YYYY/MM/DD.json``: version tags of the source objects of one day;
- ``catalog/ids/XYZ.json``: one of 1,024 shards, by id hash, of each summary's newest version;
- ``catalog/log/YYYY/MM/DD/<run>.jsonl``: what each run of that day published, for newsletters;
- ``catalog/windows.json``: each feed's newest items (a few more than ``feed_size``,
  so an edit that drops an item leaves the feed full) and its files as published.
  Items hold where their entries sit in those files, not the entries: a run copies
  the entries it did not change out of the files it published last time.

Every write is conditional on the version that was read, and a run holds
``lock.json`` while it works, so overlapping runs never lose an update.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import orjson
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from digestpub.errors import PreconditionFailed, StateLocked, StorageError
from digestpub.model import Problem, Summary, TagInfo
from digestpub.ports import ObjectStore

STATE_FORMAT = 2
ALL_FEED = "_all"
"""The feed of every summary; a slug never starts with ``_``, so it cannot clash."""

HEAD_KEY = "catalog/head.json"
WINDOWS_KEY = "catalog/windows.json"
_LOCK_KEY = "lock.json"


class IdEntry(BaseModel):
    """Where the published version of one summary came from, and what it carried."""

    version: datetime
    published_at: datetime
    key: str
    digest: str
    slugs: list[str]


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

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.published, self.id)


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


def _windows_from_json(data: bytes) -> dict[str, Window]:
    document = orjson.loads(data)
    return {
        feed: Window(
            [WindowItem(*item) for item in window["items"]],
            {kind: PublishedFile(*published) for kind, published in window["files"].items()},
        )
        for feed, window in document["feeds"].items()
    }


def _windows_to_json(windows: dict[str, Window]) -> bytes:
    # Rows rather than objects: the file holds every feed's window and is read by every run that writes a feed.
    return orjson.dumps(
        {
            "feeds": {
                feed: {
                    "items": [
                        (item.id, item.published, item.version, item.key, item.line, item.sizes)
                        for item in window.items
                    ],
                    "files": {
                        kind: (published.digest, published.version, published.head)
                        for kind, published in window.files.items()
                    },
                }
                for feed, window in sorted(windows.items())
            }
        }
    )


class Head(BaseModel):
    format: int = STATE_FORMAT
    cursor: str | None = None
    last_full_scan: datetime | None = None
    total: int = 0
    tags: dict[str, TagInfo] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    broken: dict[str, list[Problem]] = Field(default_factory=dict)
    """Skipped inputs by key, kept until the object changes, so every run reports them."""


_SEEN = TypeAdapter(dict[str, str])
_IDS = TypeAdapter(dict[str, IdEntry])
M = TypeVar("M")


ID_SHARDS = 1024
"""About 50 ids a shard at 50,000 summaries: a run loads one small shard per new id."""


def id_shard(summary_id: str) -> str:
    digest = hashlib.blake2b(summary_id.encode("utf-8", "surrogatepass"), digest_size=2).digest()
    return f"{int.from_bytes(digest, 'big') % ID_SHARDS:03x}"


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
    """Loads state parts on first use, remembers their versions, saves what changed."""

    def __init__(self, store: ObjectStore, *, fresh: bool = False) -> None:
        self.store = store
        self.fresh = fresh
        self._versions: dict[str, str | None] = {}
        self._dirty: set[str] = set()
        self._seen: dict[str, dict[str, str]] = {}
        self._ids: dict[str, dict[str, IdEntry]] = {}
        self._windows: dict[str, Window] | None = None
        self._logs: dict[str, bytes] = {}
        self.head: Head = self._load(HEAD_KEY, TypeAdapter(Head)) or Head()
        if self.head.format != STATE_FORMAT:
            raise StorageError(
                f"{store.url} holds state format {self.head.format}; this digestpub reads "
                f"format {STATE_FORMAT}: publish with --rebuild to start it afresh"
            )

    def _load(self, key: str, adapter: TypeAdapter[M]) -> M | None:
        found = None if self.fresh else self.store.read(key)
        if found is None:
            self._versions[key] = None
            return None
        data, version = found
        self._versions[key] = version
        try:
            return adapter.validate_json(data)
        except ValidationError as error:
            raise StorageError(
                f"state file {self.store.url.rstrip('/')}/{key} is damaged ({error.error_count()} "
                "errors); publish with --rebuild to start the state afresh"
            ) from error

    def seen(self, day: str) -> dict[str, str]:
        """Version tags of the source objects under ``day`` (``YYYY/MM/DD``)."""
        if day not in self._seen:
            self._seen[day] = self._load(f"catalog/seen/{day}.json", _SEEN) or {}
        return self._seen[day]

    def mark_seen(self, day: str, key: str, etag: str) -> None:
        self.seen(day)[key] = etag
        self._dirty.add(f"catalog/seen/{day}.json")

    def entry(self, summary_id: str) -> IdEntry | None:
        return self._shard(summary_id).get(summary_id)

    def _shard(self, summary_id: str, shard: str | None = None) -> dict[str, IdEntry]:
        shard = shard or id_shard(summary_id)
        if shard not in self._ids:
            self._ids[shard] = self._load(f"catalog/ids/{shard}.json", _IDS) or {}
        return self._ids[shard]

    def record(self, summary: Summary) -> None:
        shard = id_shard(summary.id)
        # Built from a Summary already checked: no need to validate it again.
        self._shard(summary.id, shard)[summary.id] = IdEntry.model_construct(
            version=summary.version,
            published_at=summary.published_at,
            key=summary.source_key,
            digest=summary.digest,
            slugs=list(summary.tag_slugs),
        )
        self._dirty.add(f"catalog/ids/{shard}.json")

    def window(self, feed: str) -> Window:
        """A feed's window; an empty one for a feed not published yet."""
        return self._all_windows().setdefault(feed, Window())

    def _all_windows(self) -> dict[str, Window]:
        if self._windows is None:
            found = None if self.fresh else self.store.read(WINDOWS_KEY)
            self._versions[WINDOWS_KEY] = None if found is None else found[1]
            try:
                self._windows = {} if found is None else _windows_from_json(found[0])
            except (orjson.JSONDecodeError, KeyError, TypeError) as error:
                raise StorageError(
                    f"state file {self.store.url.rstrip('/')}/{WINDOWS_KEY} is damaged ({error}); "
                    "publish with --rebuild to start the state afresh"
                ) from error
        return self._windows

    def set_window(self, feed: str, window: Window) -> None:
        self._all_windows()[feed] = window
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
        self._versions[key] = None
        self._dirty.add(key)

    def touch_head(self) -> None:
        self._dirty.add(HEAD_KEY)

    def serialise(self, key: str) -> bytes:
        if key == HEAD_KEY:
            return self.head.model_dump_json().encode()
        if key.startswith("catalog/log/"):
            return self._logs[key]
        if key == WINDOWS_KEY:
            return _windows_to_json(self._all_windows())
        name = key.removeprefix("catalog/").removesuffix(".json")
        kind, _, part = name.partition("/")
        if kind == "seen":
            return _SEEN.dump_json(self._seen[part])
        return _IDS.dump_json(self._ids[part])

    def changed_parts(self) -> list[str]:
        """Keys of the parts to save; the head last, since writing it commits the run."""
        keys = sorted(self._dirty - {HEAD_KEY})
        if HEAD_KEY in self._dirty:
            keys.append(HEAD_KEY)
        return keys

    def write_condition(self, key: str) -> tuple[str | None, bool]:
        """``(if_match, if_none_match)``: over the version read, or only where none exists."""
        version = self._versions.get(key)
        if version is not None:
            return version, False
        return None, not self.fresh

    def save_part(self, key: str) -> tuple[str, str]:
        """Write one part under its condition; returns ``(key, new version)`` for ``saved``.

        A lost condition means another run wrote it while this one held the lock.
        """
        if_match, if_none_match = self.write_condition(key)
        try:
            version = self.store.put(
                key,
                self.serialise(key),
                content_type="application/json",
                if_match=if_match,
                if_none_match=if_none_match,
            )
        except PreconditionFailed as error:
            raise StorageError(
                f"state {self.store.url.rstrip('/')}/{key} was changed by another run while this one held "
                "the lock (its lease may have expired); nothing is lost: run publish again"
            ) from error
        return key, version

    def saved(self, key: str, version: str) -> None:
        self._versions[key] = version
        self._dirty.discard(key)
