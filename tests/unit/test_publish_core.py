"""The publish use case on in-memory stores: the merge rules, counts, feeds and the lock.

Every store is a ``tests.fakes.MemoryStore``, so these run in milliseconds and check
the core's decisions (new, updated, unchanged, duplicate; which feeds and files
change) without a disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from lxml import etree
from lxml import html as lxml_html

from digestpub.errors import StateLocked, StorageError
from digestpub.model import PublishReport, Summary
from digestpub.newsletter.issues import prepare_issue
from digestpub.publish import PublishOptions, publish
from digestpub.publish import run as publish_run
from digestpub.publish.ingest import SummaryReader
from digestpub.site import Site
from digestpub.state import catalog, keys
from digestpub.state import ids as state_ids
from digestpub.state.lock import StateLock
from tests.conftest import state_part, summary
from tests.fakes import MemoryStore

BASE_URL = "https://aidigest.example/"
SITE = Site(
    title="Ай Дайджест",
    description="Свежая выжимка ml и AI статей - каждый день",
    lang="ru",
    base_url=BASE_URL,
    api_url=BASE_URL,
)
LOCK_KEY = "lock.json"
SPECIAL_ID_PARTS = (keys.RECENT_IDS_KEY, keys.KNOWN_IDS_KEY)
OPML = "feeds/tags.opml"


@dataclass
class Stores:
    source: MemoryStore = field(default_factory=lambda: MemoryStore("source"))
    dest: MemoryStore = field(default_factory=lambda: MemoryStore("dest"))
    state: MemoryStore = field(default_factory=lambda: MemoryStore("state"))

    def add(self, key: str, document: dict[str, Any]) -> None:
        self.source.put(key, json.dumps(document, ensure_ascii=False).encode())

    def run(self, site: Site = SITE, **options: Any) -> PublishReport:
        options.setdefault("workers", 1)
        options.setdefault("lock_wait", timedelta(seconds=1))
        # Pages of a feed's size: what a feed shows beyond its newest is the open page.
        options.setdefault("archive_page_size", site.feed_size)
        # Corrections of complete pages in the subscription feeds have tests of their own.
        options.setdefault("correction_days", 0)
        return publish(self.source, self.dest, self.state, site, PublishOptions(**options))

    def feed(self, slug: str | None = None) -> dict[str, Any]:
        path = "feeds/feed.json" if slug is None else f"feeds/tags/{slug}/feed.json"
        return json.loads(self.dest.objects[path][0])

    def ids(self, slug: str | None = None) -> list[str]:
        return [item["id"].rsplit("/", 1)[1] for item in self.feed(slug)["items"]]

    def item(self, summary_id: str, slug: str | None = None) -> dict[str, Any]:
        return next(item for item in self.feed(slug)["items"] if item["id"].endswith("/" + summary_id))

    def index_counts(self) -> dict[str, int]:
        page = lxml_html.fromstring(self.dest.objects["index.html"][0])
        return {
            link.get("href").removeprefix(BASE_URL + "tags/").strip("/"): int(link.findtext("span"))
            for link in page.xpath("//section[@id='tags']//li/a")
        }

    def opml_slugs(self) -> set[str]:
        root = etree.fromstring(self.dest.objects[OPML][0])
        return {
            outline.get("xmlUrl").removeprefix(BASE_URL + "feeds/tags/").split("/")[0]
            for outline in root.iter("outline")
            if outline.get("xmlUrl")
        }


def doc(number: int, hour: int, day: int = 20, **fields: Any) -> dict[str, Any]:
    """A summary with a known publication time (the helper's default depends on hash())."""
    return summary(number, published_at=f"2026-11-{day:02d}T{hour:02d}:00:00+03:00", **fields)


def sid(number: int) -> str:
    return f"2611.{number:05d}"


@pytest.fixture
def stores() -> Stores:
    return Stores()


def skipped(report: PublishReport) -> list[tuple[str, str]]:
    return [(problem.key, problem.reason) for problem in report.problems if problem.outcome == "skipped"]


# Counting new, updated and unchanged --------------------------------------------------


def test_new_updated_and_unchanged_are_counted(stores: Stores) -> None:
    for number in (1, 2, 3):
        stores.add(f"2026/11/20/{number}.json", doc(number, 8 + number))
    first = stores.run()
    assert (first.summaries_new, first.summaries_updated, first.summaries_unchanged) == (3, 0, 0)
    assert first.objects_read == 3
    assert stores.ids() == [sid(3), sid(2), sid(1)]

    # An edit of 1 in place, and a new summary 4.
    stores.add("2026/11/20/1.json", doc(1, 9, title="Новое название", updated_at="2026-11-21T12:00:00+03:00"))
    stores.add("2026/11/21/4.json", doc(4, 9, day=21))
    second = stores.run()
    assert (second.summaries_new, second.summaries_updated, second.summaries_unchanged) == (1, 1, 0)
    assert second.objects_read == 2
    assert stores.item(sid(1))["title"] == "Новое название"

    # The first version of 1 again, under another key: older than what is published.
    stores.add("2026/11/21/old-1.json", doc(1, 9))
    third = stores.run()
    assert third.objects_read == 1
    assert (third.summaries_new, third.summaries_updated, third.summaries_unchanged) == (0, 0, 1)
    assert skipped(third) == []
    assert third.files_written == 0
    assert stores.item(sid(1))["title"] == "Новое название"
    assert stores.ids() == [sid(4), sid(3), sid(2), sid(1)]


def test_a_second_run_with_nothing_new_puts_nothing(stores: Stores) -> None:
    for number in (1, 2):
        stores.add(f"2026/11/20/{number}.json", doc(number, 8 + number, tags=["mllm", "vqa"]))
    stores.run()
    stores.dest.puts.clear()
    again = stores.run()
    assert again.objects_read == 0
    assert again.files_written == 0
    assert stores.dest.puts == []


def test_a_new_summary_puts_only_the_files_it_changes(stores: Stores) -> None:
    stores.add("2026/11/20/1.json", doc(1, 9, tags=["mllm"]))
    stores.add("2026/11/20/2.json", doc(2, 10, tags=["vqa"]))
    stores.run()
    opml = stores.dest.objects[OPML][0]

    stores.dest.puts.clear()
    stores.add("2026/11/20/3.json", doc(3, 8, tags=["vqa"]))  # older than the newest: OPML date stays
    report = stores.run()
    expected = {
        "feeds/rss.xml", "feeds/atom.xml", "feeds/feed.json", "index.html",
        "feeds/tags/vqa/rss.xml", "feeds/tags/vqa/atom.xml", "feeds/tags/vqa/feed.json", "tags/vqa/index.html",
        # no archive page (none is complete, and the index counts only complete ones), and no
        # sitemap: each page's newest summary is the same
    }  # fmt: skip
    assert sorted(stores.dest.puts) == sorted(expected)
    assert report.files_written == len(expected)
    assert stores.dest.objects[OPML][0] == opml

    stores.dest.puts.clear()
    stores.add("2026/11/20/4.json", doc(4, 7, tags=["rag"]))  # a new tag: the OPML gains it
    stores.run()
    assert sorted(stores.dest.puts) == sorted(
        {"feeds/rss.xml", "feeds/atom.xml", "feeds/feed.json", "index.html", OPML}
        | {f"feeds/tags/rag/{name}" for name in ("rss.xml", "atom.xml", "feed.json")}
        | {"tags/rag/index.html"}
        | {"tags/rag/archive/index.html", "sitemap.xml"}
    )
    assert stores.opml_slugs() == {"mllm", "vqa", "rag"}


def test_a_newer_summary_with_a_known_tag_does_not_rewrite_the_opml(stores: Stores) -> None:
    # CONTRACT/brief: the OPML lists the tag feeds; it is rewritten only when that list changes.
    stores.add("2026/11/20/1.json", doc(1, 9, tags=["mllm"]))
    stores.run()
    stores.dest.puts.clear()
    stores.add("2026/11/21/2.json", doc(2, 9, day=21, tags=["mllm"]))
    stores.run()
    assert OPML not in stores.dest.puts


def test_output_headers_are_set(stores: Stores) -> None:
    stores.add("2026/11/20/1.json", doc(1, 9, tags=["mllm"]))
    stores.run()
    headers = {key: value[2] for key, value in stores.dest.objects.items()}
    assert headers["feeds/rss.xml"]["content_type"] == "application/rss+xml; charset=utf-8"
    assert headers["feeds/tags/mllm/atom.xml"]["content_type"] == "application/atom+xml; charset=utf-8"
    assert headers["feeds/feed.json"]["content_type"] == "application/feed+json; charset=utf-8"
    assert headers["index.html"]["content_type"].startswith("text/html")
    assert all(value["cache_control"] for value in headers.values())


# Order, caps and ids --------------------------------------------------------------


def test_feeds_are_newest_first_and_capped_at_feed_size(stores: Stores) -> None:
    site = Site(**{**SITE.__dict__, "feed_size": 3})
    hours = {1: 12, 2: 9, 3: 15, 4: 10, 5: 8, 6: 14}
    for number, hour in hours.items():
        tags = ["even"] if number % 2 == 0 else ["odd"]
        stores.add(f"2026/11/20/{number}.json", doc(number, hour, tags=["mllm", *tags]))
    stores.run(site)
    assert stores.ids() == [sid(3), sid(6), sid(1)]
    assert stores.ids("mllm") == [sid(3), sid(6), sid(1)]
    assert stores.ids("odd") == [sid(3), sid(1), sid(5)]
    assert stores.ids("even") == [sid(6), sid(4), sid(2)]
    # A later run adding an older summary leaves the window as it is.
    stores.add("2026/11/20/7.json", doc(7, 7, tags=["odd"]))
    stores.run(site)
    assert stores.ids("odd") == [sid(3), sid(1), sid(5), sid(7)], "the newest, and the open page's one"
    assert stores.index_counts() == {"mllm": 6, "odd": 4, "even": 3}


def test_one_summary_has_one_id_in_every_feed_and_across_edits(stores: Stores) -> None:
    stores.add("2026/11/20/1.json", doc(1, 9, tags=["mllm", "vqa"]))
    stores.run()
    expected = f"tag:aidigest.example,2026:summary/{sid(1)}"
    before = {slug: stores.item(sid(1), slug)["id"] for slug in (None, "mllm", "vqa")}
    assert set(before.values()) == {expected}
    stores.add(
        "2026/11/21/1-v2.json", doc(1, 9, title="v2", tags=["mllm", "vqa"], updated_at="2026-11-21T10:00:00+03:00")
    )
    report = stores.run()
    assert report.summaries_updated == 1
    for slug in (None, "mllm", "vqa"):
        assert stores.ids(slug) == [sid(1)]
        assert stores.item(sid(1), slug)["id"] == expected
        assert stores.item(sid(1), slug)["title"] == "v2"
    atom = etree.fromstring(stores.dest.objects["feeds/atom.xml"][0])
    ids = atom.findall("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}id")
    assert [node.text for node in ids] == [expected]
    rss = etree.fromstring(stores.dest.objects["feeds/tags/vqa/rss.xml"][0])
    assert [node.text for node in rss.iter("guid")] == [expected]


# Edits that change tags ----------------------------------------------------------------


def test_an_edit_that_removes_a_tag_drops_the_item_and_the_count(stores: Stores) -> None:
    stores.add("2026/11/20/1.json", doc(1, 9, tags=["mllm", "vqa"]))
    stores.add("2026/11/20/2.json", doc(2, 10, tags=["vqa"]))
    stores.add("2026/11/20/3.json", doc(3, 11, tags=["rare"]))
    stores.run()
    assert stores.index_counts() == {"vqa": 2, "mllm": 1, "rare": 1}
    assert stores.opml_slugs() == {"mllm", "vqa", "rare"}

    later = "2026-11-21T10:00:00+03:00"
    stores.add("2026/11/20/1.json", doc(1, 9, tags=["mllm"], updated_at=later))
    stores.add("2026/11/20/3.json", doc(3, 11, tags=["MLLM"], updated_at=later))
    report = stores.run()
    assert (report.summaries_new, report.summaries_updated) == (0, 2)
    assert stores.ids("vqa") == [sid(2)]
    assert stores.ids("mllm") == [sid(3), sid(1)]
    assert stores.ids("rare") == []
    assert stores.index_counts() == {"mllm": 2, "vqa": 1}
    assert stores.opml_slugs() == {"mllm", "vqa"}
    assert stores.ids() == [sid(3), sid(2), sid(1)]
    assert stores.item(sid(1))["tags"] == ["mllm"]


def test_an_edit_that_only_changes_a_tags_case_keeps_the_count(stores: Stores) -> None:
    stores.add("2026/11/20/1.json", doc(1, 9, tags=["mllm"]))
    stores.add("2026/11/20/2.json", doc(2, 10, tags=["mllm"]))
    stores.run()
    stores.add("2026/11/20/1.json", doc(1, 9, tags=["MLLM"], updated_at="2026-11-21T10:00:00+03:00"))
    stores.run()
    assert stores.index_counts() == {"mllm": 2}
    assert stores.ids("mllm") == [sid(2), sid(1)]


def test_a_tag_moved_away_and_back_is_counted_once(stores: Stores) -> None:
    stores.add("2026/11/20/1.json", doc(1, 9, tags=["a"]))
    stores.add("2026/11/20/2.json", doc(2, 10, tags=["a"]))
    stores.run()
    stores.add("2026/11/20/1.json", doc(1, 11, tags=["b"], updated_at="2026-11-21T11:00:00+03:00"))
    stores.run()
    assert stores.index_counts() == {"a": 1, "b": 1}
    assert (stores.ids("a"), stores.ids("b")) == ([sid(2)], [sid(1)])
    stores.add("2026/11/20/1.json", doc(1, 11, tags=["a", "b"], updated_at="2026-11-21T12:00:00+03:00"))
    stores.run()
    assert stores.index_counts() == {"a": 2, "b": 1}
    # published_at moved from 09:00 to 11:00 with the edit: 1 is now the newest.
    assert (stores.ids("a"), stores.ids("b")) == ([sid(1), sid(2)], [sid(1)])
    assert stores.ids() == [sid(1), sid(2)]


def test_a_tag_feed_stays_full_after_an_edit_removes_its_newest_item(stores: Stores) -> None:
    site = Site(**{**SITE.__dict__, "feed_size": 3})
    for number in range(1, 7):
        stores.add(f"2026/11/20/{number}.json", doc(number, 8 + number, tags=["mllm"]))
    stores.run(site)
    assert stores.ids("mllm") == [sid(6), sid(5), sid(4)]
    stores.add("2026/11/20/6.json", doc(6, 14, tags=["vqa"], updated_at="2026-11-21T10:00:00+03:00"))
    stores.run(site)
    assert stores.ids("mllm") == [sid(5), sid(4), sid(3)]
    assert stores.ids("vqa") == [sid(6)]
    assert stores.index_counts() == {"mllm": 5, "vqa": 1}


# Duplicates --------------------------------------------------------------------------------


def test_same_id_same_updated_at_from_another_key_in_a_later_run_is_skipped(stores: Stores) -> None:
    stores.add("2026/11/20/a.json", doc(1, 9, title="Первая версия"))
    stores.run()
    stores.add("2026/11/21/b.json", doc(1, 9, title="Другой текст с тем же временем"))
    report = stores.run()
    assert (report.summaries_new, report.summaries_updated) == (0, 0)
    problems = skipped(report)
    assert len(problems) == 1
    key, reason = problems[0]
    assert key == "2026/11/21/b.json"
    assert "duplicate id" in reason and sid(1) in reason and "2026/11/20/a.json" in reason
    assert report.skipped == 1
    assert stores.ids() == [sid(1)]
    assert stores.item(sid(1))["title"] == "Первая версия"
    assert report.files_written == 0


def test_an_identical_copy_under_another_key_publishes_nothing_twice(stores: Stores) -> None:
    stores.add("2026/11/20/a.json", doc(1, 9, tags=["mllm"]))
    stores.run()
    stores.dest.puts.clear()
    stores.add("2026/11/21/a-again.json", doc(1, 9, tags=["mllm"]))
    report = stores.run()
    assert (report.summaries_new, report.summaries_updated) == (0, 0)
    assert report.files_written == 0 and stores.dest.puts == []
    assert stores.ids() == stores.ids("mllm") == [sid(1)]
    assert stores.index_counts() == {"mllm": 1}


def test_same_id_same_updated_at_twice_in_one_run_publishes_one_and_reports_the_other(stores: Stores) -> None:
    stores.add("2026/11/20/a.json", doc(1, 9, title="Из a"))
    stores.add("2026/11/20/b.json", doc(1, 9, title="Из b"))
    report = stores.run()
    assert report.summaries_new == 1
    problems = skipped(report)
    assert [key for key, _ in problems] == ["2026/11/20/b.json"]
    assert "duplicate id" in problems[0][1] and "2026/11/20/a.json" in problems[0][1]
    assert stores.ids() == [sid(1)]
    assert stores.item(sid(1))["title"] == "Из a"


def test_a_later_updated_at_from_another_key_is_an_update_not_a_duplicate(stores: Stores) -> None:
    stores.add("2026/11/20/a.json", doc(1, 9, title="v1", tags=["mllm"]))
    stores.run()
    stores.add("2026/11/21/b.json", doc(1, 9, title="v2", tags=["mllm"], updated_at="2026-11-21T09:00:00+03:00"))
    report = stores.run()
    assert (report.summaries_new, report.summaries_updated, report.skipped) == (0, 1, 0)
    assert stores.ids() == stores.ids("mllm") == [sid(1)]
    assert stores.item(sid(1), "mllm")["title"] == "v2"
    assert stores.index_counts() == {"mllm": 1}


# The state lock -----------------------------------------------------------------------


def test_the_lock_is_released_after_a_run(stores: Stores) -> None:
    stores.add("2026/11/20/1.json", doc(1, 9))
    stores.run()
    assert LOCK_KEY in stores.state.puts  # the run did take it
    assert stores.state.read(LOCK_KEY) is None
    stores.run()
    assert stores.state.read(LOCK_KEY) is None


class FailingStore(MemoryStore):
    def put(self, key: str, data: bytes, **arguments: Any) -> str:
        raise StorageError(f"cannot write {key}: disk full")


def test_the_lock_is_released_when_a_run_fails_and_nothing_is_lost(stores: Stores) -> None:
    stores.add("2026/11/20/1.json", doc(1, 9))
    stores.add("2026/11/20/2.json", doc(2, 10))
    with pytest.raises(StorageError, match="disk full"):
        publish(stores.source, FailingStore("broken"), stores.state, SITE, PublishOptions(workers=1))
    assert stores.state.read(LOCK_KEY) is None
    report = stores.run()
    assert report.summaries_new == 2
    assert stores.ids() == [sid(2), sid(1)]


def test_a_held_lock_makes_a_run_raise_state_locked(stores: Stores) -> None:
    stores.add("2026/11/20/1.json", doc(1, 9))
    with StateLock(stores.state, ttl=timedelta(minutes=5), wait=timedelta(0)):
        with pytest.raises(StateLocked, match=r"another publish run .*memory://state/lock\.json"):
            stores.run(lock_wait=timedelta(milliseconds=100))
        assert stores.dest.puts == []
    report = stores.run()
    assert report.summaries_new == 1
    assert stores.state.read(LOCK_KEY) is None


# Entries cut from the files published last time ----------------------------------------

SMALL = replace(SITE, feed_size=4)


def _rebuilt(stores: Stores) -> dict[str, bytes]:
    """What one run over the same source publishes from nothing but the places the state gave each summary."""
    fresh = Stores()
    fresh.source = stores.source
    fresh.state.objects = dict(stores.state.objects)
    fresh.run(SMALL, rebuild=True)
    return {key: value[0] for key, value in fresh.dest.objects.items()}


def _published(stores: Stores) -> dict[str, bytes]:
    return {key: value[0] for key, value in stores.dest.objects.items()}


def test_incremental_runs_publish_the_bytes_a_single_run_would(stores: Stores) -> None:
    for number in range(1, 25):
        stores.add(f"2026/11/20/{number}.json", doc(number, number % 24, tags=[f"t{number % 3}", "all"]))
    stores.run(SMALL)
    assert _published(stores) == _rebuilt(stores)

    # Newer and older summaries: some enter the shown items, some only the spare ones.
    stores.add("2026/11/21/30.json", doc(30, 5, day=21, tags=["t0", "new"]))
    stores.add("2026/11/19/31.json", doc(31, 5, day=19, tags=["t1"]))
    stores.run(SMALL)
    assert _published(stores) == _rebuilt(stores)

    # An edit of a shown summary's text, and one that takes a shown summary out of t2.
    stores.add(
        "2026/11/20/23.json",
        doc(23, 23, tags=["t2", "all"], summary="Новый **текст**.", updated_at="2026-11-22T10:00:00Z"),
    )
    stores.add("2026/11/20/20.json", doc(20, 20, tags=["all"], updated_at="2026-11-22T10:00:00Z"))
    report = stores.run(SMALL)
    assert report.summaries_updated == 2
    assert "Новый <strong>текст</strong>." in stores.item(sid(23), "t2")["content_html"]
    assert sid(20) not in stores.ids("t2")
    assert len(stores.ids("t2")) == 4  # the next one down took its place
    assert _published(stores) == _rebuilt(stores)


@pytest.mark.parametrize("change", ["edited", "deleted"])
def test_a_published_file_changed_by_someone_else_is_rendered_again(stores: Stores, change: str) -> None:
    for number in range(1, 9):
        stores.add(f"2026/11/20/{number}.json", doc(number, number, tags=["t"]))
    stores.run(SMALL)
    atom = "feeds/tags/t/atom.xml"
    if change == "edited":
        stores.dest.put(atom, stores.dest.objects[atom][0].replace(b"<entry", b"<entry data-x='1'", 1))
    else:
        del stores.dest.objects[atom]

    stores.add("2026/11/21/9.json", doc(9, 1, day=21, tags=["t"]))
    stores.run(SMALL)
    assert _published(stores) == _rebuilt(stores)


def test_a_summary_gone_from_its_source_is_left_out_when_it_must_be_rendered_again(stores: Stores) -> None:
    for number in range(1, 6):
        stores.add(f"2026/11/20/{number}.json", doc(number, number, tags=["t"]))
    stores.run(SMALL)
    del stores.dest.objects["feeds/tags/t/rss.xml"]
    del stores.source.objects["2026/11/20/5.json"]

    stores.add("2026/11/21/6.json", doc(6, 1, day=21, tags=["t"]))
    stores.run(SMALL)
    assert stores.ids("t") == [sid(6), sid(4), sid(3), sid(2)]


def test_ids_stay_in_the_recent_file_until_many_then_move_to_their_shards(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_ids, "RECENT_IDS_LIMIT", 3)

    def shards() -> list[str]:
        head = json.loads(stores.state.objects[keys.HEAD_KEY][0])
        parts = head["parts"]
        return sorted(key for key in parts if key.startswith("catalog/ids/") and key not in SPECIAL_ID_PARTS)

    def recent_ids() -> dict[str, object]:
        found = state_part(
            lambda key: stores.state.objects[key][0] if key in stores.state.objects else None, keys.RECENT_IDS_KEY
        )
        assert found is not None
        recent: dict[str, object] = json.loads(found)
        return recent

    for number in (1, 2):
        stores.add(f"2026/11/20/{number}.json", doc(number, number))
    stores.run()
    assert shards() == []
    assert sorted(recent_ids()) == [sid(1), sid(2)]

    for number in (3, 4):
        stores.add(f"2026/11/20/{number}.json", doc(number, number))
    stores.run()
    assert len(shards()) >= 1
    assert recent_ids() == {}

    # Edits of ids in shards and of one in the recent file are updates, not new summaries.
    stores.add("2026/11/21/5.json", doc(5, 5, day=21))
    stores.run()
    for number in (1, 5):
        stores.add(f"2026/11/20/{number}.json", doc(number, number, title="Правка", updated_at="2026-11-22T10:00:00Z"))
    report = stores.run()
    assert (report.summaries_new, report.summaries_updated) == (0, 2)
    assert stores.item(sid(1))["title"] == "Правка"


def test_new_site_settings_render_every_feed_again(stores: Stores) -> None:
    for number in range(1, 7):
        stores.add(f"2026/11/20/{number}.json", doc(number, number, tags=[f"t{number % 2}"]))
    stores.run(SMALL)
    renamed = replace(SMALL, title="Другой дайджест")

    report = stores.run(renamed)
    assert report.files_written > 0
    fresh = Stores()
    fresh.source = stores.source
    fresh.run(renamed)
    assert _published(stores) == {key: value[0] for key, value in fresh.dest.objects.items()}
    assert stores.run(renamed).files_written == 0


@pytest.mark.parametrize("how", ["--rebuild", "new settings"])
def test_a_rebuild_logs_as_news_only_what_was_not_published_before(stores: Stores, how: str) -> None:
    def logged() -> list[tuple[str, str]]:
        lines = [
            json.loads(line)
            for key, value in sorted(stores.state.objects.items())
            if key.startswith("catalog/log/")
            for line in value[0].splitlines()
        ]
        return [(line["summary"]["id"], line["change"]) for line in lines]

    for number in (1, 2, 3):
        stores.add(f"2026/11/20/{number}.json", doc(number, number))
    stores.run(SMALL)
    assert sorted(logged()) == [(sid(1), "new"), (sid(2), "new"), (sid(3), "new")]

    stores.add("2026/11/20/2.json", doc(2, 2, title="Правка", updated_at="2026-11-21T10:00:00Z"))
    stores.add("2026/11/21/4.json", doc(4, 4, day=21))
    if how == "--rebuild":
        report = stores.run(SMALL, rebuild=True)
    else:
        report = stores.run(replace(SMALL, title="Другой дайджест"))
    if how == "--rebuild":
        assert report.summaries_new == 4  # counted afresh
    else:  # a change of settings says what it is: only what changed is news
        assert (report.summaries_new, report.summaries_updated, report.summaries_unchanged) == (1, 1, 2)
    assert sorted(logged()) == [(sid(1), "new"), (sid(2), "new"), (sid(2), "updated"), (sid(3), "new"), (sid(4), "new")]


def test_a_rebuild_after_a_lost_head_does_not_mail_again_what_was_published(stores: Stores) -> None:
    def next_issue(day: int) -> list[str]:
        issue = prepare_issue(stores.state, "daily", date(2026, 12, day), datetime.now(UTC))
        return sorted(summary.id for summary in issue.summaries)

    for number in (1, 2, 3):
        stores.add(f"2026/11/20/{number}.json", doc(number, number))
    stores.run(SMALL)
    assert next_issue(1) == [sid(1), sid(2), sid(3)]
    stores.add("2026/11/21/4.json", doc(4, 4, day=21))
    stores.run(SMALL)
    assert next_issue(2) == [sid(4)]

    # The head is lost: the run is refused, and the rebuild it asks for logs as
    # news only what the publish log does not hold in that version already.
    del stores.state.objects[keys.HEAD_KEY]
    with pytest.raises(StorageError, match="--rebuild"):
        stores.run(SMALL)
    stores.add("2026/11/20/2.json", doc(2, 2, title="Правка", updated_at="2026-11-22T10:00:00Z"))
    stores.add("2026/11/22/5.json", doc(5, 5, day=22))
    logged_before = _log(stores)
    report = stores.run(SMALL, rebuild=True)
    assert report.summaries_new == 5  # the state is built afresh
    rebuild_log = sorted(_log(stores))
    for line in logged_before:
        rebuild_log.remove(line)
    assert rebuild_log == [(sid(2), "updated", "Правка"), (sid(5), "new", "Статья номер 5")]
    assert next_issue(3) == [sid(5)]


# What the readers keep ------------------------------------------------------------------


def _log(stores: Stores) -> list[tuple[str, str, str]]:
    lines = [
        json.loads(line)
        for key, value in sorted(stores.state.objects.items())
        if key.startswith("catalog/log/")
        for line in value[0].splitlines()
    ]
    return [(line["summary"]["id"], line["change"], line["summary"]["title"]) for line in lines]


def test_a_summary_the_reader_let_go_is_read_again_when_it_is_news(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Readers keep only what some feed may show or newsletters may log, judged among
    # what they read. Re-read lines of a rewritten object can crowd out an edit that
    # is older than all of them yet still news: the run reads it again.
    monkeypatch.setattr(publish_run, "NEWS_LIMIT", 2)
    small = replace(SITE, feed_size=2)
    stores.add("2026/11/19/old.json", doc(0, 9, day=19, tags=["old"]))
    day = [doc(number, 8 + number, tags=["day", "old"]) for number in range(1, 6)]
    stores.source.put("2026/11/20/day.jsonl", "\n".join(json.dumps(line) for line in day).encode())
    stores.run(small)

    edit = doc(0, 9, day=19, tags=["old"], title="Исправлено", updated_at="2026-11-21T10:00:00Z")
    stores.source.put("2026/11/20/day.jsonl", "\n".join(json.dumps(line) for line in [*day, edit]).encode())
    report = stores.run(small)
    assert (report.summaries_updated, report.summaries_unchanged) == (1, 5)
    assert (sid(0), "updated", "Исправлено") in _log(stores)
    assert sid(0) not in stores.ids("old")  # shown nowhere: newer ones fill every feed it is in


def _summary_record(number: int, hour: int, tags: tuple[str, ...]) -> Any:
    data = json.dumps(doc(number, hour, tags=list(tags))).encode()
    return next(iter(SummaryReader().read_object("2026/11/20/x.json", data)))


def _save(state: catalog.Catalog) -> None:
    state.commit(threads=False)


def test_a_run_whose_head_changed_underneath_commits_nothing() -> None:
    """Without the lock (a lease that expired mid-run), the later commit fails and takes nothing with it."""
    store = MemoryStore("state")
    first, second = catalog.Catalog(store), catalog.Catalog(store)
    for number, run in ((1, first), (2, second)):
        records = SummaryReader().read_object(f"2026/11/20/{number}.json", json.dumps(doc(number, 9)).encode())
        ref = next(record for record in records if isinstance(record, Summary)).ref()
        run.ids.record([ref], {ref.id: [0]})
        run.count_tags(1, {}, {}, {})
    _save(second)
    committed = dict(store.objects)
    with pytest.raises(StorageError, match="changed by another run"):
        _save(first)
    # The head is the second run's, and names only its files; the first run's are strays.
    assert store.objects[keys.HEAD_KEY] == committed[keys.HEAD_KEY]
    after = catalog.Catalog(store)
    assert after.ids.entry(sid(2)) is not None
    assert after.ids.entry(sid(1)) is None
    strays = [key for key in store.objects if key not in committed]
    assert strays
    assert sorted(after.sweep()) == sorted(strays)
    assert sorted(store.objects) == sorted(committed)


class _ShardReads(MemoryStore):
    """A state store that counts the reads of id shards."""

    def __init__(self) -> None:
        super().__init__("state")
        self.shard_reads = 0

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, str] | None:
        if key.startswith("catalog/ids/") and "recent" not in key and "known" not in key:
            self.shard_reads += 1
        return super().read(key, max_bytes)


def test_new_ids_are_told_new_without_reading_their_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_ids, "RECENT_IDS_LIMIT", 3)
    stores = Stores(state=_ShardReads())
    for number in range(1, 5):
        stores.add(f"2026/11/20/{number}.json", doc(number, number))
    stores.run()
    state = stores.state
    assert isinstance(state, _ShardReads)
    head = json.loads(state.objects[keys.HEAD_KEY][0])
    assert keys.KNOWN_IDS_KEY in head["parts"]
    assert any(key.startswith("catalog/ids/0") for key in head["parts"]), "the ids should be in shards by now"

    state.shard_reads = 0
    for number in (5, 6):
        stores.add(f"2026/11/21/{number}.json", doc(number, number, day=21))
    assert stores.run().summaries_new == 2
    assert state.shard_reads == 0
    # An edit of an id in a shard still finds it there: an update, not a second summary.
    stores.add("2026/11/20/1.json", doc(1, 1, title="Правка", updated_at="2026-11-22T10:00:00Z"))
    report = stores.run()
    assert (report.summaries_new, report.summaries_updated) == (0, 1)
    assert state.shard_reads == 1
    assert stores.ids().count(sid(1)) == 1


