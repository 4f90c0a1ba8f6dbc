"""The site's files a run changes: each touched feed's documents and pages, then the files beside them.

Its own module because it brings in the renderers (feedgen, lxml, Jinja): a run
with nothing to write never imports it. It returns what it wrote; the run
records it in the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from digestpub.model import PublishReport
from digestpub.ports import ObjectStore
from digestpub.publish import outputs
from digestpub.publish.ingest import SummaryReader
from digestpub.publish.listing import Progress
from digestpub.publish.options import PublishOptions
from digestpub.publish.pages import FeedChanges, Paging
from digestpub.publish.produce import CacheControl, FeedResult, Producer
from digestpub.render.entries import EntryPack
from digestpub.site import Site
from digestpub.state.parts import Head, Tallies


@dataclass
class Written:
    results: list[FeedResult] = field(default_factory=list)
    """Each feed's documents and pages as written: the windows and pages the state keeps."""
    changed_files: list[tuple[str, str]] = field(default_factory=list)
    """``(kind, path)`` of each feed file whose bytes changed: what WebSub hubs are told of."""
    recorded: outputs.Recorded = field(default_factory=dict)
    """The new hash of each file beside the feeds written (``None`` for one deleted)."""


def write_site(
    feeds: Mapping[str, FeedChanges],
    paging: Paging,
    head: Head,
    tallies: Tallies,
    entries: Mapping[str, EntryPack],
    stores: tuple[ObjectStore, ObjectStore, ObjectStore],
    site: Site,
    reader: SummaryReader,
    options: PublishOptions,
    report: PublishReport,
    progress: Progress,
) -> Written:
    """Every touched feed's files, and the files beside them; ``stores`` are the source, dest and state."""
    source, dest, state = stores
    cache_control = CacheControl(options.feed_cache_control, options.page_cache_control, options.archive_cache_control)
    producer = Producer(site, source, dest, reader, cache_control, entries, head.tags, paging, tallies)
    # Pages first: those completed by this run cut their entries from the subscription documents
    # the same run rewrites (one that finds them rewritten renders its entries afresh).
    plans = [plan for planned in feeds.values() for plan in (*planned.pages, planned.subscription)]
    written = Written()
    for done, result in enumerate(producer.produce_all(plans, options.workers), start=1):
        written.results.append(result)
        written.changed_files += result.changed_files
        report.files_written += result.written
        report.files_unchanged += result.unchanged
        progress("rendering", done, len(plans))
    completed = {feed for feed, planned in feeds.items() if _completes_pages(planned, paging)}
    # An archive index lists complete pages: it changes only with them (or with a new feed).
    indexed = {
        feed for feed, planned in feeds.items() if planned.pages or site.archive_index_path(feed) not in head.outputs
    }
    written.recorded = outputs.write_outputs(producer, head, tallies, report, indexed, completed)
    written.recorded |= outputs.site_parts_if_missing(producer, state, head, options.site_parts, report)
    return written


def _completes_pages(planned: FeedChanges, paging: Paging) -> bool:
    subscription = planned.subscription
    return paging.complete_pages(subscription.next) > paging.complete_pages(subscription.window)
