"""One publish run, stage by stage: open the state, read, merge, plan, produce, commit, report."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from digestpub.errors import StorageError
from digestpub.model import PublishReport, Summary, SummaryRef, sortable_time
from digestpub.ports import HubNotifier, ObjectStore
from digestpub.publish import announce, identity, search, search_bundles
from digestpub.publish.entries import SummarySource, read_again
from digestpub.publish.fingerprint import rendering_fingerprint
from digestpub.publish.ingest import SummaryReader
from digestpub.publish.listing import Progress, full_scan_due, list_changed, read_with_copies
from digestpub.publish.options import PublishOptions
from digestpub.publish.pages import FeedChanges, FeedPlan, Paging, plan_feed, refill, retally
from digestpub.publish.plan import (
    NEWS_LIMIT,
    Merge,
    holdings,
    lost_ids,
    merge,
    news,
    not_published_before,
)
from digestpub.publish.report import count_merge, count_published, save_report, sort_out, timed, warn_if_short
from digestpub.publish.search import SearchChanges, SearchRecords
from digestpub.publish.tagging import kept_slugs
from digestpub.site import ALL_FEED, Site
from digestpub.state.catalog import Catalog
from digestpub.state.lock import StateLock
from digestpub.state.log import logged_versions
from digestpub.state.parts import WindowItem

if TYPE_CHECKING:
    from digestpub.publish.write import Written

log = logging.getLogger("digestpub.publish")

_PARALLEL_READ_BYTES = 4 << 20
"""Below this many bytes to read, one process is faster than starting workers."""
_NAMED_OBJECT_BYTES = 4 << 10
"""What a key named by an event or ``--keys`` counts as, unlisted and so of unknown size: about one summary."""


def publish(
    source: ObjectStore,
    dest: ObjectStore,
    state: ObjectStore,
    site: Site,
    options: PublishOptions | None = None,
    progress: Progress | None = None,
    notifier: HubNotifier | None = None,
) -> PublishReport:
    """Read what is new or changed in ``source``, write the feeds it changes to ``dest``.

    Raises ``StorageError`` when a store fails and ``StateLocked`` when another run
    holds the state for longer than ``options.lock_wait``. Bad input never raises:
    it is in the report's ``problems``. With ``site.hubs`` and a ``notifier``, the
    hubs are told of the feeds whose bytes changed once the state is committed;
    a hub that fails is in the report's ``hub_failures``.
    """
    options = options or PublishOptions()
    with StateLock(state, ttl=options.lock_ttl, wait=options.lock_wait) as lock:
        report = PublishReport(run_id=lock.run_id, started_at=datetime.now(UTC))
        with _no_collections():
            _run(source, dest, state, site, options, progress or _no_progress, report, notifier)
    return report


def _run(
    source: ObjectStore,
    dest: ObjectStore,
    state: ObjectStore,
    site: Site,
    options: PublishOptions,
    progress: Progress,
    report: PublishReport,
    notifier: HubNotifier | None,
) -> None:
    catalog, before, site = _open_state(state, site, options.rebuild)
    report.rendered_again = before is not None and not options.rebuild
    # Every summary is read again: the search records start empty too.
    afresh = before is not None or not catalog.head.total
    unannounced = announce.unannounced(state, catalog) if notifier is not None and site.hubs else []
    # A fresh state has no cursor: it is a full scan too.
    report.full_scan = options.full_scan or full_scan_due(catalog, report.started_at, options.full_scan_every)
    if report.full_scan:
        catalog.note_full_scan(report.started_at)
    with timed(report, "read"):
        listing = list_changed(
            source,
            catalog,
            full=report.full_scan,
            lookback_days=options.lookback_days,
            progress=progress,
            named=options.keys,
        )
        catalog.set_cursor(listing.newest_day)
    reader = SummaryReader(
        site.lang, options.max_summary_bytes, options.max_object_bytes, kept_slugs((before or catalog).head.tags)
    )
    large = sum(info.size or _NAMED_OBJECT_BYTES for info in listing.changed) >= _PARALLEL_READ_BYTES
    with SummarySource(reader, source, options.workers if large else 1) as summaries:
        with timed(report, "read"):
            found = read_with_copies(partial(summaries.read, progress=progress), catalog, listing)
            for key, version in found.versions.items():
                catalog.seen.mark(key, version)
            read, gone = list(found.versions), found.gone
            report.objects_read = len(read)
            # A gone object's problems are forgotten with it: there is nothing left to fix.
            known = (before or catalog).head
            sorted_out = sort_out(
                [*listing.refused, *summaries.records()],
                {*read, *gone},
                known.skipped,
                known.tags,
                report,
                rendering_again=report.rendered_again,
            )
            catalog.set_skipped(sorted_out.skipped)
            refs = sorted_out.summaries
        with timed(report, "merge"):
            lost = _note_holdings(catalog, refs, set(read), gone, report)
            changes = merge(refs, catalog.ids.entry, lost)
            count_merge(report, changes, before.ids.entry if before is not None and report.rendered_again else None)
            catalog.count_tags(
                changes.added - len(changes.deleted), changes.tag_counts, changes.tag_newest, changes.tag_names
            )
            paging = _paging(catalog, before, options, site, report.started_at)
            feeds = _plan_feeds(catalog, changes, paging, before)
            positions = _positions(changes, feeds)
            catalog.ids.record(changes.accepted, positions)
            gone_places = _places_of(catalog, changes.deleted)
            catalog.ids.forget(changes.deleted)
            _refill(catalog, feeds, paging)
            for feed, planned in feeds.items():
                subscription = planned.subscription
                warn_if_short(catalog, feed, len(subscription.items), subscription.removed, site.feed_size)
                pages = retally(catalog.feeds.tallies().get(feed, []), planned, paging, site.month_of)
                catalog.feeds.set_tallies(feed, pages)
                catalog.set_corrections_due(feed, _corrections_due(subscription))
            logged, change_of = news(changes, NEWS_LIMIT), changes.change_of
            if options.rebuild or before is not None:
                logged, change_of = not_published_before(logged, change_of, _published_version(state, before, logged))
            # Every summary accepted enters its pages, whether or not a feed shows it.
            rendered = summaries.render(site, changes.accepted, logged)
    _log_news(
        catalog,
        report,
        logged,
        change_of,
        changes.deleted,
        rendered.summaries,
        lambda ids: read_again(source, reader, ids),
    )
    changed_files: list[tuple[str, str]] = []
    with timed(report, "render_and_write"):
        if feeds:
            # Here, not at the top: a run with nothing to write does not pay for the renderers.
            from digestpub.publish.write import write_site

            written = write_site(
                feeds, paging, catalog.head, catalog.feeds.tallies(), rendered.entries, (source, dest, state),
                site, reader, options, report, progress,
            )  # fmt: skip
            _record(catalog, written)
            changed_files = written.changed_files
        count_published(report, catalog, site.search)
    topics: list[str] = []
    if notifier and site.hubs:
        topics = announce.topics(site, changed_files, unannounced)
        if topics:
            catalog.set_announcement(announce.announcement(topics, report))
    records = None
    if site.search:
        with timed(report, "save_state"):
            records = SearchRecords(state)
            texts = rendered.search_texts
            placed = {
                summary_id: (places[0], texts[summary_id])
                for summary_id, places in positions.items()
                if summary_id in texts
            }
            records.apply(SearchChanges(placed, gone_places, fresh=afresh))
    with timed(report, "save_state"):
        catalog.commit(threads=not state.is_local)
        if report.full_scan:
            # Once a day: files of parts that runs stopped before their head left behind.
            for key in catalog.sweep():
                log.info("deleted %s: no state names it", key)
    if notifier is not None and topics:
        announce.tell_hubs(notifier, site, topics, options, report)
    if records is not None and search.due(records, options.search_every, report.started_at):
        with timed(report, "search_index"):
            cache = search_bundles.CacheControls(options.page_cache_control, options.feed_cache_control)
            search_bundles.refresh(records, dest, site, paging.page_of, cache, report)
    report.finished_at = datetime.now(UTC)
    save_report(state, report)


def _paging(catalog: Catalog, before: Catalog | None, options: PublishOptions, site: Site, now: datetime) -> Paging:
    """How this run cuts feeds into pages: with the page size of the site's first run, even when rendering afresh."""
    setting = options.archive_page_size
    if before is not None:
        setting = before.head.page_size or setting
    return Paging(
        catalog.page_size(setting),
        site.feed_size,
        sortable_time(now),
        sortable_time(now + timedelta(days=options.correction_days)),
    )


