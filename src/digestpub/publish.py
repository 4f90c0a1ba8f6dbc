"""The publish use case: new and edited summaries in, changed feeds and pages out.

    source store → ingest → catalog (state) → render what changed → dest store → report

The CLI and the cloud function both call ``publish()``; neither holds logic of its own.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import importlib.metadata
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from operator import attrgetter
from typing import Any

from digestpub import __version__
from digestpub.catalog import ALL_FEED, Catalog, IdEntry, PublishedFile, StateLock, Window, WindowItem
from digestpub.errors import StorageError
from digestpub.ingest import SummaryReader, summary_key
from digestpub.model import ObjectInfo, Problem, PublishReport, Summary, SummaryRef, TagInfo, sortable_time
from digestpub.parallel import Crew, default_workers
from digestpub.ports import ObjectStore
from digestpub.render import FORMATS, SEPARATORS, Output
from digestpub.render.entries import ENTRY_REVISION, EntryPack, render_entries
from digestpub.render.feeds import feed_frames
from digestpub.render.pages import page_frame, page_template, render_opml
from digestpub.site import OPML_PATH, Site
from digestpub.templates import template_folder

log = logging.getLogger("digestpub.publish")

Progress = Callable[[str, int, int], None]
"""Called as ``(stage, done, total)`` while a run works, for progress bars."""

_IO_THREADS = 16
# Below these, one process is faster than starting workers.
_PARALLEL_READ_BYTES = 4 << 20
_PARALLEL_FEEDS = 32
_BATCH = 500
"""Records or entries a crew worker sends at a time."""
_NEWS_SPAN = timedelta(days=8)
_NEWS_LIMIT = 1_000


@dataclass(frozen=True)
class PublishOptions:
    lookback_days: int = 2
    full_scan_every: timedelta = timedelta(hours=24)
    full_scan: bool = False
    rebuild: bool = False
    lock_ttl: timedelta = timedelta(minutes=15)
    lock_wait: timedelta = timedelta(minutes=2)
    max_summary_bytes: int = 65_536
    feed_cache_control: str = "public, max-age=300"
    page_cache_control: str = "public, max-age=300"
    workers: int = field(default_factory=default_workers)


@dataclass
class _Changes:
    """What the merge decided, feed by feed."""

    accepted: list[SummaryRef] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    removals: dict[str, set[str]] = field(default_factory=dict)
    """Every touched feed has an entry here and in ``inserts``, empty or not."""
    inserts: dict[str, list[SummaryRef]] = field(default_factory=dict)

    def accept(self, summary: SummaryRef, earlier: IdEntry | None) -> None:
        """Into the feeds of its tags; an edit (``earlier``) first out of every feed it was in."""
        self.accepted.append(summary)
        self.kinds[summary.id] = "new" if earlier is None else "updated"
        new_slugs = summary.tag_slugs
        for feed in (ALL_FEED, *new_slugs):
            inserts = self.inserts.get(feed)
            if inserts is None:
                inserts = self.inserts[feed] = []
                self.removals[feed] = set()
            inserts.append(summary)
        if earlier is not None:
            for feed in (ALL_FEED, *earlier.slugs):
                self.inserts.setdefault(feed, [])
                self.removals.setdefault(feed, set()).add(summary.id)
            for feed in new_slugs:
                self.removals[feed].add(summary.id)


class _TagTally:
    """Tag counts, names and newest dates over a merge, applied to the head once.

    Pydantic attribute writes on ``TagInfo`` cost more than the rest of the merge
    in a cold run, so they wait for ``apply``.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.newest: dict[str, str] = {}
        self.names: dict[str, str] = {}

    def add(self, summary: SummaryRef, old_slugs: Sequence[str]) -> None:
        counts = self.counts
        for slug in set(old_slugs).difference(summary.tag_slugs):
            counts[slug] = counts.get(slug, 0) - 1
        newest = self.newest
        for name, slug in zip(summary.tags, summary.tag_slugs, strict=True):
            self.names.setdefault(slug, name)
            if slug not in old_slugs:
                counts[slug] = counts.get(slug, 0) + 1
            if slug not in newest or summary.published > newest[slug]:
                newest[slug] = summary.published

    def apply(self, tags: dict[str, TagInfo]) -> None:
        for slug in self.counts.keys() | self.newest.keys():
            tag = tags.setdefault(slug, TagInfo(slug=slug, name=self.names.get(slug, slug)))
            tag.count += self.counts.get(slug, 0)
            newest = self.newest.get(slug)
            if newest is not None and (tag.newest is None or newest > sortable_time(tag.newest)):
                tag.newest = datetime.fromisoformat(newest)


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def publish(
    source: ObjectStore,
    dest: ObjectStore,
    state: ObjectStore,
    site: Site,
    options: PublishOptions | None = None,
    progress: Progress | None = None,
) -> PublishReport:
    """Read what is new or changed in ``source``, write the feeds it changes to ``dest``.

    Raises ``StorageError`` when a store fails and ``StateLocked`` when another run
    holds the state for longer than ``options.lock_wait``. Bad input never raises:
    it is in the report's ``problems``.
    """
    options = options or PublishOptions()
    progress = progress or _no_progress
    with StateLock(state, ttl=options.lock_ttl, wait=options.lock_wait) as lock:
        report = PublishReport(run_id=lock.run_id, started_at=datetime.now(UTC))
        with _no_collections():
            # Not kept in a name: the run's records are freed before collections resume.
            _Run(source, dest, state, site, options, progress, report).execute()
    return report


