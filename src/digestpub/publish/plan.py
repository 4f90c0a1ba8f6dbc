"""What a run changes, decided from the listing, the summaries read and the state: no writing here.

- ``listing_start``: from where to list the source;
- ``holdings`` and ``lost_ids``: which ids each source object holds, and which
  ones an object re-read or gone no longer holds;
- ``merge``: which summaries are new, edited, moved or deleted, and what that
  does to each feed and tag (``publish.pages`` then plans each feed's documents);
- ``news``: what newsletters should carry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import attrgetter

from digestpub.model import Problem, SummaryRef, sortable_time
from digestpub.site import ALL_FEED
from digestpub.state.parts import IdEntry, WindowItem

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
    change_of: dict[str, str] = field(default_factory=dict)
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
    earlier: dict[str, IdEntry] = field(default_factory=dict)
    """What the state recorded of each summary edited or deleted: where it sits in its feeds."""

    @property
    def added(self) -> int:
        return sum(1 for change in self.change_of.values() if change == "new")

    def accept(self, summary: SummaryRef, earlier: IdEntry | None) -> None:
        """Into the feeds of its tags; an edit (``earlier``) first out of every feed it was in."""
        self.accepted.append(summary)
        self.change_of[summary.id] = "new" if earlier is None else "updated"
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
        self._count(summary, () if earlier is None else earlier.slugs)

    def remove(self, summary_id: str, earlier: IdEntry) -> None:
        """A summary deleted from the source: out of every feed and month archive it was in, and its tags' counts."""
        self.deleted.append(summary_id)
        self._leave(summary_id, earlier)
        for slug in earlier.slugs:
            self.tag_counts[slug] = self.tag_counts.get(slug, 0) - 1

    def _leave(self, summary_id: str, earlier: IdEntry) -> None:
        """Out of the feeds the published version (``earlier``) was in, and so out of its pages there."""
        self.earlier[summary_id] = earlier
        for feed in (ALL_FEED, *earlier.slugs):
            self.inserts.setdefault(feed, [])
            self.removals.setdefault(feed, set()).add(summary_id)

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
    news: list[SummaryRef], change_of: dict[str, str], published_version: Callable[[str], str | None]
) -> tuple[list[SummaryRef], dict[str, str]]:
    """On a rebuild: only what was not published before in this version or a newer one, so no email repeats a summary.

    ``published_version`` finds the newest version published before of an id, ``None`` for one never published.
    """
    fresh: list[SummaryRef] = []
    fresh_changes: dict[str, str] = {}
    for summary in news:
        earlier = published_version(summary.id)
        if earlier is not None and earlier >= summary.version:
            continue
        fresh.append(summary)
        fresh_changes[summary.id] = change_of[summary.id] if earlier is None else "updated"
    return fresh, fresh_changes