def _plan_feeds(catalog: Catalog, changes: Merge, paging: Paging, before: Catalog | None) -> dict[str, FeedChanges]:
    """Every feed the changes touch, and those whose corrections are due to leave their subscription documents.

    A run that renders afresh (``before``: the state it started over from) keeps each summary's place.
    """
    for feed, due in catalog.head.corrections_due.items():
        if due <= paging.now and (feed in catalog.head.tags or feed == ALL_FEED):
            changes.inserts.setdefault(feed, [])
            changes.removals.setdefault(feed, set())
    placed_before = None if before is None else partial(_placed_in, before)
    return {
        feed: plan_feed(
            feed, catalog.feeds.window(feed), changes, paging, partial(catalog.feeds.page, feed), placed_before
        )
        for feed in sorted(changes.inserts)
    }


def _placed_in(state: Catalog, summary_id: str, feed: str) -> int | None:
    try:
        entry = state.ids.entry(summary_id)
    except StorageError:  # a damaged state: its places are lost, and pages are cut afresh
        return None
    return None if entry is None else entry.position(feed)


def _positions(changes: Merge, feeds: dict[str, FeedChanges]) -> dict[str, list[int]]:
    """Each accepted summary's position in each of its feeds: everything first, then its tags."""
    return {
        summary.id: [feeds[feed].positions[summary.id] for feed in (ALL_FEED, *summary.tag_slugs)]
        for summary in changes.accepted
    }