@contextmanager
def _no_collections() -> Iterator[None]:
    """No cycle collection while a run builds tens of thousands of records.

    The records hold no cycles (a cold run leaves 16 objects for the collector),
    but a collection walks all of them: at the default thresholds that was most
    of a cold run's time, and even rare ones cost an incremental run a sixth of
    its CPU. In a forked crew worker a collection also writes to every page it
    shares with the run, which then has to be copied.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Run:
    def __init__(
        self,
        source: ObjectStore,
        dest: ObjectStore,
        state: ObjectStore,
        site: Site,
        options: PublishOptions,
        progress: Progress,
        report: PublishReport,
    ) -> None:
        self.source = source
        self.dest = dest
        self.state = state
        self.site = site
        self.options = options
        self.progress = progress
        self.report = report
        self.rebuild = options.rebuild
        self.previous: Catalog | None = None
        """On a rebuild, the state as it was: what it already published is not news again."""
        if self.rebuild:
            self.previous = _previous_catalog(state)
            self.catalog = Catalog(state, fresh=True)
        else:
            self.catalog = Catalog(state)
        self.rendering = _rendering_fingerprint(site)
        head = self.catalog.head
        if not self.rebuild and head.total and head.rendering != self.rendering:
            # Kept entries are cut from the published files: with other settings or
            # templates they would keep the old look and links, so all is rendered anew.
            log.warning("site settings, templates or digestpub changed since the last run: rendering every feed again")
            self.rebuild = True
            self.previous = self.catalog
            self.catalog = Catalog(state, fresh=True)
        if self.catalog.head.rendering != self.rendering:
            self.catalog.head.rendering = self.rendering
            self.catalog.touch_head()
        self.reader = SummaryReader(default_lang=site.lang, max_summary_bytes=options.max_summary_bytes)
        # A few more than a feed shows, so an edit that drops an item leaves it full.
        self.window = site.feed_size + max(10, site.feed_size // 5)
        self.plans: dict[str, _FeedPlan] = {}
        self.entries: dict[str, EntryPack] = {}
        """Entries rendered this run: the pack that holds each, by summary id."""
        self.owners: dict[str, int] = {}
        """Which crew worker read each object, by key: it holds that object's summaries."""

    def execute(self) -> None:
        with self._timed("read"):
            changed = self._list_changed()
            fetched = self._fetch(changed)
        sizes = {key: len(data) for key, data in fetched}
        large = sum(sizes.values()) >= _PARALLEL_READ_BYTES
        # The crew's workers read the summaries and keep them: the run gets only their
        # refs, and later asks each worker for the entries of those the feeds show.
        held = {"reader": self.reader, "objects": fetched, "shown": _ShownSoFar(self.site.feed_size, _NEWS_LIMIT)}
        with Crew(self.options.workers if large else 1, held) as crew:
            del fetched, held  # the workers have them; the raw bytes are the largest thing a cold run holds
            with self._timed("read"):
                refs = self._read(crew, changed, sizes)
            with self._timed("merge"):
                changes = self._merge(refs)
                self._apply(changes, crew)
        with self._timed("render_and_write"):
            self._write_files(changes)
        with self._timed("save_state"):
            self._save_state()
        self.report.finished_at = datetime.now(UTC)
        self._save_report()

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            spent = self.report.seconds.get(stage, 0) + time.perf_counter() - started
            self.report.seconds[stage] = round(spent, 4)

    # reading ---------------------------------------------------------------

    def _listing_start(self) -> str | None:
        head = self.catalog.head
        now = datetime.now(UTC)
        overdue = head.last_full_scan is None or now - head.last_full_scan >= self.options.full_scan_every
        if self.options.full_scan or self.rebuild or head.cursor is None or overdue:
            self.report.full_scan = True
            head.last_full_scan = now
            self.catalog.touch_head()
            return None
        newest = date.fromisoformat(head.cursor.replace("/", "-"))
        # Keys of a day sort after the bare day ("2026/11/20/x" > "2026/11/20").
        return (newest - timedelta(days=self.options.lookback_days)).strftime("%Y/%m/%d")

    def _list_changed(self) -> list[ObjectInfo]:
        start_after = self._listing_start()
        self.progress("listing", 0, 0)
        changed: list[ObjectInfo] = []
        newest_day = self.catalog.head.cursor
        for info in self.source.list(start_after=start_after):
            found = summary_key(info.key)
            if found is None:
                continue
            day = found[0]
            if newest_day is None or day > newest_day:
                newest_day = day
            if self.catalog.seen(day).get(info.key) != info.etag:
                changed.append(info)
        if newest_day != self.catalog.head.cursor:
            self.catalog.head.cursor = newest_day
            self.catalog.touch_head()
        return changed

    def _read(self, crew: Crew, changed: list[ObjectInfo], sizes: dict[str, int]) -> list[SummaryRef]:
        """Decode the fetched objects in the crew, and report what was wrong in them.

        ``sizes`` are the fetched objects' sizes by key, in the order they were fetched.
        """
        shares = _balanced(list(sizes.values()), crew.size)
        keys = list(sizes)
        self.owners = {keys[index]: worker for worker, share in enumerate(shares) for index in share}
        records = [record for batch in crew.run(_read_held, shares) for record in batch]
        # In the order of the objects, as one process would have read them: the
        # first copy of a duplicate id is the one that holds it.
        records.sort(key=_source_position)
        broken = self.catalog.head.broken
        for info in changed:
            if broken.pop(info.key, None) is not None:
                self.catalog.touch_head()
        summaries: list[SummaryRef] = []
        for record in records:
            if isinstance(record, SummaryRef):
                summaries.append(record)
                continue
            self._problem(record)
            if record.kind == "skipped":
                broken.setdefault(record.key, []).append(record)
                self.catalog.touch_head()
        read = {info.key for info in changed}
        self.report.still_broken = [
            problem for key, problems in sorted(broken.items()) if key not in read for problem in problems
        ]
        return summaries

    def _fetch(self, infos: list[ObjectInfo]) -> list[tuple[str, bytes]]:
        fetched: list[tuple[str, bytes]] = []
        total = len(infos)
        with ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="digestpub-read") as pool:
            for done, (info, found) in enumerate(
                zip(infos, pool.map(self.source.read, [info.key for info in infos]), strict=True),
                start=1,
            ):
                # Seen is recorded with the version actually read, so a rewrite between
                # listing and reading is not mistaken for the listed version.
                self.catalog.mark_seen(info.key[:10], info.key, found[1] if found else info.etag)
                if found is not None:  # None: deleted since it was listed
                    fetched.append((info.key, found[0]))
                if done % 256 == 0 or done == total:
                    self.progress("reading", done, total)
        self.report.objects_read += len(fetched)
        return fetched

    def _problem(self, problem: Problem) -> None:
        self.report.problems.append(problem)
        level = logging.WARNING if problem.kind == "skipped" else logging.INFO
        log.log(level, "%s %s: %s", problem.kind, problem.where(), problem.reason)

    # merging ---------------------------------------------------------------

    def _newest_in_batch(self, summaries: list[SummaryRef]) -> list[SummaryRef]:
        newest: dict[str, SummaryRef] = {}
        for summary in summaries:
            earlier = newest.get(summary.id)
            if earlier is None or summary.version > earlier.version:
                newest[summary.id] = summary
            elif summary.version == earlier.version:
                # Even an identical copy under another key is reported, never dropped unseen.
                self._duplicate(summary, earlier.source_key, earlier.source_line)
        return list(newest.values())

    def _duplicate(self, summary: SummaryRef, key: str, line: int | None) -> None:
        where = f"{key}:{line}" if line is not None else key
        self._problem(
            Problem(
                key=summary.source_key,
                line=summary.source_line,
                reason=(
                    f"duplicate id {summary.id!r}: {where} already holds it with the same "
                    "updated_at; publish an edit with a later updated_at, or remove the copy"
                ),
            )
        )

    def _merge(self, summaries: list[SummaryRef]) -> _Changes:
        changes = _Changes()
        tally = _TagTally()
        unchanged = 0  # counted here, not on the pydantic report, for the same reason as the tally
        entry_of = self.catalog.entry
        for summary in self._newest_in_batch(summaries):
            earlier = entry_of(summary.id)
            if earlier is not None:
                if summary.version == earlier.version and summary.source_key != earlier.key:
                    self._duplicate(summary, earlier.key, None)
                    continue
                if summary.version < earlier.version or summary.digest == earlier.digest:
                    # An older version (superseded by an edit) or a re-read of the same text.
                    unchanged += 1
                    continue
            changes.accept(summary, earlier)
            tally.add(summary, () if earlier is None else earlier.slugs)
        # Recorded after the loop: its ids are distinct, so no lookup in it needs an earlier record.
        self.catalog.record(changes.accepted)
        added = sum(1 for kind in changes.kinds.values() if kind == "new")
        self.catalog.head.total += added
        self.report.summaries_new += added
        self.report.summaries_updated += len(changes.accepted) - added
        self.report.summaries_unchanged += unchanged
        tally.apply(self.catalog.head.tags)
        if changes.accepted:
            self.catalog.touch_head()
        return changes

    def _news(self, changes: _Changes) -> tuple[list[SummaryRef], dict[str, str]]:
        """What newsletters should carry, with each one's kind: a backfill of history is not news.

        Only summaries within ``_NEWS_SPAN`` of the newest one this run accepted,
        and at most ``_NEWS_LIMIT`` of them, so a cold start over years of
        summaries does not make one enormous issue.
        """
        if not changes.accepted:
            return [], {}
        newest_first = sorted(changes.accepted, key=_sort_key, reverse=True)[:_NEWS_LIMIT]
        since = sortable_time(datetime.fromisoformat(newest_first[0].published) - _NEWS_SPAN)
        news = [summary for summary in newest_first if summary.published >= since]
        if self.previous is not None:
            return self._not_published_before(news, changes.kinds)
        return news, changes.kinds

    def _not_published_before(
        self, news: list[SummaryRef], kinds: dict[str, str]
    ) -> tuple[list[SummaryRef], dict[str, str]]:
        """On a rebuild: only what the state before it had not published, so no email repeats a summary."""
        assert self.previous is not None
        fresh: list[SummaryRef] = []
        fresh_kinds: dict[str, str] = {}
        for summary in news:
            try:
                before = self.previous.entry(summary.id)
            except StorageError:  # the old state is damaged: treat the summary as not seen
                before = None
            if before is not None and before.version >= summary.version:
                continue
            fresh.append(summary)
            fresh_kinds[summary.id] = kinds[summary.id] if before is None else "updated"
        return fresh, fresh_kinds

    def _apply(self, changes: _Changes, crew: Crew) -> None:
        """Each touched feed's new window; entries are rendered only for the new items it shows.

        The crew's workers, which hold the summaries, render those entries and hand
        over the summaries that newsletters log.
        """
        accepted = {summary.id: summary for summary in changes.accepted}
        shown_new: dict[str, SummaryRef] = {}
        for feed, inserts in changes.inserts.items():
            window = self.catalog.window(feed)
            kept: list[WindowItem | SummaryRef] = []
            if window.items:
                # Inserted ids are dropped too: a run that stopped after saving some
                # state may have saved this feed with them already.
                replaced = changes.removals[feed] | {summary.id for summary in inserts}
                kept = [item for item in window.items if item.id not in replaced]
            # A sort, not heapq.nlargest: the same items, and in C, twice as fast on a cold run's 50,000.
            newest = sorted([*kept, *inserts], key=_sort_key, reverse=True)[: self.window]
            items = [_window_item(item) if isinstance(item, SummaryRef) else item for item in newest]
            self.plans[feed] = _FeedPlan(feed, items, window)
            for item in items[: self.site.feed_size]:
                if item.id in accepted:
                    shown_new[item.id] = accepted[item.id]
            self._warn_if_short(feed, len(items), len(window.items) - len(kept))
        news, kinds = self._news(changes)
        requests: list[_HeldRequest] = [_HeldRequest(self.site, [], []) for _ in range(crew.size)]
        for summary in shown_new.values():
            requests[self.owners[summary.source_key]].render.append((summary.source_key, summary.source_line))
        for summary in news:
            requests[self.owners[summary.source_key]].hand_over.append((summary.source_key, summary.source_line))
        self.entries = {}
        handed: dict[str, Summary] = {}
        for pack, summaries in crew.run(_render_held, requests):
            self.entries.update(dict.fromkeys(pack.ids(), pack))
            handed.update((summary.id, summary) for summary in summaries)
        if news:
            # Rare: a worker let a summary go that turned out to be news (see _ShownSoFar).
            handed |= self._read_again({summary.id: summary.source_key for summary in news if summary.id not in handed})
            logged = [handed[summary.id] for summary in news if summary.id in handed]
            self.catalog.log_published(self.report.started_at, self.report.run_id, kinds, logged)

    def _warn_if_short(self, feed: str, held: int, removed: int) -> None:
        head = self.catalog.head
        expected = head.total if feed == ALL_FEED else head.tags[feed].count
        if removed and held < min(expected, self.site.feed_size):
            log.warning(
                "feed %s now holds %d of its %d summaries after edits removed some; publish --rebuild refills it",
                feed,
                held,
                expected,
            )

    # rendering and writing -------------------------------------------------

    def _write_files(self, changes: _Changes) -> None:
        """Write each touched feed's files whose bytes changed, and record its new window.

        With a local folder and many feeds, a crew of forked workers (which see
        this run as it is) produces the feeds and hands back only their new
        windows. Otherwise a thread pool does, overlapping the uploads of one feed
        with the rendering of the next.
        """
        plans = [self.plans[feed] for feed in sorted(self.plans)]
        results: list[_FeedResult] = []
        if _is_local(self.dest) and _is_local(self.source):
            many = len(plans) >= _PARALLEL_FEEDS
            if many:
                page_template()  # compiled once here rather than once in every worker
            with Crew(self.options.workers if many else 1, {"plans": plans, "run": self}) as crew:
                # A feed's files grow with the items it shows.
                shares = _balanced([len(plan.items) + 1 for plan in plans], crew.size)
                for result in crew.run(_produce_feeds_held, shares):
                    results.append(result)
                    self.progress("rendering", len(results), len(plans))
        else:
            with ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="digestpub-write") as pool:
                for done, result in enumerate(pool.map(self._produce_feed, plans), start=1):
                    results.append(result)
                    self.progress("rendering", done, len(plans))
        for result in results:
            self.catalog.set_window(result.feed, result.window)
            self.report.files_written += result.written
            self.report.files_unchanged += len(FORMATS) - result.written
        if changes.accepted:
            self._write_opml()

    def _write_opml(self) -> None:
        opml = render_opml(self.site, self.catalog.head.tags.values())
        digest = _digest(opml.body)
        if self.catalog.head.outputs.get(opml.path) != digest:
            _put_output(self.dest, self.options, opml)
            self.catalog.head.outputs[opml.path] = digest
            self.catalog.touch_head()
            self.report.files_written += 1
        else:
            self.report.files_unchanged += 1

    def _produce_feed(self, plan: _FeedPlan) -> _FeedResult:
        """Render one feed's files, each entry cut from last time's files where it can be, and write what changed."""
        cut = self._published_entries(plan, [item for item in plan.items if item.id not in self.entries])
        entries, items = self.entries, plan.items
        while True:
            shown = items[: self.site.feed_size]
            missing = [item for item in shown if item.id not in entries and item.id not in cut]
            if not missing:
                break
            # Rare: a file changed by someone else, or an item moved up from below the
            # shown ones (an edit took one out). Its entry is rendered from its source.
            recovered = self._entries_from_source(plan.feed, missing)
            entries = {**entries, **dict.fromkeys(recovered.ids(), recovered)}
            gone = {item.id for item in missing} - set(recovered.ids())
            if not gone:
                break
            items = [item for item in items if item.id not in gone]
        rows: list[list[memoryview]] = []
        for item in shown:
            pack = entries.get(item.id)
            rows.append(cut[item.id] if pack is None else pack.texts(item.id))
        tag = None if plan.feed == ALL_FEED else self.catalog.head.tags[plan.feed]
        newest = max((item.version for item in shown), default=None)
        frames = [
            *feed_frames(self.site, plan.feed, tag, None if newest is None else datetime.fromisoformat(newest)),
            page_frame(self.site, plan.feed, tag, self.catalog.head.tags, empty=not shown),
        ]
        files: dict[str, PublishedFile] = {}
        written = 0
        for column, (kind, frame) in enumerate(zip(FORMATS, frames, strict=True)):
            body = frame.fill([row[column] for row in rows])
            digest = _digest(body)
            before = plan.window.files.get(kind)
            if before is not None and before.digest == digest:
                files[kind] = before
                continue
            version = _put_output(self.dest, self.options, Output(frame.path, body, frame.content_type))
            files[kind] = PublishedFile(digest, version, len(frame.head))
            written += 1
        sizes = {item.id: [len(part) for part in row] for item, row in zip(shown, rows, strict=True)}
        window = [
            WindowItem(item.id, item.published, item.version, item.key, item.line, sizes.get(item.id)) for item in items
        ]
        return _FeedResult(plan.feed, Window(window, files), written)

    def _published_entries(self, plan: _FeedPlan, wanted: list[WindowItem]) -> dict[str, list[memoryview]]:
        """The bytes of ``wanted`` entries, cut from the files this feed was last published as.

        A file that is gone or was changed by someone else is not used: entries
        missing from it are rendered again from their source.
        """
        old = plan.window
        if not wanted or old.files.keys() != set(FORMATS):
            return {}
        bodies: list[memoryview] = []
        for kind in FORMATS:
            found = self.dest.read(self.site.file_path(plan.feed, kind))
            if found is None or found[1] != old.files[kind].version:
                log.info("feed %s: its %s file changed since it was published; rendering it afresh", plan.feed, kind)
                return {}
            bodies.append(memoryview(found[0]))
        positions: dict[str, list[tuple[int, int]]] = {}
        starts = [old.files[kind].head for kind in FORMATS]
        gaps = [len(SEPARATORS[kind]) for kind in FORMATS]
        for item in old.items:
            if item.sizes is None:  # kept below the shown items: in no file
                continue
            positions[item.id] = [(start, start + size) for start, size in zip(starts, item.sizes, strict=True)]
            starts = [start + size + gap for start, size, gap in zip(starts, item.sizes, gaps, strict=True)]
        return {
            item.id: [body[start:end] for body, (start, end) in zip(bodies, positions[item.id], strict=True)]
            for item in wanted
            if item.id in positions
        }

    def _entries_from_source(self, feed: str, items: list[WindowItem]) -> EntryPack:
        """Entries rendered again from the objects their summaries were read from."""
        found = self._read_again({item.id: item.key for item in items})
        for item in items:
            if item.id not in found:
                log.warning("feed %s: summary %s is gone from %s; it is left out of the feed", feed, item.id, item.key)
        return EntryPack(render_entries(self.site, list(found.values())))

    def _read_again(self, wanted: dict[str, str]) -> dict[str, Summary]:
        """The newest version of each summary in ``wanted`` (id to key), read again from its object.

        By id, not line: the object may have been rewritten since.
        """
        found: dict[str, Summary] = {}
        for key in sorted(set(wanted.values())):
            read = self.source.read(key)
            if read is None:
                continue
            for record in self.reader.read_object(key, read[0]):
                if isinstance(record, Summary) and wanted.get(record.id) == key:
                    earlier = found.get(record.id)
                    if earlier is None or record.version > earlier.version:
                        found[record.id] = record
        return found

    def _save_state(self) -> None:
        """Write the parts of the state this run changed, then the head, which commits them."""
        self.catalog.fold_recent_ids()
        parts = self.catalog.changed_parts()

        def save(key: str) -> None:
            self.catalog.saved(*self.catalog.save_part(key))

        if _is_local(self.state):
            for part in parts:
                save(part)
        else:
            with ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="digestpub-state") as pool:
                list(pool.map(save, parts))
        self.catalog.commit()
        if self.report.full_scan:
            # Once a day: files of parts that runs stopped before their head left behind.
            for key in self.catalog.sweep():
                log.info("deleted %s: no state names it", key)

    def _save_report(self) -> None:
        body = self.report.model_dump_json(indent=1).encode()
        report = self.report
        if report.objects_read or report.files_written or report.problems:
            stamp = report.started_at.strftime("%Y%m%dT%H%M%SZ")
            key = f"reports/{stamp}-{report.run_id[:8]}.json"
            self.state.put(key, body, content_type="application/json")
        self.state.put("reports/latest.json", body, content_type="application/json")


