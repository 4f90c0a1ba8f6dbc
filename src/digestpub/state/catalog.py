"""The publish state as a unit of work: a run opens a ``Catalog``, changes it, and commits once.

The catalog is the head (tags and counts, the listing cursor, the files of every
part) and three stores, each owning its parts and loading only those a run
touches: ``seen`` (the source objects as last read), ``ids`` (each summary's
newest version and places) and ``feeds`` (windows, archive pages, tallies). A
run changes them through their methods, and ``commit`` writes the parts they
changed, each to a new file, then the head, which names the current file of
every part and its checksum. The head is the one write that commits a run: a
run stopped on the way (a function's time limit, a killed process) leaves the
state as it was, and the next run does its work again. The files the head no
longer names are deleted once it is written.

The head is written on the condition that it is still the version the run read,
and a run holds the lease (``state.lock``) while it works, so overlapping runs
never lose an update. Every conditional write that is refused is read back: one
that holds this run's own bytes was this run's, applied by an attempt whose
answer was lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from digestpub.errors import PreconditionFailed, StorageError
from digestpub.model import Problem, Summary, TagInfo, sortable_time
from digestpub.ports import ObjectStore
from digestpub.state.feeds import FeedRecords
from digestpub.state.files import PartFiles, PartStore
from digestpub.state.ids import SummaryIndex
from digestpub.state.keys import (
    HEAD_KEY,
    KNOWN_IDS_KEY,
    LATEST_REPORT_KEY,
    PART_FOLDERS,
    is_part_file,
    log_key,
    part_file,
)
from digestpub.state.log import log_lines
from digestpub.state.parts import HEAD, STATE_FORMAT, Announcement, Head, checksum
from digestpub.state.seen import SeenObjects

log = logging.getLogger("digestpub.state")

_IO_THREADS = 16


class Catalog:
    """The state as one run sees and changes it; nothing is written before ``commit``."""

    def __init__(self, store: ObjectStore, *, fresh: bool = False) -> None:
        """Open the state in ``store``; ``fresh`` starts from nothing (a rebuild), whatever is there."""
        self.store = store
        self.fresh = fresh
        self._head_changed = False
        self._logs: dict[str, bytes] = {}
        found = None if fresh else store.read(HEAD_KEY)
        if found is None and not fresh:
            self._refuse_if_headless()
        self._head_version = None if found is None else found[1]
        """The head as this run read it: the condition its commit is written on."""
        files = PartFiles(store, Head(), fresh=fresh)
        self._head = Head() if found is None else files.parse(HEAD_KEY, found[0], HEAD.validate_json)
        if self._head.format != STATE_FORMAT:
            raise StorageError(
                f"{store.url} holds state format {self._head.format}; this digestpub reads format "
                f"{STATE_FORMAT}: publish with --rebuild to start it afresh"
            )
        files.head = self._head
        self.seen = SeenObjects(files)
        self.ids = SummaryIndex(files)
        self.feeds = FeedRecords(files)
        self._stores: tuple[PartStore, ...] = (self.seen, self.ids, self.feeds)
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
        self._head_changed = True

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

    def set_id_authority(self, authority: str) -> None:
        if self._head.id_authority != authority:
            self._head.id_authority = authority
            self._touch_head()

    def set_skipped(self, skipped: dict[str, list[Problem]]) -> None:
        """The skipped inputs on record, by key: reported by every run until their object changes."""
        if skipped != self._head.skipped:
            self._head.skipped = skipped
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

    def set_output_digest(self, path: str, digest: str | None) -> None:
        """The hash of a file published outside any feed; ``None`` for one deleted."""
        if self._head.outputs.get(path) == digest:
            return
        if digest is None:
            del self._head.outputs[path]
        else:
            self._head.outputs[path] = digest
        self._touch_head()

    # the history's pages -------------------------------------------------------

    def page_size(self, setting: int) -> int:
        """Summaries per archive page: ``setting`` at a site's first run, then what that run fixed."""
        if self._head.page_size is None:
            self._head.page_size = setting
            self._touch_head()
        return self._head.page_size

    def set_corrections_due(self, feed: str, due: str | None) -> None:
        """When the oldest correction carried by ``feed``'s subscription documents leaves them."""
        if self._head.corrections_due.get(feed) == due:
            return
        if due is None:
            del self._head.corrections_due[feed]
        else:
            self._head.corrections_due[feed] = due
        self._touch_head()

    def log_published(
        self,
        moment: datetime,
        run_id: str,
        change_of: dict[str, str],
        summaries: list[Summary],
        deleted: list[str] | None = None,
    ) -> None:
        """Log what this run published and ``deleted``, for newsletters (``state.log``).

        ``change_of``: ``new`` or ``updated`` by id.
        """
        self._logs[log_key(moment, run_id)] = log_lines(moment, change_of, summaries, deleted or [])

    # committing --------------------------------------------------------------

    def commit(self, *, threads: bool = True) -> None:
        """Write every part this run changed, then the head, which commits them; then delete what they replaced.

        Until the head is written, the state is what it was before the run.
        ``threads``: write the parts from a thread pool (worth it where each write waits on a network).
        """
        self.ids.fold()
        owners = {key: store for store in self._stores for key in store.changed}
        if not owners and not self._logs and not self._head_changed:
            return
        written: dict[str, str] = {}
        checksums: dict[str, str] = {}

        def save(key: str) -> None:
            if key in self._logs:
                self._put_new(key, self._logs[key], "application/json")
                return
            data = owners[key].serialise(key)
            file = part_file(key, self._generation)
            self._put_new(file, data, "application/octet-stream" if key == KNOWN_IDS_KEY else "application/json")
            written[key] = file
            checksums[key] = checksum(data)

        changed = sorted([*owners, *self._logs])
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
        for store in self._stores:
            store.changed.clear()
        self._head_changed = False
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


def published_tags(state: ObjectStore) -> dict[str, TagInfo]:
    """The digest's tags by slug, with their counts, as the last publish run recorded them."""
    return Catalog(state).head.tags
