"""The run's report: what it read, wrote and found wrong, logged as it goes and saved in the state."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from digestpub.errors import StorageError
from digestpub.ingest import PROBLEMS_LISTED, listing_the_first
from digestpub.model import Problem, PublishReport, SummaryRef
from digestpub.ports import ObjectStore
from digestpub.publish.plan import Merge
from digestpub.render.kinds import all_kinds, archive_kinds
from digestpub.site import ALL_FEED
from digestpub.state.catalog import Catalog
from digestpub.state.keys import LATEST_REPORT_KEY, report_key
from digestpub.tagging import shared_slugs

log = logging.getLogger("digestpub.publish")


def sort_out(
    records: list[SummaryRef | Problem], read: set[str], catalog: Catalog, report: PublishReport
) -> list[SummaryRef]:
    """The summaries among ``records``; the problems go in the report, and skipped objects stay on record."""
    for key in read:
        catalog.forget_broken(key)
    summaries: list[SummaryRef] = []
    for record in records:
        if isinstance(record, SummaryRef):
            summaries.append(record)
            continue
        report_problem(report, record)
        # A key refused for its name was never read, so would never be forgotten:
        # it is reported each run that lists it instead.
        if record.kind == "skipped" and record.key in read:
            catalog.add_broken(record)
    _shorten_broken(catalog)
    broken = catalog.head.broken
    report.still_broken = [
        problem for key, problems in sorted(broken.items()) if key not in read for problem in problems
    ]
    names = {slug: tag.name for slug, tag in catalog.head.tags.items()}
    for problem in shared_slugs(summaries, names):
        report_problem(report, problem)
    return summaries


def _shorten_broken(catalog: Catalog) -> None:
    """Sum up the long records of broken objects that runs kept before they were summed up when read."""
    for key, problems in list(catalog.head.broken.items()):
        if len(problems) > 2 * PROBLEMS_LISTED + 2:
            catalog.forget_broken(key)
            for problem in listing_the_first(key, problems):
                catalog.add_broken(problem)


def report_problem(report: PublishReport, problem: Problem) -> None:
    report.problems.append(problem)
    level = logging.INFO if problem.kind == "cleaned" else logging.WARNING
    log.log(level, "%s %s: %s", problem.kind, problem.where(), problem.reason)


def warn_if_short(catalog: Catalog, feed: str, holds: int, removed: int, feed_size: int) -> None:
    head = catalog.head
    expected = head.total if feed == ALL_FEED else head.tags[feed].count
    if removed and holds < min(expected, feed_size):
        log.warning(
            "feed %s now holds %d of its %d summaries after edits or deletions removed some; "
            "publish --rebuild refills it",
            feed,
            holds,
            expected,
        )


def count_published(report: PublishReport, catalog: Catalog) -> None:
    """Every feed (everything, and each tag) is one file per kind, each of its complete pages one file per
    archive kind, and the page after them a web page; the head names the other files (archive indexes among
    them). Counted from the state, so dest is never listed."""
    head, tallies = catalog.head, catalog.feeds.tallies()
    feeds = 1 + len(head.tags) if head.total or head.tags else 0
    complete = sum(len(pages) - 1 for pages in tallies.values())
    following = sum(1 for pages in tallies.values() if len(pages) > 1)
    report.files_published = len(all_kinds()) * feeds + len(archive_kinds()) * complete + following + len(head.outputs)


def save_report(state: ObjectStore, report: PublishReport) -> None:
    body = report.model_dump_json(indent=1).encode()
    # A run that announced feeds keeps its report: the next run looks for it (``state.parts.Announcement``).
    if report.objects_read or report.files_written or report.problems or report.feeds_announced:
        state.put(report_key(report.started_at, report.run_id), body, content_type="application/json")
    state.put(LATEST_REPORT_KEY, body, content_type="application/json")


def load_latest_report(state: ObjectStore) -> PublishReport | None:
    """The report of the last committed run, or ``None`` before the first one."""
    found = state.read(LATEST_REPORT_KEY)
    if found is None:
        return None
    try:
        return PublishReport.model_validate_json(found[0])
    except ValidationError as error:
        raise StorageError(f"{state.url}/{LATEST_REPORT_KEY} is not a publish report: {error}") from None


@contextmanager
def timed(report: PublishReport, stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        report.seconds[stage] = round(report.seconds.get(stage, 0) + time.perf_counter() - started, 4)


def count_merge(report: PublishReport, changes: Merge) -> None:
    for problem in changes.duplicates:
        report_problem(report, problem)
    report.summaries_new += changes.added
    report.summaries_updated += len(changes.accepted) - changes.added
    report.summaries_deleted += len(changes.deleted)
    report.summaries_unchanged += changes.unchanged