def _previous_catalog(state: ObjectStore) -> Catalog | None:
    try:
        return Catalog(state)
    except StorageError as error:  # a damaged or older state: the usual reason to rebuild
        log.info("rebuilding without the earlier state (%s)", error)
        return None


_RENDERING_LIBRARIES = ("feedgen", "pyromark", "nh3")
"""Whose output is in the published entries: another version may write other bytes."""


@cache  # a warm cloud function runs many times with the same site and templates
def _rendering_fingerprint(site: Site) -> str:
    """What published bytes depend on besides the summaries."""
    hasher = hashlib.sha256(repr(site).encode())
    libraries = " ".join(f"{name} {importlib.metadata.version(name)}" for name in _RENDERING_LIBRARIES)
    hasher.update(f"{__version__} entries {ENTRY_REVISION} {libraries}".encode())
    folder = template_folder()
    for name in ("layout.html.j2", "page.html.j2", "_summary.html.j2"):
        hasher.update((folder / name).read_bytes())
    return hasher.hexdigest()[:32]


def _source_position(record: SummaryRef | Problem) -> tuple[str, int]:
    if isinstance(record, SummaryRef):
        return record.source_key, record.source_line or 0
    return record.key, record.line or 0


_sort_key: Callable[[WindowItem | SummaryRef], tuple[str, str]] = attrgetter("published", "id")
"""Newest first is descending order (as ``Summary.sort_key``), without a Python call per item."""


