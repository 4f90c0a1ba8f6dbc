"""What a run changes, decided from the listing, the summaries read and the state: no writing here.

- ``listing_start``: from where to list the source;
- ``holdings`` and ``lost_ids``: which ids each source object holds, and which
  ones an object re-read or gone no longer holds;
- ``merge``: which summaries are new, edited, moved or deleted, and what that
  does to each feed and tag;
- ``plan_feed``: each touched feed's new window (its newest items);
- ``plan_archive``: each touched month's archive of a feed (all its items);
- ``refill``: a feed that removals left short, made up from its archives;
- ``news``: what newsletters should carry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import attrgetter

from digestpub.model import Problem, SummaryRef, month_of, sortable_time
from digestpub.site import ALL_FEED
from digestpub.state.parts import IdEntry, Window, WindowItem

NEWS_SPAN = timedelta(days=8)
NEWS_LIMIT = 1_000
"""Newsletters take at most this many of one run's summaries: a backfill of history is not news."""


def listing_start(cursor: str | None, lookback_days: int) -> str | None:
    """The key to list the source after: the days before the newest seen, less ``lookback_days``.

    ``None`` (list everything) when nothing was seen yet.
    """
    if cursor is None:
        return None
    newest = date.fromisoformat(cursor.replace("/", "-"))
    # Keys of a day sort after the bare day ("2026/11/20/x" > "2026/11/20").
    return (newest - timedelta(days=lookback_days)).strftime("%Y/%m/%d")


newest_first_key: Callable[[WindowItem | SummaryRef], tuple[str, str]] = attrgetter("published", "id")
"""Newest first is descending order (as ``Summary.sort_key``), without a Python call per item."""


@dataclass
class Merge:
    """What the merge decided: the summaries accepted, and their effect on each feed and tag."""

    accepted: list[SummaryRef] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    """``new`` or ``updated``, by id."""
    deleted: list[str] = field(default_factory=list)
    """Ids gone from the source: out of every feed, archive and tag count."""
    removals: dict[str, set[str]] = field(default_factory=dict)
    """Ids leaving each touched feed. Every touched feed has an entry here and in ``inserts``."""
    inserts: dict[str, list[SummaryRef]] = field(default_factory=dict)
    unchanged: int = 0
    duplicates: list[Problem] = field(default_factory=list)
    tag_counts: dict[str, int] = field(default_factory=dict)
    """The change of each tag's count."""
    tag_newest: dict[str, str] = field(default_factory=dict)
    tag_names: dict[str, str] = field(default_factory=dict)
    archive_inserts: dict[tuple[str, str], list[SummaryRef]] = field(default_factory=dict)
    """As ``inserts``, by feed and UTC month of ``published_at``: the archives a run touches."""
    archive_removals: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    @property
    def added(self) -> int:
        return sum(1 for kind in self.kinds.values() if kind == "new")

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
            self._leave(summary.id, earlier)
            for feed in new_slugs:
                self.removals[feed].add(summary.id)
        self._archive(summary)
        self._count(summary, () if earlier is None else earlier.slugs)

    def remove(self, summary_id: str, earlier: IdEntry) -> None:
        """A summary deleted from the source: out of every feed and month archive it was in, and its tags' counts."""
        self.deleted.append(summary_id)
        self._leave(summary_id, earlier)
        for slug in earlier.slugs:
            self.tag_counts[slug] = self.tag_counts.get(slug, 0) - 1

    def _leave(self, summary_id: str, earlier: IdEntry) -> None:
        """Out of the feeds and the month archives the published version (``earlier``) was in."""
        for feed in (ALL_FEED, *earlier.slugs):
            self.inserts.setdefault(feed, [])
            self.removals.setdefault(feed, set()).add(summary_id)
            self.archive_inserts.setdefault((feed, earlier.month), [])
            self.archive_removals.setdefault((feed, earlier.month), set()).add(summary_id)

    def _archive(self, summary: SummaryRef) -> None:
        """Into its month's archive of each of its feeds."""
        month = month_of(summary.published)
        for feed in (ALL_FEED, *summary.tag_slugs):
            self.archive_inserts.setdefault((feed, month), []).append(summary)
            self.archive_removals.setdefault((feed, month), set())

    def _count(self, summary: SummaryRef, old_slugs: Sequence[str]) -> None:
        # Plain dicts, applied to the head once: pydantic attribute writes on
        # TagInfo would cost more than the rest of a cold run's merge.
        counts, newest = self.tag_counts, self.tag_newest
        for slug in set(old_slugs).difference(summary.tag_slugs):
            counts[slug] = counts.get(slug, 0) - 1
        for name, slug in zip(summary.tags, summary.tag_slugs, strict=True):
            self.tag_names.setdefault(slug, name)
            if slug not in old_slugs:
                counts[slug] = counts.get(slug, 0) + 1
            if slug not in newest or summary.published > newest[slug]:
                newest[slug] = summary.published


