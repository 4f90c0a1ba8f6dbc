"""One publish run, stage by stage: open the state, read, merge, plan, produce, commit, report."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from digestpub.errors import StorageError
from digestpub.ingest import SummaryReader
from digestpub.model import PublishReport, Summary, SummaryRef
from digestpub.ports import ObjectStore
from digestpub.publish.entries import SummarySource, read_again
from digestpub.publish.fingerprint import rendering_fingerprint
from digestpub.publish.listing import Progress, fetch, full_scan_due, list_changed
from digestpub.publish.options import PublishOptions
from digestpub.publish.plan import (
    NEWS_LIMIT,
    FeedPlan,
    Merge,
    merge,
    news,
    not_published_before,
    plan_feed,
    window_size,
)
from digestpub.publish.produce import CacheControl, Producer
from digestpub.publish.report import count_merge, count_published, save_report, sort_out, timed, warn_if_short
from digestpub.site import OPML_PATH, Site
from digestpub.state.catalog import Catalog
from digestpub.state.lock import StateLock
from digestpub.state.parts import IdEntry

log = logging.getLogger("digestpub.publish")

_PARALLEL_READ_BYTES = 4 << 20
"""Below this many bytes read, one process is faster than starting workers."""


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
    with StateLock(state, ttl=options.lock_ttl, wait=options.lock_wait) as lock:
        report = PublishReport(run_id=lock.run_id, started_at=datetime.now(UTC))
        with _no_collections():
            _run(source, dest, state, site, options, progress or _no_progress, report)
    return report


def _run(
    source: ObjectStore,
    dest: ObjectStore,
    state: ObjectStore,
    site: Site,
    options: PublishOptions,
    progress: Progress,
    report: PublishReport,
) -> None:
    catalog, before = _open_state(state, site, options.rebuild)
    # A fresh state has no cursor: it is a full scan too.
    report.full_scan = options.full_scan or full_scan_due(catalog, report.started_at, options.full_scan_every)
    if report.full_scan:
        catalog.note_full_scan(report.started_at)
    with timed(report, "read"):
        changed = list_changed(
            source, catalog, full=report.full_scan, lookback_days=options.lookback_days, progress=progress
        )
        fetched = fetch(source, catalog, changed, progress)
    report.objects_read = len(fetched)
    reader = SummaryReader(default_lang=site.lang, max_summary_bytes=options.max_summary_bytes)
    large = sum(len(data) for _, data in fetched) >= _PARALLEL_READ_BYTES
    with SummarySource(reader, fetched, options.workers if large else 1, site.feed_size, NEWS_LIMIT) as summaries:
        del fetched  # the raw bytes are the largest thing a cold run holds; the workers have them
        with timed(report, "read"):
            refs = sort_out(summaries.read(), {info.key for info in changed}, catalog, report)
        with timed(report, "merge"):
            changes = merge(refs, catalog.entry)
            count_merge(report, changes)
            catalog.record(changes.accepted)
            catalog.count_tags(changes.added, changes.tag_counts, changes.tag_newest, changes.tag_names)
            plans = [
                plan_feed(feed, catalog.window(feed), changes, window_size(site.feed_size))
                for feed in sorted(changes.inserts)
            ]
            for plan in plans:
                warn_if_short(catalog, plan.feed, len(plan.items), plan.removed, site.feed_size)
            logged, kinds = news(changes, NEWS_LIMIT), changes.kinds
            if before is not None:
                logged, kinds = not_published_before(logged, kinds, _lenient(before))
            rendered = summaries.render(site, _shown_new(plans, changes, site.feed_size), logged)
    _log_news(catalog, report, logged, kinds, rendered.summaries, lambda ids: read_again(source, reader, ids))
    with timed(report, "render_and_write"):
        cache_control = CacheControl(options.feed_cache_control, options.page_cache_control)
        producer = Producer(site, source, dest, reader, cache_control, rendered.entries, catalog.head.tags)
        _produce(producer, plans, catalog, report, options.workers, progress)
        if changes.accepted:
            _write_opml(producer, catalog, report)
        count_published(report, catalog)
    with timed(report, "save_state"):
        catalog.commit(threads=not getattr(state, "is_local", False))
        if report.full_scan:
            # Once a day: files of parts that runs stopped before their head left behind.
            for key in catalog.sweep():
                log.info("deleted %s: no state names it", key)
    report.finished_at = datetime.now(UTC)
    save_report(state, report)


def _shown_new(plans: list[FeedPlan], changes: Merge, feed_size: int) -> list[SummaryRef]:
    """The summaries accepted this run that some feed shows: only their entries are rendered."""
    accepted = {summary.id: summary for summary in changes.accepted}
    shown = {item.id: accepted[item.id] for plan in plans for item in plan.items[:feed_size] if item.id in accepted}
    return list(shown.values())


def _log_news(
    catalog: Catalog,
    report: PublishReport,
    news: list[SummaryRef],
    kinds: dict[str, str],
    kept: dict[str, Summary],
    read: Callable[[dict[str, str]], dict[str, Summary]],
) -> None:
    """Log the news for newsletters, whole: as the workers ``kept`` them, or ``read`` again (id to key).

    Rarely read: a worker let a summary go that turned out to be news (see ``publish.entries``).
    """
    if not news:
        return
    whole = kept | read({summary.id: summary.source_key for summary in news if summary.id not in kept})
    found = [whole[summary.id] for summary in news if summary.id in whole]
    catalog.log_published(report.started_at, report.run_id, kinds, found)


def _produce(
    producer: Producer, plans: list[FeedPlan], catalog: Catalog, report: PublishReport, workers: int, progress: Progress
) -> None:
    for done, result in enumerate(producer.produce_all(plans, workers), start=1):
        catalog.set_window(result.feed, result.window)
        report.files_written += result.written
        report.files_unchanged += result.unchanged
        progress("rendering", done, len(plans))


def _write_opml(producer: Producer, catalog: Catalog, report: PublishReport) -> None:
    digest = producer.write_opml(catalog.head.outputs.get)
    if digest is None:
        report.files_unchanged += 1
    else:
        catalog.set_output_digest(OPML_PATH, digest)
        report.files_written += 1


def _open_state(state: ObjectStore, site: Site, rebuild: bool) -> tuple[Catalog, Catalog | None]:
    """The state this run changes, and on a rebuild the state as it was: what it published is not news again."""
    fingerprint = rendering_fingerprint(site)
    before: Catalog | None = None
    if rebuild:
        before = _readable(state)
    else:
        catalog = Catalog(state)
        if not catalog.head.total or catalog.head.rendering == fingerprint:
            catalog.set_rendering(fingerprint)
            return catalog, None
        # Kept entries are cut from the published files: with other settings or
        # templates they would keep the old look and links, so all is rendered anew.
        log.warning("site settings, templates or digestpub changed since the last run: rendering every feed again")
        before = catalog
    catalog = Catalog(state, fresh=True)
    catalog.set_rendering(fingerprint)
    return catalog, before


def _readable(state: ObjectStore) -> Catalog | None:
    try:
        return Catalog(state)
    except StorageError as error:  # a damaged or older state: the usual reason to rebuild
        log.info("rebuilding without the earlier state (%s)", error)
        return None


def _lenient(before: Catalog) -> Callable[[str], IdEntry | None]:
    def entry(summary_id: str) -> IdEntry | None:
        try:
            return before.entry(summary_id)
        except StorageError:  # the old state is damaged: the summary counts as not published
            return None

    return entry


@contextmanager
def _no_collections() -> Iterator[None]:
    """No cycle collection while a run builds tens of thousands of records.

    The records hold no cycles (a cold run leaves 16 objects for the collector),
    but a collection walks all of them: at the default thresholds that was most
    of a cold run's time, and even rare ones cost an incremental run a sixth of
    its CPU. In a forked worker a collection also writes to every page it
    shares with the run, which then has to be copied.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _no_progress(stage: str, done: int, total: int) -> None:
    return None
