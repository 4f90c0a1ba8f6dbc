"""``publish.pages``: where each summary's page is fixed, what the subscription documents hold, what a correction
touches. Pure functions over what the state recorded."""

from __future__ import annotations

from digestpub.model import SummaryRef
from digestpub.publish.pages import Paging, plan_feed, refill, retally, tally
from digestpub.publish.plan import Merge
from digestpub.site import ALL_FEED
from digestpub.state.parts import IdEntry, PageTally, Window, WindowItem

NOW, UNTIL = "2026-12-01T00:00:00.000000+00:00", "2026-12-08T00:00:00.000000+00:00"
PAGING = Paging(page_size=3, feed_size=2, now=NOW, until=UNTIL)


def _ref(number: int, day: int, version_day: int | None = None) -> SummaryRef:
    published = f"2026-11-{day:02d}T08:00:00.000000+00:00"
    version = published if version_day is None else f"2026-11-{version_day:02d}T09:00:00.000000+00:00"
    return SummaryRef(f"s{number}", version, published, f"d{number}", f"k{number}", None, (), ())


def _item(number: int, day: int, position: int) -> WindowItem:
    ref = _ref(number, day)
    return WindowItem(ref.id, ref.published, ref.version, ref.source_key, None, position)


def _inserts(*refs: SummaryRef, removals: set[str] | None = None) -> Merge:
    changes = Merge()
    changes.inserts[ALL_FEED] = list(refs)
    changes.removals[ALL_FEED] = removals or set()
    return changes


def _no_page(number: int) -> Window:
    raise AssertionError(f"page {number} was read, and nothing corrects it")


def test_a_cold_run_places_summaries_by_date_and_completes_the_full_pages() -> None:
    refs = [_ref(number, day) for number, day in ((1, 5), (2, 1), (3, 9), (4, 3), (5, 7), (6, 2), (7, 8))]
    planned = plan_feed(ALL_FEED, Window(), _inserts(*refs), PAGING, _no_page)

    assert planned.positions == {"s2": 0, "s6": 1, "s4": 2, "s1": 3, "s5": 4, "s7": 5, "s3": 6}
    assert [(page.page, [item.id for item in page.items]) for page in planned.pages] == [
        (1, ["s4", "s6", "s2"]),
        (2, ["s7", "s5", "s1"]),
    ]
    # The newest two, and the open page (s3) besides: walking back from here misses nothing.
    assert [item.id for item in PAGING.shown(planned.subscription.next)] == ["s3", "s7"]
    assert planned.subscription.next.positions == 7


def test_a_late_back_dated_summary_joins_the_open_page_and_no_complete_page_moves() -> None:
    window = Window([_item(3, 9, 6), _item(7, 8, 5), _item(5, 7, 4)], positions=7)
    late = _ref(8, 1)  # older than everything
    planned = plan_feed(ALL_FEED, window, _inserts(late), PAGING, _no_page)

    assert planned.positions == {"s8": 7}
    assert planned.pages == [], "page 3 (positions 6 to 8) is not complete yet"
    shown = [item.id for item in PAGING.shown(planned.subscription.next)]
    assert shown == ["s3", "s7", "s8"], "the open page's summaries, however old, are in the feed"


def test_an_edit_on_a_complete_page_corrects_that_page_and_is_carried_for_a_while() -> None:
    page_one = Window([_item(4, 3, 2), _item(6, 2, 1), _item(2, 1, 0)])
    window = Window([_item(3, 9, 6), _item(7, 8, 5)], positions=7)
    changes = _inserts(_ref(6, 2, version_day=30), removals={"s6"})
    changes.earlier["s6"] = IdEntry("old", "k6", "d", [], [1])
    asked: list[int] = []

    def page(number: int) -> Window:
        asked.append(number)
        return page_one

    planned = plan_feed(ALL_FEED, window, changes, PAGING, page)

    assert asked == [1]
    [corrected] = planned.pages
    assert corrected.page == 1 and [item.version[8:10] for item in corrected.items] == ["03", "30", "01"]
    assert planned.positions == {"s6": 1}, "an edit keeps its place"
    assert planned.subscription.next.corrections == {"s6": UNTIL}
    assert "s6" in [item.id for item in PAGING.shown(planned.subscription.next)]