def merge(
    summaries: list[SummaryRef],
    entry_of: Callable[[str], IdEntry | None],
    lost: Mapping[str, set[str]] | None = None,
) -> Merge:
    """Decide which of the summaries read are new, edited, moved or deleted.

    ``entry_of`` finds what the state recorded of an id; ``lost`` names, by
    source key, the ids an object no longer holds (it is gone, or was read again
    without them). An id lost by the key its published version came from is
    deleted, unless this run read it under another key: then it moved, and that
    version is published in its place, even if it is the same.
    """
    lost = lost or {}
    result = Merge()
    read: set[str] = set()
    for summary in _newest_of_each_id(summaries, result.duplicates):
        read.add(summary.id)
        earlier = entry_of(summary.id)
        if earlier is not None and summary.id not in lost.get(earlier.key, ()):
            if summary.version == earlier.version and summary.source_key != earlier.key:
                result.duplicates.append(_duplicate(summary, earlier.key, None))
                continue
            if summary.version < earlier.version or summary.digest == earlier.digest:
                # An older version (superseded by an edit) or a re-read of the same text.
                result.unchanged += 1
                continue
        result.accept(summary, earlier)
    for key, ids in sorted(lost.items()):
        for summary_id in sorted(ids - read):
            earlier = entry_of(summary_id)
            # Lost by a key that held an older copy or a duplicate: the published version is elsewhere.
            if earlier is not None and earlier.key == key:
                result.remove(summary_id, earlier)
    return result


def holdings(summaries: Iterable[SummaryRef]) -> dict[str, list[str]]:
    """The ids each source object holds, by key, in the order read."""
    held: dict[str, dict[str, None]] = {}
    for summary in summaries:
        held.setdefault(summary.source_key, {})[summary.id] = None
    return {key: list(ids) for key, ids in held.items()}


def lost_ids(before: list[str], after: list[str], *, whole: bool) -> set[str]:
    """The ids an object held before and no longer holds.

    ``whole``: the object was read without a skipped part. When it was not, an
    id may hide in the broken part, so none is taken for lost: the object is
    reported, and its summaries stay until it is fixed or deleted.
    """
    return set(before).difference(after) if whole else set()


def _newest_of_each_id(summaries: list[SummaryRef], duplicates: list[Problem]) -> list[SummaryRef]:
    newest: dict[str, SummaryRef] = {}
    for summary in summaries:
        earlier = newest.get(summary.id)
        if earlier is None or summary.version > earlier.version:
            newest[summary.id] = summary
        elif summary.version == earlier.version:
            # Even an identical copy under another key is reported, never dropped unseen.
            duplicates.append(_duplicate(summary, earlier.source_key, earlier.source_line))
    return list(newest.values())


def _duplicate(summary: SummaryRef, key: str, line: int | None) -> Problem:
    where = f"{key}:{line}" if line is not None else key
    return Problem(
        key=summary.source_key,
        line=summary.source_line,
        reason=(
            f"duplicate id {summary.id!r}: {where} already holds it with the same "
            "updated_at; publish an edit with a later updated_at, or remove the copy"
        ),
    )


@dataclass
class FeedPlan:
    """A touched feed, or one month's archive of it: its new items, newest first, and its window as last published."""

    feed: str
    items: list[WindowItem]
    window: Window
    removed: int
    """Items of the old window that left it (edits, deletions)."""
    month: str | None = None
    """The UTC month (``YYYY-MM``) of an archive; ``None`` for the subscription feed."""