def test_a_state_without_known_id_hashes_gets_them_and_still_knows_every_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state_ids, "RECENT_IDS_LIMIT", 3)
    stores = Stores()
    for number in range(1, 5):
        stores.add(f"2026/11/20/{number}.json", doc(number, number))
    stores.run()
    # As a build from before the known hashes left it.
    head = json.loads(stores.state.objects[keys.HEAD_KEY][0])
    del stores.state.objects[head["parts"].pop(keys.KNOWN_IDS_KEY)]
    stores.state.objects[keys.HEAD_KEY] = (json.dumps(head).encode(), *stores.state.objects[keys.HEAD_KEY][1:])

    stores.add("2026/11/20/2.json", doc(2, 2, title="Правка", updated_at="2026-11-22T10:00:00Z"))
    stores.add("2026/11/21/5.json", doc(5, 5, day=21))
    report = stores.run()
    assert (report.summaries_new, report.summaries_updated) == (1, 1)
    known = state_part(lambda key: stores.state.objects[key][0] if key in stores.state.objects else None,
                       keys.KNOWN_IDS_KEY)  # fmt: skip
    assert known is not None
    # Every id so far, the old ones read from the shards once.
    for number in (1, 3, 4):
        stores.add(
            f"2026/11/20/{number}.json", doc(number, number, title="Ещё правка", updated_at="2026-11-23T10:00:00Z")
        )
    report = stores.run()
    assert (report.summaries_new, report.summaries_updated) == (0, 3)
    assert sorted(stores.ids()) == sorted(sid(number) for number in range(1, 6))