def _window_item(summary: SummaryRef) -> WindowItem:
    return WindowItem(summary.id, summary.published, summary.version, summary.source_key, summary.source_line)


@dataclass
class _FeedPlan:
    """A touched feed: its new window, newest first, and the window it was last published with."""

    feed: str
    items: list[WindowItem]
    window: Window


@dataclass
class _FeedResult:
    feed: str
    window: Window
    written: int
    """How many of the feed's files had new bytes; the others were left as they were."""


def _balanced(sizes: Sequence[int], parts: int) -> list[list[int]]:
    """Indexes of ``sizes`` in ``parts`` shares of about the same total, each in order."""
    shares: list[list[int]] = [[] for _ in range(parts)]
    totals = [(0, part) for part in range(parts)]
    for index in sorted(range(len(sizes)), key=sizes.__getitem__, reverse=True):
        total, part = heapq.heappop(totals)
        shares[part].append(index)
        heapq.heappush(totals, (total + sizes[index], part))
    return [sorted(share) for share in shares]


_Held = dict[str, Any]
"""A crew worker's memory: ``reader``, ``shown`` and the fetched ``objects`` it
started with, then the ``summaries`` it read and keeps, by ``(key, line)``."""

_Place = tuple[str, int | None]
"""Where a summary was read: its object's key, and its line in a JSON Lines object."""