def _places_of(catalog: Catalog, summary_ids: list[str]) -> dict[str, int]:
    """Each summary's place in the feed of everything, as the state has it: the search records go by it."""
    entries = {summary_id: catalog.ids.entry(summary_id) for summary_id in summary_ids}
    return {summary_id: entry.positions[0] for summary_id, entry in entries.items() if entry is not None}


def _corrections_due(subscription: FeedPlan) -> str | None:
    window = subscription.next
    return min([*window.corrections.values(), *(stone.until for stone in window.tombstones)], default=None)


def _refill(catalog: Catalog, feeds: dict[str, FeedChanges], paging: Paging) -> None:
    """Feeds that deletions or edits left short take their next items from their complete pages.

    Only then are pages read: a feed that still holds all it can needs none.
    """
    head = catalog.head
    for feed, planned in feeds.items():
        count = head.total if feed == ALL_FEED else head.tags[feed].count
        pages = {plan.page: plan.items for plan in planned.pages}

        def page_items(
            number: int, feed: str = feed, pages: dict[int | None, list[WindowItem]] = pages
        ) -> list[WindowItem]:
            """A page's items as this run leaves them: as planned, or as the state has them."""
            found = pages.get(number)
            return catalog.feeds.page(feed, number).items if found is None else found

        refill(planned, count, paging, page_items)


def _note_holdings(
    catalog: Catalog, summaries: list[SummaryRef], read: set[str], gone: list[str], report: PublishReport
) -> dict[str, set[str]]:
    """Record the ids each object read holds, forget the objects gone; returns the ids each key lost."""
    lost: dict[str, set[str]] = {}
    for key in gone:
        held = catalog.seen.forget(key)
        if held:
            lost[key] = set(held)
        log.info("%s is gone from the source", key)
    now = holdings(summaries)
    partial = {problem.key for problem in report.problems if problem.outcome == "skipped"}
    for key in sorted(read):
        before, after = catalog.seen.held(key), now.get(key, [])
        whole = key not in partial
        ids = lost_ids(before, after, whole=whole)
        if ids:
            lost[key] = ids
        # With a part skipped, the ids held before stay on record until the object is whole or gone.
        catalog.seen.set_held(key, after if whole else list(dict.fromkeys([*before, *after])))
    return lost