def test_a_deletion_leaves_a_gap_and_a_tombstone_and_both_expire() -> None:
    window = Window([_item(3, 9, 6), _item(7, 8, 5)], positions=7)
    changes = _inserts(removals={"s2"})
    changes.earlier["s2"] = IdEntry("old", "k2", "d", [], [0])
    planned = plan_feed(ALL_FEED, window, changes, PAGING, lambda number: Window([_item(2, 1, 0), _item(6, 2, 1)]))

    [corrected] = planned.pages
    assert [item.id for item in corrected.items] == ["s6"], "a gap: page 2 does not move"
    [stone] = planned.subscription.next.tombstones
    assert (stone.id, stone.when, stone.until) == ("s2", NOW, UNTIL)

    later = Paging(page_size=3, feed_size=2, now=UNTIL, until="2026-12-15T00:00:00.000000+00:00")
    again = plan_feed(ALL_FEED, planned.subscription.next, _inserts(), later, _no_page)
    assert again.subscription.next.tombstones == [], "a tombstone leaves once its days are over"


def test_retally_keeps_every_complete_page_when_a_middle_one_is_corrected() -> None:
    def page(count: int) -> PageTally:
        return PageTally(count, "a", "b", "v", {"2026-11": count})

    tallies = [page(3), page(3), page(3), page(1)]  # three complete pages, then the open one
    window = Window([_item(3, 9, 9)], positions=10)
    changes = _inserts(removals={"s6"})
    changes.earlier["s6"] = IdEntry("old", "k6", "d", [], [4])
    planned = plan_feed(ALL_FEED, window, changes, PAGING, lambda number: Window([_item(6, 2, 4), _item(5, 7, 3)]))

    result = retally(tallies, planned, PAGING, lambda published: published[:7])
    assert [entry.count for entry in result] == [3, 1, 3, 1], "page 2 lost one; pages 1 and 3 stay; open last"


def test_refill_reads_complete_pages_newest_first_until_a_window_is_full() -> None:
    pages = {1: [_item(1, 1, 0), _item(2, 2, 1), _item(3, 3, 2)], 2: [_item(4, 4, 3), _item(5, 5, 4)]}
    read: list[int] = []

    def page_items(number: int) -> list[WindowItem]:
        read.append(number)
        return pages[number]

    changes = _inserts(removals={"s8"})
    changes.earlier["s8"] = IdEntry("old", "k8", "d", [], [6])  # on the open page: no page to correct
    planned = plan_feed(ALL_FEED, Window([_item(9, 9, 7), _item(8, 8, 6)], positions=8), changes, PAGING, _no_page)
    refill(planned, 6, PAGING, page_items)
    assert [item.id for item in planned.subscription.items] == ["s9", "s5", "s4", "s3", "s2", "s1"]
    assert read == [2, 1], "the newest complete page first, until the window is full"


def test_a_page_tally_counts_by_month_in_the_site_zone() -> None:
    items = [_item(1, 1, 0), _item(2, 30, 1)]
    counted = tally(items, lambda published: "2026-12" if published[8:10] == "30" else published[:7])
    assert (counted.count, counted.months) == (2, {"2026-11": 1, "2026-12": 1})
    assert tally([], str).count == 0


def test_recent_months_are_the_twelve_up_to_the_newest_with_empty_ones_counted() -> None:
    from digestpub.publish.produce import recent_months

    pages = [PageTally(3, "", "", "", {"2025-12": 2, "2026-01": 1}), PageTally(1, "", "", "", {"2026-11": 1})]
    months = recent_months(pages)
    assert [name for name, _ in months] == ["2025-12", *(f"2026-{number:02d}" for number in range(1, 12))]
    assert dict(months) == {**dict.fromkeys([name for name, _ in months], 0), "2025-12": 2, "2026-01": 1, "2026-11": 1}
    assert recent_months([]) == ()