class _ShownSoFar:
    """Which of the summaries a worker has read some feed may show, or newsletters log.

    A feed shows its newest ``feed_size`` summaries, and newsletters take the
    newest ``news`` of a run. A summary not among the newest of any of its feeds
    in one worker's share is not among them in the whole run either, so that
    worker lets it go: a cold run's workers hold some 13,000 summaries each, not
    25,000. The run reads again from the source whatever turns out to be
    needed after all (possible when this run's re-reads crowd the newest).
    """

    def __init__(self, feed_size: int, news: int) -> None:
        self.feed_size = feed_size
        self.all_size = max(feed_size, news)
        self.newest: dict[str, list[tuple[str, str, _Place]]] = {}
        """Per feed, a heap of the newest summaries offered: the oldest of them first."""
        self.feeds_showing: dict[_Place, int] = {}

    def offer(self, place: _Place, summary: Summary) -> list[_Place]:
        """Count a new summary in; returns the places of those no feed can show any more."""
        # Flat, so a heap compares two strings, not two tuples of them.
        item = (*summary.sort_key, place)
        gone: list[_Place] = []
        showing = 0
        for feed in (ALL_FEED, *summary.tag_slugs):
            heap = self.newest.get(feed)
            if heap is None:
                heap = self.newest[feed] = []
            if len(heap) < (self.all_size if feed == ALL_FEED else self.feed_size):
                heapq.heappush(heap, item)
            elif item > heap[0]:
                out = heapq.heapreplace(heap, item)[2]
                left = self.feeds_showing[out] - 1
                if left:
                    self.feeds_showing[out] = left
                else:
                    del self.feeds_showing[out]
                    gone.append(out)
            else:
                continue
            showing += 1
        if showing:
            self.feeds_showing[place] = showing
        else:
            gone.append(place)
        return gone


