"""What each touched feed becomes: its subscription documents, the archive pages it completes and corrects.

A feed's history is cut into pages of ``page_size`` summaries, numbered from
the oldest, in the order each summary first entered the feed (its
``position``): a summary's page never changes, so a complete page is written
once and changes only to correct its own entries (RFC 5005 §4). The
subscription documents and the feed's web page hold the newest summaries,
every summary of the open (not yet complete) page, and for a while the
corrections of complete pages: edits, and in Atom the summaries that left
(RFC 6721 tombstones). Nothing here reads or writes: the run hands in what the
state holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from digestpub.model import SummaryRef
from digestpub.publish.plan import Merge, newest_first_key
from digestpub.state.parts import PageTally, Tombstone, Window, WindowItem


@dataclass(frozen=True)
class Paging:
    """What cuts a feed into pages and how long corrections stay, for one run."""

    page_size: int
    feed_size: int
    now: str
    """The run's moment (``sortable_time`` text): when the corrections it publishes are made."""
    until: str
    """When the corrections this run publishes leave the subscription documents."""

    def page_of(self, position: int) -> int:
        return position // self.page_size + 1

    def complete_pages(self, window: Window) -> int:
        """How many of the feed's pages are complete: the open page is the next one."""
        return window.positions // self.page_size

    def keep(self) -> int:
        """Newest items a window keeps: a few more than a feed shows, so an edit that drops one leaves it full."""
        return self.feed_size + max(10, self.feed_size // 5)

    def window_items(self, newest_first: list[WindowItem], window: Window) -> list[WindowItem]:
        """What ``window`` keeps of ``newest_first``: the newest few more than it shows, its open page, its
        corrections (``window``'s ``positions`` and ``corrections`` are already as the run leaves them)."""
        keep = self.keep()
        first_open = self.complete_pages(window) * self.page_size
        return [
            item
            for index, item in enumerate(newest_first)
            if index < keep or item.position >= first_open or item.id in window.corrections
        ]

    def open_items(self, window: Window) -> list[WindowItem]:
        first_open = self.complete_pages(window) * self.page_size
        return [item for item in window.items if item.position >= first_open]

    def shown(self, window: Window) -> list[WindowItem]:
        """The items the subscription documents show, newest first: the newest, the open page, the corrections."""
        first_open = self.complete_pages(window) * self.page_size
        return [
            item
            for index, item in enumerate(window.items)
            if index < self.feed_size or item.position >= first_open or item.id in window.corrections
        ]


@dataclass
class FeedPlan:
    """A touched feed's subscription documents, or one page of it: the items it shows, newest first.

    ``window`` is as last published; ``next`` is what the state keeps once the
    plan's files are written (the producer fills in their ``files``).
    """

    feed: str
    items: list[WindowItem]
    window: Window
    next: Window
    removed: int = 0
    """Items of the old window that left it (edits, deletions)."""
    page: int | None = None
    """The archive page; ``None`` for the subscription documents."""
    cut_from: Window | None = None
    """For a page completed by this run, the subscription window as last published: its entries are cut
    from the subscription documents, which showed them all while the page was open."""


@dataclass
class FeedChanges:
    """Everything one feed's changes touch."""

    subscription: FeedPlan
    pages: list[FeedPlan] = field(default_factory=list)
    """The pages this run completes, then those it corrects."""
    positions: dict[str, int] = field(default_factory=dict)
    """The position in this feed of each summary inserted, by id."""


def plan_feed(
    feed: str,
    window: Window,
    changes: Merge,
    paging: Paging,
    page: Callable[[int], Window],
    placed_before: Callable[[str, str], int | None] | None = None,
) -> FeedChanges:
    """The feed's documents once ``changes`` are in.

    ``page`` finds one of the feed's complete pages as last published; only the
    pages a correction touches are asked for. ``placed_before`` finds a summary's
    position in a feed in the state a re-rendering run started afresh from, so
    its pages keep their numbers.
    """
    inserts, removals = changes.inserts[feed], changes.removals[feed]
    placed = _place(feed, window.positions, inserts, changes, placed_before)
    added = [_item(summary, placed[summary.id]) for summary in inserts]
    fixes = _corrections(feed, window, removals, added, changes, paging)
    replaced = removals | {item.id for item in added}
    kept = [item for item in window.items if item.id not in replaced]
    pool = sorted([*kept, *added], key=newest_first_key, reverse=True)
    positions = max([window.positions, *(position + 1 for position in placed.values())])
    next_window = Window([], {}, positions, fixes.corrections, fixes.tombstones)
    next_window.items = paging.window_items(pool, next_window)
    subscription = FeedPlan(feed, next_window.items, window, next_window, removed=len(window.items) - len(kept))
    result = FeedChanges(subscription, _completed_pages(feed, window, next_window, pool, paging), placed)
    for number, (page_inserts, page_removals) in sorted(fixes.pages.items()):
        old = page(number)
        items = sorted(
            [*(item for item in old.items if item.id not in page_removals), *page_inserts],
            key=newest_first_key,
            reverse=True,
        )
        result.pages.append(FeedPlan(feed, items, old, Window(items), removed=len(page_removals), page=number))
    return result


@dataclass
class _Fixes:
    """What the edits and removals of summaries already in a feed change beyond its window."""

    pages: dict[int, tuple[list[WindowItem], set[str]]]
    """The complete pages they correct: the items going in and the ids going out, by page."""
    corrections: dict[str, str]
    tombstones: list[Tombstone]


def _corrections(
    feed: str, window: Window, removals: set[str], added: list[WindowItem], changes: Merge, paging: Paging
) -> _Fixes:
    """An edit of a summary on a complete page corrects that page and is carried by the subscription
    documents for a while; a summary that left the feed leaves a gap in its page and a tombstone."""
    added_by_id = {item.id: item for item in added}
    first_open = paging.complete_pages(window) * paging.page_size
    fixes = _Fixes({}, dict(window.corrections), [stone for stone in window.tombstones if stone.id not in added_by_id])
    for summary_id in sorted(removals):
        earlier = changes.earlier.get(summary_id)
        position = None if earlier is None else earlier.position(feed)
        if position is None:
            continue
        staying = added_by_id.get(summary_id)
        if position < first_open:
            page_inserts, page_removals = fixes.pages.setdefault(paging.page_of(position), ([], set()))
            page_removals.add(summary_id)
            if staying is not None:
                page_inserts.append(staying)
                fixes.corrections[summary_id] = paging.until
        if staying is None:
            fixes.corrections.pop(summary_id, None)
            fixes.tombstones.append(Tombstone(summary_id, paging.now, paging.until))
    fixes.corrections = {summary_id: until for summary_id, until in fixes.corrections.items() if until > paging.now}
    fixes.tombstones = [stone for stone in fixes.tombstones if stone.until > paging.now]
    return fixes


def _completed_pages(
    feed: str, window: Window, next_window: Window, pool: list[WindowItem], paging: Paging
) -> list[FeedPlan]:
    """The pages this run fills: their items were all in the subscription documents, as the open page's."""
    first_open = paging.complete_pages(window) * paging.page_size
    first_open_after = paging.complete_pages(next_window) * paging.page_size
    completing: dict[int, list[WindowItem]] = {}
    for item in pool:
        if first_open <= item.position < first_open_after:
            completing.setdefault(paging.page_of(item.position), []).append(item)
    return [
        FeedPlan(feed, completing.get(number, []), Window(), Window(completing.get(number, [])), page=number,
                 cut_from=window)
        for number in range(paging.complete_pages(window) + 1, paging.complete_pages(next_window) + 1)
    ]  # fmt: skip


def _place(
    feed: str,
    positions: int,
    inserts: Sequence[SummaryRef],
    changes: Merge,
    placed_before: Callable[[str, str], int | None] | None,
) -> dict[str, int]:
    """Each inserted summary's position in ``feed``: kept by one already in it, the next ones for the others.

    The new ones in order of ``published``, so a rebuild from scratch places them as the first run did.
    """
    placed: dict[str, int] = {}
    new: list[SummaryRef] = []
    for summary in inserts:
        earlier = changes.earlier.get(summary.id)
        position = None if earlier is None else earlier.position(feed)
        if position is None and placed_before is not None:
            position = placed_before(summary.id, feed)
        if position is None:
            new.append(summary)
        else:
            placed[summary.id] = position
    positions = max([positions, *(position + 1 for position in placed.values())])
    for offset, summary in enumerate(sorted(new, key=newest_first_key)):
        placed[summary.id] = positions + offset
    return placed


def refill(
    plan: FeedChanges,
    count: int,
    paging: Paging,
    page_items: Callable[[int], list[WindowItem]],
) -> None:
    """Subscription documents that removals left short of the feed's ``count``, made up from its complete pages.

    Pages are read newest first until those read hold as many items as a window keeps.
    """
    subscription = plan.subscription
    keep = paging.keep()
    if not subscription.removed or len(subscription.items) >= min(count, keep):
        return
    have = {item.id for item in subscription.items}
    found = list(subscription.items)
    read = 0
    for number in range(paging.complete_pages(subscription.next), 0, -1):
        items = page_items(number)
        found += [item for item in items if item.id not in have]
        read += len(items)
        if read >= keep:
            break
    found.sort(key=newest_first_key, reverse=True)
    subscription.items[:] = paging.window_items(found, subscription.next)


def tally(items: Sequence[WindowItem], month_of: Callable[[str], str]) -> PageTally:
    """A page in numbers, from its items; ``month_of`` gives the month a ``published`` time falls in."""
    if not items:
        return PageTally(0, "", "", "", {})
    months: dict[str, int] = {}
    for item in items:
        month = month_of(item.published)
        months[month] = months.get(month, 0) + 1
    published = [item.published for item in items]
    return PageTally(len(items), min(published), max(published), max(item.version for item in items), months)


def retally(
    tallies: list[PageTally], plan: FeedChanges, paging: Paging, month_of: Callable[[str], str]
) -> list[PageTally]:
    """A feed's tallies once ``plan`` is in: its complete pages in order, then its open page."""
    complete = tallies[:-1]
    by_page = {page.page: page for page in plan.pages if page.page is not None}
    last = max([len(complete), *by_page])
    result = [*complete, *(PageTally(0, "", "", "", {}) for _ in range(last - len(complete)))]
    for number, page in by_page.items():
        result[number - 1] = tally(page.items, month_of)
    return [*result, tally(paging.open_items(plan.subscription.next), month_of)]


def _item(summary: SummaryRef, position: int) -> WindowItem:
    return WindowItem(summary.id, summary.published, summary.version, summary.source_key, summary.source_line, position)