def window_size(feed_size: int) -> int:
    """Items a window keeps: a few more than a feed shows, so an edit that drops an item leaves it full."""
    return feed_size + max(10, feed_size // 5)


def plan_feed(feed: str, window: Window, changes: Merge, keep: int) -> FeedPlan:
    """The feed's newest ``keep`` items once ``changes`` are in."""
    items, removed = _changed(window, changes.inserts[feed], changes.removals[feed], keep)
    return FeedPlan(feed, items, window, removed)


def plan_archive(feed: str, month: str, window: Window, changes: Merge) -> FeedPlan:
    """Every item of the feed's ``month`` once ``changes`` are in."""
    inserts, removals = changes.archive_inserts[feed, month], changes.archive_removals[feed, month]
    items, removed = _changed(window, inserts, removals, None)
    return FeedPlan(feed, items, window, removed, month)


def plan_archives(
    changes: Merge, archive: Callable[[str, str], Window], months_of: Callable[[str], Iterable[str]]
) -> list[FeedPlan]:
    """Each touched month's archive of a feed, and the months beside a month that appeared or emptied.

    ``archive`` finds a feed's archive of a month; ``months_of``, a feed's
    months that held any item before the run. A neighbour's items stay as they
    are, but its links to the months beside it change.
    """
    plans = [
        plan_archive(feed, month, archive(feed, month), changes) for feed, month in sorted(changes.archive_inserts)
    ]
    planned: dict[str, set[str]] = {}
    for plan in plans:
        planned.setdefault(plan.feed, set()).add(str(plan.month))
    for feed, months in sorted(planned.items()):
        before = set(months_of(feed))
        emptied = {plan.month for plan in plans if plan.feed == feed and not plan.items}
        after = sorted((before | months) - emptied)
        for changed in sorted(before.symmetric_difference(after)):
            for month in _beside(after, changed):
                if month not in months:
                    months.add(month)
                    window = archive(feed, month)
                    plans.append(FeedPlan(feed, window.items, window, 0, month))
    return plans


def refill(plan: FeedPlan, keep: int, months: Iterable[str], month_items: Callable[[str], list[WindowItem]]) -> None:
    """A subscription feed's newest ``keep`` items once more, from its month archives, when removals left it short.

    ``months``: the feed's months once this run's changes are in; ``month_items``,
    a month's items as this run leaves them. Months are read newest first, until
    those read hold ``keep`` items: every item newer than them is then known.
    """
    have = {item.id for item in plan.items}
    found = list(plan.items)
    complete = 0
    for month in sorted(months, reverse=True):
        items = month_items(month)
        found += [item for item in items if item.id not in have]
        complete += len(items)
        if complete >= keep:
            break
    plan.items = sorted(found, key=newest_first_key, reverse=True)[:keep]


def _beside(months: list[str], month: str) -> list[str]:
    """The months of ``months`` (sorted) just before and just after ``month``."""
    older = [other for other in months if other < month]
    newer = [other for other in months if other > month]
    return older[-1:] + newer[:1]


def _changed(
    window: Window, inserts: list[SummaryRef], removals: set[str], keep: int | None
) -> tuple[list[WindowItem], int]:
    """The newest ``keep`` (or all) items of ``window`` with ``removals`` out and ``inserts`` in, and how many left."""
    kept: list[WindowItem | SummaryRef] = []
    if window.items:
        # Inserted ids are dropped too: a run that stopped after saving some
        # state may have saved this feed with them already.
        replaced = removals | {summary.id for summary in inserts}
        kept = [item for item in window.items if item.id not in replaced]
    # A sort, not heapq.nlargest: the same items, and in C, twice as fast on a cold run's 50,000.
    newest = sorted([*kept, *inserts], key=newest_first_key, reverse=True)[:keep]
    items = [_window_item(item) if isinstance(item, SummaryRef) else item for item in newest]
    return items, len(window.items) - len(kept)


def _window_item(summary: SummaryRef) -> WindowItem:
    return WindowItem(summary.id, summary.published, summary.version, summary.source_key, summary.source_line)


def news(changes: Merge, limit: int = NEWS_LIMIT) -> list[SummaryRef]:
    """What newsletters should carry, newest first: a backfill of history is not news.

    Only summaries within ``NEWS_SPAN`` of the newest one accepted, and at most
    ``limit`` of them, so a cold start over years of summaries does not
    make one enormous issue.
    """
    if not changes.accepted:
        return []
    newest_first = sorted(changes.accepted, key=newest_first_key, reverse=True)[:limit]
    since = sortable_time(datetime.fromisoformat(newest_first[0].published) - NEWS_SPAN)
    return [summary for summary in newest_first if summary.published >= since]


def not_published_before(
    news: list[SummaryRef], kinds: dict[str, str], published_version: Callable[[str], str | None]
) -> tuple[list[SummaryRef], dict[str, str]]:
    """On a rebuild: only what was not published before in this version or a newer one, so no email repeats a summary.

    ``published_version`` finds the newest version published before of an id, ``None`` for one never published.
    """
    fresh: list[SummaryRef] = []
    fresh_kinds: dict[str, str] = {}
    for summary in news:
        earlier = published_version(summary.id)
        if earlier is not None and earlier >= summary.version:
            continue
        fresh.append(summary)
        fresh_kinds[summary.id] = kinds[summary.id] if earlier is None else "updated"
    return fresh, fresh_kinds