def _read_held(held: _Held, indexes: Sequence[int]) -> Iterator[list[SummaryRef | Problem]]:
    """In a crew worker: read the fetched objects at ``indexes``, keep their summaries, yield refs."""
    reader: SummaryReader = held["reader"]
    objects: list[tuple[str, bytes]] = held.pop("objects")
    mine = [objects[index] for index in indexes]
    # The list itself, not a name for it: a forked worker still has the frames
    # of the run that forked it, which name the list too. So the other workers'
    # objects are freed here, and each object once it is read.
    objects.clear()
    mine.reverse()
    summaries: dict[_Place, Summary] = held.setdefault("summaries", {})
    shown: _ShownSoFar = held["shown"]
    records: list[SummaryRef | Problem] = []
    while mine:
        key, data = mine.pop()
        for record in reader.read_object(key, data):
            if isinstance(record, Summary):
                where = (record.source_key, record.source_line)
                summaries[where] = record
                for gone in shown.offer(where, record):
                    del summaries[gone]
                records.append(record.ref())
            else:
                records.append(record)
        if len(records) >= _BATCH:
            yield records
            records = []
    yield records


@dataclass
class _HeldRequest:
    """What a run asks of one crew worker once the feeds are planned."""

    site: Site
    render: list[tuple[str, int | None]]
    """The summaries to render entries of, by ``(key, line)``."""
    hand_over: list[tuple[str, int | None]]
    """The summaries to send back whole: newsletters log them."""


