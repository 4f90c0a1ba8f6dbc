"""Files from a plan: each touched feed's files through every output kind, written where their bytes changed.

An entry a feed kept is cut out of the file it was published in last time
(each ``PublishedFile`` records where its entries sit); only the summaries read
this run are rendered, and an entry is rendered again from its source only
when its file was changed by someone else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from digestpub.model import TagInfo
from digestpub.ports import ObjectStore
from digestpub.publish.entries import read_again, spread
from digestpub.publish.ingest import SummaryReader
from digestpub.publish.pages import FeedPlan, Paging
from digestpub.render import Output, digest_of
from digestpub.render.entries import EntryPack, render_entries
from digestpub.render.kinds import FeedView, Kind
from digestpub.render.opml import render_opml
from digestpub.render.page import page_template
from digestpub.render.registry import all_kinds, archive_kinds
from digestpub.site import ALL_FEED, OPML_PATH, Site
from digestpub.state.parts import PageTally, PublishedFile, Window, WindowItem

log = logging.getLogger("digestpub.publish")

_IO_THREADS = 16
_PARALLEL_FEEDS = 32
"""Below this many feeds, one process is faster than starting workers."""


@dataclass(frozen=True)
class CacheControl:
    feeds: str
    pages: str
    archives: str
    """For the complete archive pages: they change only to correct their own entries."""

    def of(self, path: str, archived: bool = False) -> str:
        if archived:
            return self.archives
        return self.feeds if path.startswith("feeds/") and path != OPML_PATH else self.pages


@dataclass
class FeedResult:
    feed: str
    page: int | None
    window: Window
    written: int
    """How many of the feed's files had new bytes; the others were left as they were."""
    unchanged: int
    changed_files: list[tuple[str, str]] = field(default_factory=list)
    """``(kind, path)`` of each file written: what WebSub hubs are told of."""
    items_as_planned: bool = False
    """Sent back without ``window.items``, which are the plan's: the run has them already."""


