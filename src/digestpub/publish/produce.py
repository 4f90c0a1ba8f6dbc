"""Files from a plan: each touched feed's files through every output kind, written where their bytes changed.

An entry a feed kept is cut out of the file it was published in last time
(each ``PublishedFile`` records where its entries sit); only the summaries read
this run are rendered, and an entry is rendered again from its source only
when its file was changed by someone else.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from digestpub.ingest import SummaryReader
from digestpub.model import TagInfo
from digestpub.ports import ObjectStore
from digestpub.publish.entries import read_again, spread
from digestpub.publish.plan import FeedPlan
from digestpub.render import Output
from digestpub.render.entries import EntryPack, render_entries
from digestpub.render.kinds import FeedView, Kind, all_kinds
from digestpub.render.opml import render_opml
from digestpub.render.page import page_template
from digestpub.site import ALL_FEED, OPML_PATH, Site
from digestpub.state.parts import PublishedFile, Window, WindowItem

log = logging.getLogger("digestpub.publish")

_IO_THREADS = 16
_PARALLEL_FEEDS = 32
"""Below this many feeds, one process is faster than starting workers."""


@dataclass(frozen=True)
class CacheControl:
    feeds: str
    pages: str

    def of(self, path: str) -> str:
        return self.feeds if path.startswith("feeds/") and path != OPML_PATH else self.pages


@dataclass
class FeedResult:
    feed: str
    window: Window
    written: int
    """How many of the feed's files had new bytes; the others were left as they were."""
    unchanged: int
    changed_files: list[tuple[str, str]] = field(default_factory=list)
    """``(kind, path)`` of each file written: what WebSub hubs are told of."""


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

    def produce_all(self, plans: list[FeedPlan], workers: int) -> Iterator[FeedResult]:
        """Every plan's feed. With local folders and many feeds, forked writers share the CPU-bound
        framing; otherwise a thread pool overlaps the uploads of one feed with the rendering of the next."""
        if getattr(self.dest, "is_local", False) and getattr(self.source, "is_local", False):
            many = len(plans) >= _PARALLEL_FEEDS
            # A feed's files grow with the items it shows.
            weights = [len(plan.items) + 1 for plan in plans]
            yield from spread(self.produce, plans, weights, workers if many else 1, page_template)
        else:
            with ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="digestpub-write") as pool:
                yield from pool.map(self.produce, plans)

    def produce(self, plan: FeedPlan) -> FeedResult:
        """Render one feed's files and write those whose bytes changed."""
        kinds = all_kinds()
        feed_size = self.site.feed_size
        cut = self._published_entries(plan, kinds, [item for item in plan.items if item.id not in self.entries])
        entries, items = self.entries, plan.items
        while True:
            shown = items[:feed_size]
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
        texts = [cut[item.id] if item.id not in entries else entries[item.id].texts(item.id) for item in shown]
        newest = max((item.version for item in shown), default=None)
        view = FeedView(
            self.site,
            plan.feed,
            None if plan.feed == ALL_FEED else self.tags[plan.feed],
            self.tags,
            None if newest is None else datetime.fromisoformat(newest),
        )
        files: dict[str, PublishedFile] = {}
        changed_files: list[tuple[str, str]] = []
        for kind in kinds:
            frame = kind.frame(view)
            own = [entry[kind.name] for entry in texts]
            body = kind.fill(frame, own)
            digest = digest_of(body)
            before = plan.window.files.get(kind.name)
            sizes = [len(text) for text in own]
            if before is not None and before.digest == digest:
                files[kind.name] = before
                continue
            path = kind.path(self.site, plan.feed)
            version = self.put(Output(path, body, kind.content_type))
            files[kind.name] = PublishedFile(digest, version, len(frame.head), sizes)
            changed_files.append((kind.name, path))
        written = len(changed_files)
        return FeedResult(plan.feed, Window(items, files), written, len(kinds) - written, changed_files)

    def _published_entries(
        self, plan: FeedPlan, kinds: tuple[Kind, ...], wanted: list[WindowItem]
    ) -> dict[str, dict[str, memoryview]]:
        """The bytes of ``wanted`` entries, by id and kind, cut from the files this feed was last published as.

        A file that is gone or was changed by someone else is not used: entries
        missing from it are rendered again from their source.
        """
        old = plan.window
        if not wanted or old.files.keys() != {kind.name for kind in kinds}:
            return {}
        positions: dict[str, dict[str, memoryview]] = {}
        for kind in kinds:
            published = old.files[kind.name]
            found = self.dest.read(kind.path(self.site, plan.feed))
            if found is None or found[1] != published.version:
                log.info(
                    "feed %s: its %s file changed since it was published; rendering it afresh", plan.feed, kind.name
                )
                return {}
            body = memoryview(found[0])
            start = published.head
            for item, size in zip(old.items, published.sizes, strict=False):
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

    def put(self, output: Output) -> str:
        """Write one file with its headers; returns the destination's version tag for it."""
        cache_control = self.cache_control.of(output.path)
        return self.dest.put(output.path, output.body, content_type=output.content_type, cache_control=cache_control)

    def write_opml(self, recorded: Callable[[str], str | None]) -> str | None:
        """The OPML list, written if its bytes differ from the digest ``recorded`` for its path; returns its digest."""
        opml = render_opml(self.site, self.tags.values())
        digest = digest_of(opml.body)
        if recorded(opml.path) == digest:
            return None
        self.put(opml)
        return digest


def digest_of(body: bytes) -> str:
    # SHA-256 runs in hardware here, over twice as fast as BLAKE2 on feed-sized bytes.
    return hashlib.sha256(body).hexdigest()[:32]