def _render_held(held: _Held, request: _HeldRequest) -> Iterator[tuple[EntryPack, list[Summary]]]:
    """In a crew worker: render the entries asked for and hand over the summaries asked for.

    What the worker no longer holds is left out: the run reads it again from its source.
    """
    summaries: dict[_Place, Summary] = held.get("summaries", {})
    yield EntryPack([]), [summaries[where] for where in request.hand_over if where in summaries]
    batch: list[Summary] = []
    for where in request.render:
        # Rendered once and sent: the worker keeps neither the entry nor the summary's HTML.
        summary = summaries.pop(where, None)
        if summary is None:
            continue
        batch.append(summary)
        if len(batch) >= _BATCH:
            yield EntryPack(render_entries(request.site, batch)), []
            batch = []
    yield EntryPack(render_entries(request.site, batch)), []


def _is_local(store: ObjectStore) -> bool:
    """A local folder: cheap calls, no threads needed, and safe to use from forked workers."""
    return bool(getattr(store, "is_local", False))


def _produce_feeds_held(held: _Held, indexes: Sequence[int]) -> Iterator[_FeedResult]:
    """In a crew worker: produce the feeds at ``indexes`` of the run's plans."""
    run: _Run = held["run"]
    plans: list[_FeedPlan] = held["plans"]
    for index in indexes:
        yield run._produce_feed(plans[index])


def _digest(body: bytes) -> str:
    # SHA-256 runs in hardware here, over twice as fast as BLAKE2 on feed-sized bytes.
    return hashlib.sha256(body).hexdigest()[:32]


def _put_output(dest: ObjectStore, options: PublishOptions, output: Output) -> str:
    """Write one file with its headers; returns the destination's version tag for it."""
    is_feed = output.path.startswith("feeds/") and output.path != OPML_PATH
    cache_control = options.feed_cache_control if is_feed else options.page_cache_control
    return dest.put(output.path, output.body, content_type=output.content_type, cache_control=cache_control)