def _log_news(
    catalog: Catalog,
    report: PublishReport,
    news: list[SummaryRef],
    change_of: dict[str, str],
    deleted: list[str],
    kept: dict[str, Summary],
    read: Callable[[dict[str, str]], dict[str, Summary]],
) -> None:
    """Log the news for newsletters, whole: as the workers ``kept`` them, or ``read`` again (id to key).

    Rarely read: a worker let a summary go that turned out to be news (see ``publish.entries``).
    The ``deleted`` ids are logged too, so an issue not yet built leaves them out.
    """
    if not news and not deleted:
        return
    whole = kept | read({summary.id: summary.source_key for summary in news if summary.id not in kept})
    found = [whole[summary.id] for summary in news if summary.id in whole]
    catalog.log_published(report.started_at, report.run_id, change_of, found, deleted)


def _record(catalog: Catalog, written: Written) -> None:
    """What the run wrote, in the state: each feed's window and pages, and the files beside them."""
    for result in written.results:
        if result.page is None:
            catalog.feeds.set_window(result.feed, result.window)
        else:
            catalog.feeds.set_page(result.feed, result.page, result.window)
    for path, digest in written.recorded.items():
        catalog.set_output_digest(path, digest)


def _open_state(state: ObjectStore, site: Site, rebuild: bool) -> tuple[Catalog, Catalog | None, Site]:
    """The state this run changes, on a rebuild the state as it was (what it published is not news
    again), and ``site`` with the id authority the state keeps."""
    before: Catalog | None = None
    if rebuild:
        before = _readable(state)
        site = identity.settle(site, None if before is None else before.head, rebuild=True)
        fingerprint = rendering_fingerprint(site)
    else:
        catalog = Catalog(state)
        site = identity.settle(site, catalog.head)
        catalog.set_id_authority(site.id_authority)
        fingerprint = rendering_fingerprint(site)
        if not catalog.head.total or catalog.head.rendering == fingerprint:
            catalog.set_rendering(fingerprint)
            return catalog, None, site
        # Kept entries are cut from the published files: with other settings or
        # templates they would keep the old look and links, so all is rendered anew.
        log.warning("site settings, templates or digestpub changed since the last run: rendering every feed again")
        before = catalog
    catalog = Catalog(state, fresh=True)
    catalog.set_rendering(fingerprint)
    catalog.set_id_authority(site.id_authority)
    return catalog, before, site


def _readable(state: ObjectStore) -> Catalog | None:
    try:
        return Catalog(state)
    except StorageError as error:  # a damaged or older state: the usual reason to rebuild
        log.info("rebuilding without the earlier state (%s)", error)
        return None


def _published_version(
    state: ObjectStore, before: Catalog | None, news: list[SummaryRef]
) -> Callable[[str], str | None]:
    """The newest version of an id published before a rebuild: in the state as it was, or in the publish log.

    The log too, because a rebuild often follows a lost head or damaged parts,
    and the log is what the next newsletter issue is built from.
    """
    first = min((summary.published for summary in news), default=None)
    logged = {} if first is None else logged_versions(state, date.fromisoformat(first[:10]) - timedelta(days=1))

    def version(summary_id: str) -> str | None:
        entry = None
        if before is not None:
            try:
                entry = before.ids.entry(summary_id)
            except StorageError:  # the old state is damaged: the log alone says what was published
                entry = None
        known = [found for found in (None if entry is None else entry.version, logged.get(summary_id)) if found]
        return max(known, default=None)

    return version


@contextmanager
def _no_collections() -> Iterator[None]:
    """No cycle collection while a run builds tens of thousands of records.

    The records hold no cycles (a cold run leaves a handful of objects for the
    collector), but a collection walks all of them: at the default thresholds that
    was most of a cold run's time, and even rare ones cost an incremental run a
    good share of its CPU. In a forked worker a collection also writes to every page it
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
