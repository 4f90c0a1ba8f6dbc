"""The publish state as a unit of work: a run opens a ``Catalog``, changes it, and commits once.

State is split so a run loads only what it touches, and cost follows the new
summaries rather than the history (``state.parts`` says what each part holds).
Every change goes through a method here that marks the parts it changed, and
``commit`` writes those parts, each to a new file, then the head, which names
the current file of every part and its checksum. The head is the one write that
commits a run: a run stopped on the way (a function's time limit, a killed
process) leaves the state as it was, and the next run does its work again. The
files the head no longer names are deleted once it is written.

The head is written on the condition that it is still the version the run read,
and a run holds the lease (``state.lock``) while it works, so overlapping runs
never lose an update. Every conditional write that is refused is read back: one
that holds this run's own bytes was this run's, applied by an attempt whose
answer was lost.
"""

from __future__ import annotations

import logging
import uuid
from array import array
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import chain
from typing import TypeVar

import orjson
from pydantic import ValidationError

from digestpub.errors import PreconditionFailed, StorageError
from digestpub.model import Problem, Summary, SummaryRef, TagInfo, sortable_time
from digestpub.ports import ObjectStore
from digestpub.state.keys import (
    HEAD_KEY,
    KNOWN_IDS_KEY,
    LATEST_REPORT_KEY,
    PART_FOLDERS,
    RECENT_IDS_KEY,
    TALLIES_KEY,
    WINDOWS_KEY,
    is_part_file,
    log_key,
    pages_key,
    pages_shard,
    part_file,
    seen_key,
    seen_month,
    shard_key,
)
from digestpub.state.log import log_lines
from digestpub.state.parts import (
    HEAD,
    ID_SHARDS,
    SEEN,
    STATE_FORMAT,
    Announcement,
    Head,
    IdEntry,
    PageTally,
    SeenObject,
    Tallies,
    Window,
    checksum,
    holds,
    id_hash,
    id_shard,
    ids_from_json,
    ids_to_json,
    known_from_bytes,
    known_to_bytes,
    page_name,
    page_shard,
    tallies_from_json,
    tallies_to_json,
    window_from_line,
    window_line,
    window_lines,
    windows_file,
)

log = logging.getLogger("digestpub.state")

RECENT_IDS_LIMIT = 2_000
"""Ids recorded in the file of recent ids before they are folded into their shards."""
_IO_THREADS = 16

M = TypeVar("M")