@dataclass
class Producer:
    """Everything producing a feed's files needs; forked writers see it as it is when they start."""

    site: Site
    source: ObjectStore
    dest: ObjectStore
    reader: SummaryReader
    cache_control: CacheControl
    entries: Mapping[str, EntryPack]
    """Entries rendered this run: the pack that holds each, by summary id."""
    tags: Mapping[str, TagInfo]
    paging: Paging
    tallies: Mapping[str, list[PageTally]]
    """Each touched feed's pages in numbers once the run is done: its complete pages, then its open one."""

    def produce_all(self, plans: list[FeedPlan], workers: int) -> Iterator[FeedResult]:
        """Every plan's feed, the pages this run completes first.

        A completed page cuts its entries from its feed's subscription documents, which
        that feed's own plan rewrites: produced beside it, the page might find them
        rewritten and render its entries again.
        """
        completed = [plan for plan in plans if plan.cut_from is not None]
        for batch in (completed, [plan for plan in plans if plan.cut_from is None]):
            if batch:
                yield from self._produce_batch(batch, workers)

    def _produce_batch(self, plans: list[FeedPlan], workers: int) -> Iterator[FeedResult]:
        """With local folders and many feeds, forked writers share the CPU-bound framing;
        otherwise a thread pool overlaps the uploads of one feed with the rendering of the next."""
        if self.dest.is_local and self.source.is_local:
            many = len(plans) >= _PARALLEL_FEEDS
            # A feed's files grow with the items it shows.
            weights = [len(plan.items) + 1 for plan in plans]
            planned = {(plan.feed, plan.page): plan.items for plan in plans}
            for result in spread(self._produce_to_send, plans, weights, workers if many else 1, page_template):
                if result.items_as_planned:
                    result.window.items = planned[result.feed, result.page]
                yield result
        else:
            with ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="digestpub-write") as pool:
                yield from pool.map(self.produce, plans)

    def _shown(self, plan: FeedPlan, window: Window) -> list[WindowItem]:
        """The items the files of ``window`` show: a page shows all of its own."""
        return window.items if plan.page is not None else self.paging.shown(window)

    def produce(self, plan: FeedPlan) -> FeedResult:
        """Render one feed's (or one page's) files and write those whose bytes changed."""
        kinds = all_kinds() if plan.page is None else archive_kinds()
        window = plan.next
        window.items = plan.items
        wanted = self._shown(plan, window)
        # A page completed by this run has no files yet: its entries are in the subscription documents.
        published = plan if plan.cut_from is None else FeedPlan(plan.feed, [], plan.cut_from, plan.cut_from)
        cut = self._published_entries(published, kinds, [item for item in wanted if item.id not in self.entries])
        entries = self.entries
        while True:
            missing = {
                item.id: item for item in self._shown(plan, window) if item.id not in entries and item.id not in cut
            }
            if not missing:
                break
            # Rare: a file changed by someone else, or an item moved up from below the
            # shown ones (an edit took one out). Its entry is rendered from its source.
            recovered = self._entries_from_source(plan.feed, list(missing.values()))
            entries = {**entries, **dict.fromkeys(recovered.ids(), recovered)}
            gone = missing.keys() - set(recovered.ids())
            if not gone:
                break
            window.items = [item for item in window.items if item.id not in gone]
        shown = self._shown(plan, window)
        view = self._view(plan, shown)
        files: dict[str, PublishedFile] = {}
        changed_files: list[tuple[str, str]] = []
        for kind in kinds:
            frame = kind.frame(view)
            own = [
                cut[item.id][kind.name] if item.id not in entries else entries[item.id].texts(item.id)[kind.name]
                for item in shown
            ]
            body = kind.fill(frame, own)
            digest = digest_of(body)
            before = plan.window.files.get(kind.name)
            sizes = [len(text) for text in own]
            if before is not None and before.digest == digest:
                files[kind.name] = before
                continue
            path = kind.path(self.site, plan.feed, plan.page)
            version = self.put(Output(path, body, kind.content_type), archived=plan.page is not None)
            files[kind.name] = PublishedFile(digest, version, len(frame.head), sizes)
            changed_files.append((kind.name, path))
        window.files = files
        written = len(changed_files)
        # Hubs are told of subscription feeds only: an archive page is not subscribed to.
        announced = changed_files if plan.page is None else []
        return FeedResult(plan.feed, plan.page, window, written, len(kinds) - written, announced)

    def _produce_to_send(self, plan: FeedPlan) -> FeedResult:
        """``produce``, for a forked writer: a cold run's windows hold many items, and a
        copy of each unpickled in the run would add to its peak memory."""
        result = self.produce(plan)
        if result.window.items is plan.items:
            result.window = Window(
                [], result.window.files, result.window.positions, result.window.corrections, result.window.tombstones
            )
            result.items_as_planned = True
        return result

    def _view(self, plan: FeedPlan, shown: list[WindowItem]) -> FeedView:
        tag = None if plan.feed == ALL_FEED else self.tags[plan.feed]
        newest = max((item.version for item in shown), default=None)
        span = None
        if plan.page is not None and shown:
            published = [item.published for item in shown]
            span = (datetime.fromisoformat(min(published)), datetime.fromisoformat(max(published)))
        return FeedView(
            self.site,
            plan.feed,
            tag,
            self.tags,
            None if newest is None else datetime.fromisoformat(newest),
            plan.page,
            len(self.tallies[plan.feed]) - 1,
            span,
            tuple(plan.next.tombstones) if plan.page is None else (),
            recent_months(self.tallies[plan.feed]) if plan.page is None else (),
        )

    def _published_entries(
        self, plan: FeedPlan, kinds: tuple[Kind, ...], wanted: list[WindowItem]
    ) -> dict[str, dict[str, memoryview]]:
        """The bytes of ``wanted`` entries, by id and kind, cut from the files this feed was last published as.

        A file that is gone or was changed by someone else is not used: entries
        missing from it are rendered again from their source.
        """
        old = plan.window
        if not wanted or not {kind.name for kind in kinds} <= old.files.keys():
            return {}
        positions: dict[str, dict[str, memoryview]] = {}
        for kind in kinds:
            published = old.files[kind.name]
            found = self.dest.read(kind.path(self.site, plan.feed, plan.page))
            if found is None or found[1] != published.version:
                log.info(
                    "feed %s: its %s file changed since it was published; rendering it afresh", plan.feed, kind.name
                )
                return {}
            body = memoryview(found[0])
            start = published.head
            for item, size in zip(self._shown(plan, old), published.sizes, strict=False):
                positions.setdefault(item.id, {})[kind.name] = body[start : start + size]
                start += size + len(kind.separator)
        return {item.id: positions[item.id] for item in wanted if item.id in positions}

    def _entries_from_source(self, feed: str, items: list[WindowItem]) -> EntryPack:
        """Entries rendered again from the objects their summaries were read from."""
        found = read_again(self.source, self.reader, {item.id: item.key for item in items})
        for item in items:
            if item.id not in found:
                log.warning("feed %s: summary %s is gone from %s; it is left out of the feed", feed, item.id, item.key)
        return render_entries(self.site, list(found.values()))

    def put(self, output: Output, archived: bool = False) -> str:
        """Write one file with its headers; returns the destination's version tag for it."""
        cache_control = self.cache_control.of(output.path, archived)
        return self.dest.put(output.path, output.body, content_type=output.content_type, cache_control=cache_control)

    def write_if_changed(self, output: Output, recorded: Callable[[str], str | None]) -> str | None:
        """Write ``output`` if its bytes differ from the digest ``recorded`` for its path; returns its new digest."""
        digest = digest_of(output.body)
        if recorded(output.path) == digest:
            return None
        self.put(output)
        return digest

    def opml(self) -> Output:
        return render_opml(self.site, self.tags.values())


def recent_months(pages: list[PageTally], count: int = 12) -> tuple[tuple[str, int], ...]:
    """A feed's summaries in each of the ``count`` months up to its newest, oldest first (``YYYY-MM``)."""
    totals: dict[str, int] = {}
    for page in pages:
        for month, number in page.months.items():
            totals[month] = totals.get(month, 0) + number
    if not totals:
        return ()
    newest_year, newest_month = (int(part) for part in max(totals).split("-"))
    # Months counted back from the newest, as whole numbers: year * 12 + month - 1.
    newest = newest_year * 12 + newest_month - 1
    months = [f"{number // 12:04d}-{number % 12 + 1:02d}" for number in range(newest - count + 1, newest + 1)]
    return tuple((name, totals.get(name, 0)) for name in months)
