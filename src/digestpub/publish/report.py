"""The run's report: what it read, wrote and found wrong, logged as it goes and saved in the state."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from pydantic import ValidationError

from digestpub.errors import StorageError
from digestpub.model import Problem, PublishReport, SummaryRef, TagInfo
from digestpub.ports import ObjectStore
from digestpub.publish.ingest import PROBLEMS_LISTED, listing_the_first
from digestpub.publish.plan import Merge
from digestpub.publish.tagging import shared_slugs
from digestpub.render.registry import all_kinds, archive_kinds
from digestpub.site import ALL_FEED
from digestpub.state.catalog import Catalog
from digestpub.state.keys import LATEST_REPORT_KEY, report_key
from digestpub.state.parts import IdEntry

log = logging.getLogger("digestpub.publish")


@dataclass
class SortedOut:
    """The summaries among what a run read, and the skipped inputs to keep on record."""

    summaries: list[SummaryRef]
    skipped: dict[str, list[Problem]]
    """Every skipped input on record once the run is done, by key: kept until its object changes."""


def sort_out(
    records: list[SummaryRef | Problem],
    read: set[str],
    known: Mapping[str, list[Problem]],
    tags: Mapping[str, TagInfo],
    report: PublishReport,
    *,
    rendering_again: bool = False,
) -> SortedOut:
    """The summaries among ``records``; the problems go in the report, and skipped objects stay on record.

    ``known`` is what the state has on record. A run ``rendering_again`` (the
    settings or templates changed) reads every object once more: a problem the
    state knew is still unfixed, not news, and is not reported again.
    """
    skipped = {key: problems for key, problems in known.items() if key not in read}
    known_again: list[Problem] = []
    summaries: list[SummaryRef] = []
    for record in records:
        if isinstance(record, SummaryRef):
            summaries.append(record)
            continue
        if rendering_again and record in known.get(record.key, ()):
            known_again.append(record)
        else:
            report_problem(report, record)
        # A key refused for its name was never read, so would never be forgotten:
        # it is reported each run that lists it instead.
        if record.outcome == "skipped" and record.key in read:
            skipped.setdefault(record.key, []).append(record)
    skipped = _shortened(skipped)
    report.still_skipped = [
        problem for key, problems in sorted(skipped.items()) if key not in read for problem in problems
    ] + [problem for problem in known_again if problem.outcome == "skipped"]
    names = {slug: tag.name for slug, tag in tags.items()}
    for problem in shared_slugs(summaries, names):
        report_problem(report, problem)
    return SortedOut(summaries, skipped)


def _shortened(skipped: dict[str, list[Problem]]) -> dict[str, list[Problem]]:
    """The long records of skipped objects that runs kept before they were summed up when read, summed up."""
    return {
        key: list(listing_the_first(key, problems)) if len(problems) > 2 * PROBLEMS_LISTED + 2 else problems
        for key, problems in skipped.items()
    }


def report_problem(report: PublishReport, problem: Problem) -> None:
    report.problems.append(problem)
    level = logging.INFO if problem.outcome == "cleaned" else logging.WARNING
    log.log(level, "%s %s: %s", problem.outcome, problem.where(), problem.reason)


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


def count_merge(
    report: PublishReport, changes: Merge, published_before: Callable[[str], IdEntry | None] | None = None
) -> None:
    """What the merge decided, in the report.

    A run that renders everything again for new settings or templates merges
    into a fresh state: ``published_before`` finds what the state it started
    over from published, so that only what changed counts as new or updated.
    """
    for problem in changes.duplicates:
        report_problem(report, problem)
    if published_before is None:
        counted = [changes.change_of[summary.id] for summary in changes.accepted]
    else:
        counted = [_change(summary, published_before(summary.id)) for summary in changes.accepted]
    report.summaries_new += counted.count("new")
    report.summaries_updated += counted.count("updated")
    report.summaries_deleted += len(changes.deleted)
    report.summaries_unchanged += changes.unchanged + counted.count("unchanged")


def _change(summary: SummaryRef, earlier: IdEntry | None) -> str:
    if earlier is None:
        return "new"
    same = earlier.version == summary.version and earlier.digest == summary.digest
    return "unchanged" if same else "updated"