class Catalog:
    """The state as one run sees and changes it; nothing is written before ``commit``."""

    def __init__(self, store: ObjectStore, *, fresh: bool = False) -> None:
        """Open the state in ``store``; ``fresh`` starts from nothing (a rebuild), whatever is there."""
        self.store = store
        self.fresh = fresh
        self._dirty: set[str] = set()
        self._seen: dict[str, dict[str, SeenObject]] = {}
        self._ids: dict[str, dict[str, IdEntry]] = {}
        self._recent_ids: dict[str, IdEntry] | None = None
        self._known: array[int] | None = None
        self._known_loaded = False
        self._newly_known: set[int] = set()
        self._windows: _WindowFile | None = None
        self._pages: dict[str, _WindowFile] = {}
        self._tallies: Tallies | None = None
        self._logs: dict[str, bytes] = {}
        found = None if fresh else store.read(HEAD_KEY)
        if found is None and not fresh:
            self._refuse_if_headless()
        self._head_version = None if found is None else found[1]
        """The head as this run read it: the condition its commit is written on."""
        self._head = Head() if found is None else self._parse(HEAD_KEY, found[0], HEAD.validate_json)
        if self._head.format != STATE_FORMAT:
            raise StorageError(
                f"{store.url} holds state format {self._head.format}; this digestpub reads format "
                f"{STATE_FORMAT}: publish with --rebuild to start it afresh"
            )
        # Nothing published yet: no shard holds an id, so a cold run looks none up.
        self._no_shards = self._head.total == 0
        self._generation = uuid.uuid4().hex[:12]
        """Names this run's files of parts, beside the files of earlier runs."""

    # reading the head --------------------------------------------------------

    @property
    def head(self) -> Head:
        """The head, to read: change it through this catalog's methods, which mark it changed."""
        return self._head

    def _refuse_if_headless(self) -> None:
        """A state whose runs committed before but whose head is gone would publish everything as new."""
        if self.store.read(LATEST_REPORT_KEY) is None:
            return  # never committed: parts here were left by a first run that stopped
        if any(is_part_file(info.key) for folder in PART_FOLDERS for info in self.store.list(folder)):
            raise StorageError(
                f"state {self.store.url.rstrip('/')}/{HEAD_KEY} is missing but its parts remain; "
                "publish with --rebuild to build the state afresh from the source"
            )

    # changing the head -------------------------------------------------------

    def _touch_head(self) -> None:
        self._dirty.add(HEAD_KEY)

    def set_cursor(self, day: str | None) -> None:
        if day != self._head.cursor:
            self._head.cursor = day
            self._touch_head()

    def note_full_scan(self, moment: datetime) -> None:
        self._head.last_full_scan = moment
        self._touch_head()

    def set_rendering(self, fingerprint: str) -> None:
        if self._head.rendering != fingerprint:
            self._head.rendering = fingerprint
            self._touch_head()

    def forget_broken(self, key: str) -> None:
        """The object at ``key`` was read again: what was wrong with it is reported afresh if still so."""
        if self._head.broken.pop(key, None) is not None:
            self._touch_head()

    def add_broken(self, problem: Problem) -> None:
        self._head.broken.setdefault(problem.key, []).append(problem)
        self._touch_head()

    def count_tags(
        self, added: int, counts: Mapping[str, int], newest: Mapping[str, str], names: Mapping[str, str]
    ) -> None:
        """``added`` new summaries; per tag, the change of its count, its newest ``published`` and its name."""
        tags = self._head.tags
        for slug in counts.keys() | newest.keys():
            tag = tags.setdefault(slug, TagInfo(slug=slug, name=names.get(slug, slug)))
            tag.count += counts.get(slug, 0)
            time = newest.get(slug)
            if time is not None and (tag.newest is None or time > sortable_time(tag.newest)):
                tag.newest = datetime.fromisoformat(time)
        if added or counts or newest:
            self._head.total += added
            self._touch_head()

    def set_announcement(self, announcement: Announcement) -> None:
        if announcement != self._head.announcing:
            self._head.announcing = announcement
            self._touch_head()

    def set_output_digest(self, path: str, digest: str) -> None:
        if self._head.outputs.get(path) != digest:
            self._head.outputs[path] = digest
            self._touch_head()

    def forget_output(self, path: str) -> None:
        if self._head.outputs.pop(path, None) is not None:
            self._touch_head()

    # parts -------------------------------------------------------------------

    def _load(self, key: str, parse: Callable[[bytes], M]) -> M | None:
        """A part by its name, from the file the head names for it; ``None`` where there is none."""
        file = self._head.parts.get(key)
        if file is None or self.fresh:
            return None
        expected = self._head.checksums.get(key)
        found = self.store.read(file)
        if found is None:
            raise self._damaged(file, FileNotFoundError("the state's head names it, but it is missing"))
        if checksum(found[0]) != expected:
            raise self._damaged(file, ValueError("its bytes are not those the state's head recorded"))
        return self._parse(file, found[0], parse)

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

    def seen(self, day: str) -> dict[str, SeenObject]:
        """The source objects of the month of ``day`` (``YYYY/MM/DD``) as last read, by key.

        A file a month, not a day: a cold run over years writes a few dozen, not
        a thousand, and an incremental run still reads one or two.
        """
        month = day[:7]
        if month not in self._seen:
            self._seen[month] = self._load(seen_key(month), SEEN.validate_json) or {}
        return self._seen[month]

    def seen_months(self) -> list[str]:
        """Every month (``YYYY/MM``) in which the state has seen source objects, oldest first."""
        months = {seen_month(part) for part in self._head.parts} | set(self._seen)
        return sorted(month for month in months if month is not None)

    def mark_seen(self, day: str, key: str, etag: str) -> None:
        """The object at ``key`` was read in version ``etag``; the ids it held stay until ``set_held``."""
        objects = self.seen(day)
        earlier = objects.get(key)
        objects[key] = (etag, [] if earlier is None else earlier[1])
        self._dirty.add(seen_key(day[:7]))

    def held(self, key: str) -> list[str]:
        """The ids of the summaries the object at ``key`` held when last read."""
        found = self.seen(key[:10]).get(key)
        return [] if found is None else found[1]

    def set_held(self, key: str, ids: list[str]) -> None:
        objects = self.seen(key[:10])
        etag, earlier = objects.get(key, ("", []))
        if earlier != ids:
            objects[key] = (etag, ids)
            self._dirty.add(seen_key(key[:7]))

    def holders(self, summary_ids: set[str], besides: set[str]) -> list[str]:
        """Other keys, among the months this run has loaded, that held any of ``summary_ids`` when last read.

        A copy or an older version of a summary whose object is gone: reading it
        again tells whether the summary stays. The loaded months are every month
        on a full scan, and the recent ones and the gone objects' own otherwise.
        """
        if not summary_ids:
            return []
        return sorted(
            key
            for objects in self._seen.values()
            for key, (_, held) in objects.items()
            if key not in besides and not summary_ids.isdisjoint(held)
        )

    def forget_seen(self, key: str) -> list[str]:
        """The object at ``key`` is gone from the source: forget it; returns the ids it held."""
        found = self.seen(key[:10]).pop(key, None)
        if found is None:
            return []
        self._dirty.add(seen_key(key[:7]))
        return found[1]

    def entry(self, summary_id: str) -> IdEntry | None:
        recent = self._recent().get(summary_id)
        if recent is not None or self._no_shards:
            return recent
        known = self._known_hashes()
        if known is not None and not holds(known, id_hash(summary_id)):
            return None  # never recorded: no shard holds it
        return self._shard(id_shard(summary_id)).get(summary_id)

    def _known_hashes(self) -> array[int] | None:
        if not self._known_loaded:
            self._known = self._load(KNOWN_IDS_KEY, known_from_bytes)
            self._known_loaded = True
        return self._known

    def _recent(self) -> dict[str, IdEntry]:
        if self._recent_ids is None:
            self._recent_ids = self._load(RECENT_IDS_KEY, ids_from_json) or {}
        return self._recent_ids

    def _shard(self, shard: str) -> dict[str, IdEntry]:
        if shard not in self._ids:
            self._ids[shard] = self._load(shard_key(shard), ids_from_json) or {}
        return self._ids[shard]

    def record(self, summaries: Iterable[SummaryRef], positions: Mapping[str, list[int]]) -> None:
        """Note the newest version of summaries, and their ``positions`` in their feeds, by id,
        in the file of recent ids (folded into shards on commit)."""
        recent = self._recent()
        recorded = False
        for summary in summaries:
            recent[summary.id] = IdEntry(
                summary.version,
                summary.source_key,
                summary.digest,
                list(summary.tag_slugs),
                positions[summary.id],
            )
            self._newly_known.add(id_hash(summary.id))
            recorded = True
        if recorded:
            self._dirty.update((RECENT_IDS_KEY, KNOWN_IDS_KEY))

    def forget(self, summary_ids: Iterable[str]) -> None:
        """Summaries deleted from the source: no version of them is recorded any more.

        Their hashes stay among the known ones: a hash that finds no id costs one shard read.
        """
        recent = self._recent()
        for summary_id in summary_ids:
            if recent.pop(summary_id, None) is not None:
                self._dirty.add(RECENT_IDS_KEY)
            if self._no_shards:
                continue
            shard = id_shard(summary_id)
            if self._shard(shard).pop(summary_id, None) is not None:
                self._dirty.add(shard_key(shard))

    def _fold_recent_ids(self) -> None:
        """Move the recent ids into their shards once there are many.

        Until then a run that adds a hundred summaries writes one file of ids, not a
        hundred shards; the shards are written about once every ``RECENT_IDS_LIMIT`` ids.
        """
        recent = self._recent()
        if len(recent) < RECENT_IDS_LIMIT:
            return
        by_shard: dict[str, dict[str, IdEntry]] = {}
        for summary_id, entry in recent.items():
            by_shard.setdefault(id_shard(summary_id), {})[summary_id] = entry
        for shard, entries in by_shard.items():
            self._shard(shard).update(entries)
            self._dirty.add(shard_key(shard))
        recent.clear()
        self._dirty.add(RECENT_IDS_KEY)

    def window(self, feed: str) -> Window:
        """A feed's window; an empty one for a feed not published yet."""
        if self._windows is None:
            self._windows = self._window_file(WINDOWS_KEY)
        return self._windows.window(feed)

    def set_window(self, feed: str, window: Window) -> None:
        self.window(feed)
        assert self._windows is not None
        self._windows.windows[feed] = window
        self._dirty.add(WINDOWS_KEY)

    def page_size(self, setting: int) -> int:
        """Summaries per archive page: ``setting`` at a site's first run, then what that run fixed."""
        if self._head.page_size is None:
            self._head.page_size = setting
            self._touch_head()
        return self._head.page_size

    def page(self, feed: str, number: int) -> Window:
        """A complete archive page of a feed: its items and its files as published."""
        name = page_name(feed, number)
        shard = page_shard(name)
        if shard not in self._pages:
            self._pages[shard] = self._window_file(pages_key(shard))
        return self._pages[shard].window(name)

    def set_page(self, feed: str, number: int, window: Window) -> None:
        name = page_name(feed, number)
        self.page(feed, number)
        shard = page_shard(name)
        self._pages[shard].windows[name] = window
        self._dirty.add(pages_key(shard))

    def tallies(self) -> Tallies:
        """Each feed's pages in numbers, read once a run asks."""
        if self._tallies is None:
            self._tallies = self._load(TALLIES_KEY, tallies_from_json) or {}
        return self._tallies

    def set_tallies(self, feed: str, pages: list[PageTally]) -> None:
        tallies = self.tallies()
        if tallies.get(feed) != pages:
            tallies[feed] = pages
            self._dirty.add(TALLIES_KEY)

    def set_corrections_due(self, feed: str, due: str | None) -> None:
        """When the oldest correction carried by ``feed``'s subscription documents leaves them."""
        if self._head.corrections_due.get(feed) == due:
            return
        if due is None:
            del self._head.corrections_due[feed]
        else:
            self._head.corrections_due[feed] = due
        self._touch_head()

    def _window_file(self, key: str) -> _WindowFile:
        return _WindowFile(
            self._load(key, window_lines) or {}, lambda error: self._damaged(self._head.parts.get(key, key), error)
        )

    def log_published(
        self,
        moment: datetime,
        run_id: str,
        kinds: dict[str, str],
        summaries: list[Summary],
        deleted: list[str] | None = None,
    ) -> None:
        """Log what this run published and ``deleted``, for newsletters (``state.log``).

        ``kinds``: ``new`` or ``updated`` by id.
        """
        key = log_key(moment, run_id)
        self._logs[key] = log_lines(moment, kinds, summaries, deleted or [])
        self._dirty.add(key)

    # committing --------------------------------------------------------------

    def _serialise(self, key: str) -> bytes:
        if key in self._logs:
            return self._logs[key]
        if key == WINDOWS_KEY and self._windows is not None:
            return self._windows.serialise()
        shard = pages_shard(key)
        if shard is not None:
            return self._pages[shard].serialise()
        if key == TALLIES_KEY:
            return tallies_to_json(self.tallies())
        if key == RECENT_IDS_KEY:
            return ids_to_json(self._recent())
        if key == KNOWN_IDS_KEY:
            return known_to_bytes(self._all_known_hashes())
        if key.startswith("catalog/seen/"):
            # orjson, not the adapter: a cold run's thousands of rows, without pydantic's copy of them.
            return orjson.dumps(self._seen[key.removeprefix("catalog/seen/").removesuffix(".json")])
        return ids_to_json(self._ids[key.removeprefix("catalog/ids/").removesuffix(".json")])

    def _all_known_hashes(self) -> array[int]:
        known = self._known_hashes()
        if known is None:
            known = array("I")
            if not self._no_shards:
                # A state whose file of known hashes is gone: every id in it, once.
                hashes = set(map(id_hash, self._recent()))
                for number in range(ID_SHARDS):
                    hashes.update(map(id_hash, self._shard(f"{number:03x}")))
                known = array("I", sorted(hashes))
        added = sorted(value for value in self._newly_known if not holds(known, value))
        # Two sorted runs: the sort merges them rather than sorting afresh.
        return array("I", sorted(chain(known, added))) if added else known

    def commit(self, *, threads: bool = True) -> None:
        """Write every part this run changed, then the head, which commits them; then delete what they replaced.

        Until the head is written, the state is what it was before the run.
        ``threads``: write the parts from a thread pool (worth it where each write waits on a network).
        """
        self._fold_recent_ids()
        changed = sorted(self._dirty - {HEAD_KEY})
        if not changed and HEAD_KEY not in self._dirty:
            return
        written: dict[str, str] = {}
        checksums: dict[str, str] = {}

        def save(key: str) -> None:
            data = self._serialise(key)
            file = key if key in self._logs else part_file(key, self._generation)
            content_type = "application/octet-stream" if key == KNOWN_IDS_KEY else "application/json"
            self._put_new(file, data, content_type)
            if key not in self._logs:
                written[key] = file
                checksums[key] = checksum(data)

        if threads and len(changed) > 1:
            with ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="digestpub-state") as pool:
                list(pool.map(save, changed))
        else:
            for key in changed:
                save(key)
        before = {} if self.fresh else self._head.parts
        replaced = {before[key] for key in written if key in before}
        self._head.parts = dict(sorted((before | written).items()))
        self._head.checksums = dict(sorted((({} if self.fresh else self._head.checksums) | checksums).items()))
        self._write_head()
        self._dirty.clear()
        self._logs.clear()
        self._delete(sorted(replaced))

    def _put_new(self, file: str, data: bytes, content_type: str) -> None:
        """Write a file that must not exist yet; one that holds these very bytes was this run's."""
        try:
            self.store.put(file, data, content_type=content_type, if_none_match=True)
        except PreconditionFailed as error:
            found = self.store.read(file)
            if found is not None and found[0] == data:
                return
            raise StorageError(
                f"state {self.store.url.rstrip('/')}/{file} was written by another run while this one held "
                "the lock (its lease may have expired); nothing is lost: run publish again"
            ) from error

    def _write_head(self) -> None:
        body = self._head.model_dump_json().encode()
        if_match = self._head_version
        try:
            version = self.store.put(
                HEAD_KEY,
                body,
                content_type="application/json",
                if_match=if_match,
                if_none_match=if_match is None and not self.fresh,
            )
        except PreconditionFailed as error:
            found = self.store.read(HEAD_KEY)
            if found is None or found[0] != body:
                raise StorageError(
                    f"state {self.store.url.rstrip('/')}/{HEAD_KEY} was changed by another run while this one "
                    "held the lock (its lease may have expired); nothing is lost: run publish again"
                ) from error
            version = found[1]  # this run's head: the attempt that wrote it lost its answer
        self._head_version = version

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
        named = set(self._head.parts.values())
        stray = [key for key in self._part_files() if key not in named]
        self._delete(stray)
        return stray

    def _part_files(self) -> list[str]:
        listings = (
            *(self.store.list(folder) for folder in PART_FOLDERS),
            # The files beside the folders, after them: the windows ("0" sorts right after "/").
            self.store.list("catalog/", start_after="catalog/seen0"),
        )
        return [info.key for listing in listings for info in listing if is_part_file(info.key)]


class _WindowFile:
    """One file of window lines, by name: the feeds' windows, or a shard of their complete pages.

    Lines stay bytes until a run touches their feed: most runs touch a few.
    """

    def __init__(self, lines: dict[str, bytes], damaged: Callable[[Exception], StorageError]) -> None:
        self.lines = lines
        self.windows: dict[str, Window] = {}
        self._damaged = damaged

    def window(self, feed: str) -> Window:
        if feed not in self.windows:
            line = self.lines.get(feed)
            try:
                self.windows[feed] = Window() if line is None else window_from_line(line)
            except (ValueError, KeyError, TypeError) as error:
                raise self._damaged(error) from error
        return self.windows[feed]

    def serialise(self) -> bytes:
        lines = self.lines | {feed: window_line(feed, window) for feed, window in self.windows.items()}
        # A window with nothing in it and nothing published (an emptied month) takes no line.
        empty = {feed for feed, window in self.windows.items() if not window.items and not window.files}
        return windows_file({feed: line for feed, line in lines.items() if feed not in empty})
