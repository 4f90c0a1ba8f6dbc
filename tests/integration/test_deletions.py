"""Deletions and named keys, over folders: what a source object takes with it when it goes.

A summary whose object is gone (found by a full scan, or named and missing) or
whose line left a ``.jsonl`` leaves every file that held it: the subscription
feeds of every format, its archive pages, the tag pages, the sitemap. With
corrections carried for no time (``correction_days`` 0) the site then matches,
byte for byte, a clean build of the source without it; a summary that moved to
another key stays, once. With the default, Atom says it was deleted for a while.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

from digestpub.app.locations import open_store
from digestpub.newsletter.fanout import recipient_batches, send_recipient_batch
from digestpub.newsletter.issues import prepare_issue
from digestpub.newsletter.run import build_issue
from digestpub.state.log import DELETED, logged_records
from tests.conftest import summary, write_json
from tests.integration import test_publish_folder
from tests.integration.test_publish_folder import entry_id, feed_files, files_of, json_ids, make_site
from tests.newsletter_support import FAST, Scenario, body_parts, paper

OLD_KEY = "2026/10/15/old.json"
"""The only summary of October, and of the tag "solo"."""
JSONL_KEY = "2026/11/21/c.jsonl"


def run(*where: Any, **options: Any) -> Any:
    """A run whose corrections leave the subscription feeds at once: what stays is what a clean build makes."""
    options.setdefault("correction_days", 0)
    return test_publish_folder.run(*where, **options)


def _jsonl(documents: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(document, ensure_ascii=False) + "\n" for document in documents)


def _lines() -> list[dict[str, Any]]:
    return [
        summary("2611.00031", tags=["mllm", "rag"], published_at="2026-11-21T08:00:00Z"),
        summary("2611.00032", tags=["vqa"], published_at="2026-11-21T09:00:00Z"),
        summary("2611.00033", tags=["mllm"], published_at="2026-11-21T10:00:00Z"),
    ]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "source"
    write_json(folder, "2026/11/20/a.json", summary("2611.00001", tags=["mllm", "vqa"]))
    write_json(folder, "2026/11/20/b.json", summary("2611.00002", tags=["mllm"]))
    write_json(folder, "2026/11/22/d.json", summary("2611.00004", tags=["vqa"], published_at="2026-11-22T08:00:00Z"))
    write_json(folder, OLD_KEY, summary("2610.00009", tags=["mllm", "solo"], published_at="2026-10-15T08:00:00Z"))
    (folder / JSONL_KEY).parent.mkdir(parents=True)
    (folder / JSONL_KEY).write_text(_jsonl(_lines()), encoding="utf-8")
    return folder


def _clean_build(source: Path, tmp_path: Path) -> dict[str, bytes]:
    """The site a first run makes of ``source`` as it is now."""
    copy = tmp_path / "clean-source"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy)
    dest, state = tmp_path / "clean-dest", tmp_path / "clean-state"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    run(copy, dest, state)
    return files_of(dest)


def _holding(files: dict[str, bytes], summary_id: str) -> list[str]:
    """The files that name a summary: its entry id or its URL."""
    marks = (entry_id(summary_id).encode(), f"papers/{summary_id}".encode())
    return sorted(path for path, data in files.items() if any(mark in data for mark in marks))


def _parsed_ids(dest: Path) -> dict[str, set[str]]:
    """The entry ids of every XML feed and archive, as a feed reader parses them."""
    found: dict[str, set[str]] = {}
    for path in sorted(dest.rglob("*.xml")):
        parsed = feedparser.parse(path.read_bytes())
        if parsed.get("version"):
            assert not parsed.bozo, (path, parsed.get("bozo_exception"))
            found[path.relative_to(dest).as_posix()] = {entry.id for entry in parsed.entries}
    return found


def test_a_named_key_in_an_old_day_folder_is_read_whatever_the_listing(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    late = "2026/11/08/late.json"
    write_json(source, late, summary("2611.00050", tags=["vqa"], published_at="2026-11-08T08:00:00Z"))

    hourly = run(source, dest, state)
    assert hourly.summaries_new == 0, "two weeks back is outside an hourly run's listing"
    named = run(source, dest, state, keys=(late,))

    assert (named.summaries_new, named.objects_read) == (1, 1)
    assert entry_id("2611.00050") in json_ids(dest, "vqa")
    assert run(source, dest, state, keys=(late,)).files_written == 0, "a named key read again changes nothing"


@pytest.mark.parametrize("how", ["named", "full-scan"])
def test_a_deleted_object_leaves_every_file_that_held_it(source: Path, tmp_path: Path, how: str) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    before = files_of(dest)
    held = _holding(before, "2610.00009")
    assert {"index.html", "feeds/atom.xml", "tags/solo/index.html"} <= set(held)
    assert "/solo/" in before["sitemap.xml"].decode()

    (source / OLD_KEY).unlink()
    report = run(source, dest, state, **({"keys": (OLD_KEY,)} if how == "named" else {"full_scan": True}))

    assert (report.summaries_deleted, report.summaries_new, report.summaries_updated) == (1, 0, 0)
    assert "1 deleted" in report.summary_line()
    after = files_of(dest)
    assert _holding(after, "2610.00009") == []
    for path, ids in _parsed_ids(dest).items():
        assert entry_id("2610.00009") not in ids, path
    assert entry_id("2611.00001") in _parsed_ids(dest)["feeds/atom.xml"], "the others stay"
    # The tag "solo" has nothing left: out of the index, the OPML and the sitemap; its feeds stay, empty,
    # so a reader subscribed to one sees the entry go rather than an error.
    assert b"/solo/" not in after["index.html"] and b"solo" not in after["feeds/tags.opml"]
    assert b"/solo/" not in after["sitemap.xml"]
    assert json_ids(dest, "solo") == []
    solo = {path for path in after if "/solo/" in path}
    assert solo <= {path for path in before if "/solo/" in path}
    # Everything else is what a clean build of the source without the object publishes.
    clean = _clean_build(source, tmp_path)
    assert {path: data for path, data in after.items() if path not in solo} == clean
    again = run(source, dest, state, **({"keys": (OLD_KEY,)} if how == "named" else {"full_scan": True}))
    assert (again.files_written, again.summaries_deleted) == (0, 0)


@pytest.mark.parametrize("named", [False, True], ids=["listed", "listed-and-named"])
def test_an_incremental_listing_finds_a_deleted_object_of_its_own_days(
    source: Path, tmp_path: Path, named: bool
) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    (source / "2026/11/22/d.json").unlink()

    report = run(source, dest, state, keys=("2026/11/22/d.json",) if named else ())

    assert (report.summaries_deleted, report.objects_read) == (1, 0), "one deletion, nothing to read"
    assert entry_id("2611.00004") not in json_ids(dest) + json_ids(dest, "vqa")


def test_a_feed_that_deletions_left_short_is_made_up_from_its_archives(tmp_path: Path) -> None:
    source, dest, state = tmp_path / "source", tmp_path / "dest", tmp_path / "state"
    site = make_site(feed_size=3)  # a window keeps 13 items; pages of 3 are all complete
    documents = [
        summary(
            f"2611.{number:05d}",
            tags=["mllm"],
            published_at=f"2026-{10 + number // 15}-{1 + number % 15:02d}T08:00:00Z",
        )
        for number in range(30)
    ]
    key = "2026/11/20/many.jsonl"
    (source / key).parent.mkdir(parents=True)
    (source / key).write_text(_jsonl(documents), encoding="utf-8")
    run(source, dest, state, site, archive_page_size=3)
    (source / key).write_text(_jsonl(documents[:15]), encoding="utf-8")  # the newest 15 go: all of November

    report = run(source, dest, state, site)

    assert report.summaries_deleted == 15
    newest = [entry_id(f"2611.{number:05d}") for number in (14, 13, 12)]
    assert json_ids(dest) == json_ids(dest, "mllm") == newest
    # Their pages stay where they were, emptied: later pages never move.
    emptied = feedparser.parse((dest / "feeds/archive/10/atom.xml").read_bytes())
    assert emptied.entries == [] and not emptied.bozo
    clean = tmp_path / "clean"
    shutil.copytree(source, clean / "source")
    run(clean / "source", clean / "dest", clean / "state", site, archive_page_size=3)
    for path in ("feeds/feed.json", "feeds/tags/mllm/feed.json", "index.html"):
        assert files_of(dest)[path] == files_of(clean / "dest")[path], path


def test_a_source_that_lists_nothing_deletes_nothing(
    source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    before = files_of(dest)
    shutil.rmtree(source)
    source.mkdir()

    report = run(source, dest, state, full_scan=True)

    assert (report.summaries_deleted, report.files_written) == (0, 0)
    assert files_of(dest) == before
    assert "lists no summary where the state saw 5: none is taken for deleted" in caplog.text
    # Named, a deletion is taken as said.
    assert run(source, dest, state, keys=("2026/11/20/b.json",)).summaries_deleted == 1


def test_a_line_removed_from_a_jsonl_removes_that_summary_only(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    first, _, third = _lines()
    (source / JSONL_KEY).write_text(_jsonl([first, third]), encoding="utf-8")

    report = run(source, dest, state)

    assert (report.summaries_deleted, report.summaries_new, report.summaries_updated) == (1, 0, 0)
    assert _holding(files_of(dest), "2611.00032") == []
    assert {entry_id("2611.00031"), entry_id("2611.00033")} <= set(json_ids(dest))
    assert files_of(dest) == _clean_build(source, tmp_path)


def test_a_jsonl_with_a_broken_line_keeps_its_summaries_until_it_is_fixed(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    first, _, third = _lines()
    broken = _jsonl([first, third]) + '{"id": "2611.00032", "title": \n'
    (source / JSONL_KEY).write_text(broken, encoding="utf-8")

    report = run(source, dest, state)

    assert (report.summaries_deleted, report.skipped) == (0, 1), "the broken line may be the missing summary"
    assert entry_id("2611.00032") in json_ids(dest, "vqa")
    (source / JSONL_KEY).write_text(_jsonl([first, third]), encoding="utf-8")
    fixed = run(source, dest, state)
    assert (fixed.summaries_deleted, fixed.still_skipped) == (1, [])
    assert entry_id("2611.00032") not in json_ids(dest, "vqa")


@pytest.mark.parametrize("edited", [False, True], ids=["same-version", "with-an-edit"])
def test_a_summary_moved_to_another_key_is_an_edit_not_a_deletion(source: Path, tmp_path: Path, edited: bool) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    moved = summary("2611.00001", tags=["mllm", "vqa"])
    if edited:
        moved |= {"title": "Исправленный заголовок", "updated_at": "2026-11-23T10:00:00Z"}
    (source / "2026/11/20/a.json").unlink()
    write_json(source, "2026/11/23/a-moved.json", moved)

    report = run(source, dest, state, full_scan=True)

    assert (report.summaries_deleted, report.summaries_new, report.summaries_updated) == (0, 0, 1)
    assert report.problems == [], "a move is not a duplicate"
    for feed in (None, "mllm", "vqa"):
        assert json_ids(dest, feed).count(entry_id("2611.00001")) == 1, feed
    titles = {item["id"]: item["title"] for item in json.loads((dest / "feeds/feed.json").read_bytes())["items"]}
    assert titles[entry_id("2611.00001")] == moved["title"]
    assert files_of(dest) == _clean_build(source, tmp_path)
    # The new key is where it lives now: deleting it takes the summary off the site.
    (source / "2026/11/23/a-moved.json").unlink()
    gone = run(source, dest, state, full_scan=True)
    assert gone.summaries_deleted == 1 and entry_id("2611.00001") not in json_ids(dest)


def test_deleting_an_old_copy_keeps_the_newer_version_published(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    edit = summary("2611.00002", tags=["mllm"], title="Новая версия", updated_at="2026-11-22T12:00:00Z")
    write_json(source, "2026/11/22/b-edit.json", edit)
    run(source, dest, state)
    (source / "2026/11/20/b.json").unlink()

    report = run(source, dest, state, full_scan=True)

    assert (report.summaries_deleted, report.summaries_updated) == (0, 0)
    assert report.files_written == 0


def test_a_copy_read_in_an_earlier_run_keeps_the_summary_when_the_original_goes(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    write_json(source, "2026/11/22/a-copy.json", summary("2611.00001", tags=["mllm", "vqa"]))
    copied = run(source, dest, state)
    assert [problem.reason[:27] for problem in copied.problems] == ["duplicate id '2611.00001': "], "both hold it"
    (source / "2026/11/20/a.json").unlink()

    report = run(source, dest, state, keys=("2026/11/20/a.json",))

    assert (report.summaries_deleted, report.summaries_updated, report.problems) == (0, 1, [])
    assert files_of(dest) == _clean_build(source, tmp_path)
    (source / "2026/11/22/a-copy.json").unlink()
    assert run(source, dest, state).summaries_deleted == 1, "the copy is where it lives now"


def test_deleting_the_newer_version_publishes_the_older_one_left(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    edit = summary("2611.00002", tags=["mllm", "rag"], title="Новая версия", updated_at="2026-11-22T12:00:00Z")
    write_json(source, "2026/11/22/b-edit.json", edit)
    run(source, dest, state)
    assert entry_id("2611.00002") in json_ids(dest, "rag")
    (source / "2026/11/22/b-edit.json").unlink()

    report = run(source, dest, state, full_scan=True)

    assert (report.summaries_deleted, report.summaries_updated) == (0, 1)
    assert entry_id("2611.00002") in json_ids(dest, "mllm") and json_ids(dest, "rag") == [entry_id("2611.00031")]
    assert files_of(dest) == _clean_build(source, tmp_path)


def test_a_deleted_objects_problems_are_forgotten(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    write_json(source, "2026/11/20/bad.json", {"id": "x"})
    first = run(source, dest, state)
    assert [problem.key for problem in first.skipped_inputs] == ["2026/11/20/bad.json"]
    (source / "2026/11/20/bad.json").unlink()

    report = run(source, dest, state, keys=("2026/11/20/bad.json",))

    assert (report.skipped_inputs, report.summaries_deleted) == ([], 0)
    assert run(source, dest, state).skipped_inputs == []


def test_a_deleted_summary_logged_but_not_yet_sent_is_not_in_the_next_issue(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    (source / JSONL_KEY).write_text(_jsonl(_lines()[:1]), encoding="utf-8")
    run(source, dest, state)
    store = open_store(str(state))
    today = datetime.now(UTC)
    records = sorted(logged_records(store, today.date(), today.date()), key=lambda record: record["logged_at"])
    changes = {record["summary"]["id"]: record["change"] for record in records}
    assert changes["2611.00032"] == changes["2611.00033"] == DELETED

    issue = prepare_issue(store, "daily", date.today(), now=datetime.now(UTC), save=False)

    ids = {item.id for item in issue.summaries}
    assert "2611.00031" in ids and "2611.00001" in ids
    assert not ids & {"2611.00032", "2611.00033"}
    # Published again afterwards, it is news again.
    (source / JSONL_KEY).write_text(_jsonl(_lines()), encoding="utf-8")
    run(source, dest, state)
    again = prepare_issue(store, "daily", date.today(), now=datetime.now(UTC), save=False)
    assert {"2611.00032", "2611.00033"} <= {item.id for item in again.summaries}


def test_a_key_that_is_not_a_summary_key_is_refused_before_the_run(tmp_path: Path) -> None:
    from digestpub.app.wiring import publish_options
    from digestpub.errors import ConfigError
    from digestpub.settings import Settings

    settings = Settings.load(source=str(tmp_path))
    with pytest.raises(ConfigError, match=r"not summary keys: 'summaries/2026/11/20/a\.json', '2026/11/20/a\.txt'"):
        publish_options(settings, keys=["summaries/2026/11/20/a.json", "2026/11/20/a.txt", "2026/11/20/a.json"])
    assert publish_options(settings, keys=["2026/11/20/a.json", " 2026/11/20/a.json "]).keys == ("2026/11/20/a.json",)


def test_feeds_parse_before_and_after_a_deletion(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    assert all(entry_id("2611.00002") in _parsed_ids(dest)[path] for path in ("feeds/rss.xml", "feeds/atom.xml"))
    (source / "2026/11/20/b.json").unlink()
    run(source, dest, state, keys=("2026/11/20/b.json",))
    for path in feed_files(dest):
        data = (dest / path).read_bytes()
        assert entry_id("2611.00002").encode() not in data, path


def test_atom_feeds_say_a_summary_was_deleted_for_correction_days(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    (source / "2026/11/20/b.json").unlink()
    test_publish_folder.run(source, dest, state, keys=("2026/11/20/b.json",))  # the default correction_days
    for path in feed_files(dest):
        parsed = feedparser.parse((dest / path).read_bytes())
        assert entry_id("2611.00002") not in {entry.get("id") for entry in parsed.entries}, path
        data = (dest / path).read_text()
        tombstone = f'<at:deleted-entry ref="{entry_id("2611.00002")}"'
        assert (tombstone in data) == (path in {"feeds/atom.xml", "feeds/tags/mllm/atom.xml"}), path


def test_a_summary_deleted_after_its_issue_was_built_reaches_no_reader_not_sent_it_yet(tmp_path: Path) -> None:
    """The cloud builds an issue once and sends it in queued batches, over hours at a large list's rate:
    a summary the editors delete meanwhile is left out of every batch sent after the deletion."""
    scenario = Scenario.create(tmp_path)
    scenario.publish([paper(1, ["mllm"]), paper(2, ["mllm"])])
    for address in ("alice@example.com", "bob@example.com"):
        scenario.subscribe(address, "mllm")
    context = scenario.context()
    issue, _renderer, _factory = build_issue(context, "daily", date.today())
    first, second = recipient_batches(issue, scenario.subscribers, size=1)

    assert send_recipient_batch(context, first, FAST).sent == 1
    [sent_first] = [body_parts(message)[0] for message in scenario.outbox()]
    (scenario.source_dir / "2026/11/20/2611.00002.json").unlink()
    assert scenario.publish([]).summaries_deleted == 1
    assert send_recipient_batch(context, second, FAST).sent == 1
    [sent_second] = [text for text in (body_parts(message)[0] for message in scenario.outbox()) if text != sent_first]
    assert "Статья 2:" in sent_first and "Статья 1:" in sent_first
    assert "Статья 2:" not in sent_second and "Статья 1:" in sent_second
    # A rerun of the day's issue (the CLI's resend) reads it back without it too.
    reread, _renderer, _factory = build_issue(context, "daily", date.today())
    assert [summary.id for summary in reread.summaries] == ["2611.00001"]