# The registry of output kinds -------------------------------------------------------------


def test_a_kind_added_to_the_registry_is_published_and_its_kept_entries_cut_from_last_time(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digestpub.publish import produce
    from digestpub.render import Frame, batch, entries, kinds, registry

    rendered: list[str] = []

    def titles(summaries: batch.EntryBatch) -> list[bytes]:
        rendered.extend(summary.id for summary in summaries.summaries)
        return [summary.title.encode() for summary in summaries.summaries]

    def frame(view: kinds.FeedView) -> Frame:
        return Frame(f"# {view.feed}\n".encode(), b"\n")

    def path(site: Site, feed: str, page: int | None) -> str:
        return f"titles/{feed}.txt"

    extra = kinds.Kind("titles", "text/plain; charset=utf-8", b"\n", path, titles, frame)
    every = (*registry.all_kinds(), extra)
    monkeypatch.setattr(produce, "all_kinds", lambda: every)
    monkeypatch.setattr(entries, "all_kinds", lambda: every)

    for number in (1, 2, 3):
        stores.add(f"2026/11/20/{number}.json", doc(number, 8 + number, title=f"Заголовок {number}"))
    stores.run()
    assert stores.dest.objects["titles/_all.txt"][0].decode() == "# _all\nЗаголовок 3\nЗаголовок 2\nЗаголовок 1\n"
    assert stores.dest.objects["titles/_all.txt"][2]["content_type"] == "text/plain; charset=utf-8"

    rendered.clear()
    stores.add("2026/11/21/4.json", doc(4, 9, day=21, title="Заголовок 4"))
    stores.run()
    assert rendered == [sid(4)], "the kept entries were cut from the published file, not rendered again"
    fresh = Stores(source=stores.source)
    fresh.run()
    assert _published(stores) == {key: value[0] for key, value in fresh.dest.objects.items()}
    assert stores.dest.objects["titles/_all.txt"][0].decode().splitlines()[1:] == [
        f"Заголовок {number}" for number in (4, 3, 2, 1)
    ]


def test_a_page_completed_by_a_run_takes_its_entries_from_the_subscription_documents(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digestpub.publish import entries as publish_entries
    from digestpub.publish import produce
    from digestpub.render import entries

    for number in range(1, 5):
        stores.add(f"2026/11/20/{number}.json", doc(number, 8 + number, tags=["mllm"]))
    stores.run(SMALL, archive_page_size=5)
    rendered: list[str] = []
    original = entries.render_entries

    def counting(site: Site, summaries: Any) -> entries.EntryPack:
        rendered.extend(summary.id for summary in summaries)
        return original(site, summaries)

    monkeypatch.setattr(produce, "render_entries", counting)
    monkeypatch.setattr(publish_entries, "render_entries", counting)
    stores.add("2026/11/20/5.json", doc(5, 20, tags=["mllm"]))  # page 1 of everything and of mllm fills

    stores.run(SMALL, archive_page_size=5)

    assert rendered == [sid(5)], "the four already published were cut from the subscription documents"
    page = stores.dest.objects["feeds/archive/1/atom.xml"][0].decode()
    assert all(f"summary/{sid(number)}<" in page for number in range(1, 6))
