"""Bad input stopped at the door: names that are not UTF-8, floods of broken lines, objects too large.

Each runs through the whole publish run, into folders with such files on disk or
into moto's S3, and is checked in the report, the log and the state the run saves.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from digestpub.adapters.folder_store import FolderStore
from digestpub.app.locations import open_store
from digestpub.errors import ObjectTooLarge
from digestpub.model import PublishReport
from digestpub.publish import PublishOptions, publish
from digestpub.publish.ingest import PROBLEMS_LISTED
from digestpub.site import Site
from tests.conftest import summary, write_json

BASE_URL = "https://aidigest.example/"
DAY = "2026/11/20"


def make_site() -> Site:
    return Site(title="Ай Дайджест", description="Дайджест", lang="ru", base_url=BASE_URL, api_url=BASE_URL)


def run_publish(root: Path, **options: Any) -> PublishReport:
    return publish(
        FolderStore(root / "source"),
        FolderStore(root / "public"),
        FolderStore(root / "state"),
        make_site(),
        PublishOptions(workers=1, lock_wait=timedelta(seconds=2), **options),
    )


def feed_ids(public: Path) -> set[str]:
    items = json.loads((public / "feeds" / "feed.json").read_text(encoding="utf-8"))["items"]
    return {item["id"].rsplit("/", 1)[-1] for item in items}


def state_bytes(state: Path) -> int:
    return sum(path.stat().st_size for path in state.rglob("*") if path.is_file() and "reports" not in path.parts)


def write_good(source: Path, *numbers: int) -> None:
    for number in numbers:
        write_json(source, f"{DAY}/good-{number}.json", summary(number))


# --- names that are not UTF-8 ---------------------------------------------------


def bad_name(source: Path) -> Path:
    folder = source / DAY
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(os.fsdecode(os.fsencode(folder) + b"/bad\xff\xfe.json"))
    path.write_text(json.dumps(summary(99)), encoding="utf-8")
    return path


def test_a_file_name_that_is_not_utf8_is_reported_and_never_stops_a_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "source"
    write_good(source, 1, 2)
    path = bad_name(source)
    shown = f"{DAY}/bad\\xff\\xfe.json"

    with caplog.at_level(logging.WARNING, logger="digestpub"):
        first = run_publish(tmp_path)
    assert first.summaries_new == 2
    assert [(problem.key, problem.outcome) for problem in first.problems] == [(shown, "skipped")]
    assert "not valid UTF-8" in first.problems[0].reason
    assert shown in caplog.text
    assert feed_ids(tmp_path / "public") == {"2611.00001", "2611.00002"}

    # The state and report hold only what they can save, and a later run reads them.
    write_good(source, 3)
    second = run_publish(tmp_path, full_scan=True)
    assert second.summaries_new == 1
    assert [problem.key for problem in second.problems] == [shown]
    assert second.still_skipped == []
    saved = (tmp_path / "state" / "reports" / "latest.json").read_text(encoding="utf-8")
    assert json.loads(saved)["problems"][0]["key"] == shown

    path.unlink()
    third = run_publish(tmp_path, full_scan=True)
    assert third.problems == [] and third.still_skipped == []


def test_a_named_key_that_is_not_utf8_is_reported_not_read(tmp_path: Path) -> None:
    source = tmp_path / "source"
    write_good(source, 1)
    bad_name(source)
    named = os.fsdecode(os.fsencode(f"{DAY}/") + b"bad\xff\xfe.json")
    report = run_publish(tmp_path, keys=(named,))
    assert report.summaries_new == 1
    assert {problem.key for problem in report.problems} == {f"{DAY}/bad\\xff\\xfe.json"}


@pytest.fixture
def s3(s3_bucket: str) -> Iterator[Any]:
    yield boto3.client("s3")


def test_an_s3_key_with_control_characters_is_reported_and_never_stops_a_run(s3: Any, s3_bucket: str) -> None:
    for key, document in [(f"{DAY}/good.json", summary(1)), (f"{DAY}/bad\x01name.json", summary(2))]:
        s3.put_object(Bucket=s3_bucket, Key=f"summaries/{key}", Body=json.dumps(document).encode())
    stores = [open_store(f"s3://{s3_bucket}/{prefix}") for prefix in ("summaries", "site", "state")]
    options = PublishOptions(workers=1, lock_wait=timedelta(seconds=30))

    for _ in range(2):
        report = publish(*stores, make_site(), options)
        assert [problem.key for problem in report.problems] == [f"{DAY}/bad\\x01name.json"]
        assert "control characters" in report.problems[0].reason
    items = json.loads(s3.get_object(Bucket=s3_bucket, Key="site/feeds/feed.json")["Body"].read())["items"]
    assert [item["id"].rsplit("/", 1)[-1] for item in items] == ["2611.00001"]


# --- a flood of broken lines -------------------------------------------------------

FLOOD_LINES = 300_000


def test_a_flood_of_broken_lines_keeps_the_report_the_log_and_the_state_small(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "source"
    write_good(source, 1)
    flood = source / DAY / "flood.jsonl"
    flood.write_bytes(json.dumps(summary(2)).encode() + b"\n" + b"{broken\n" * FLOOD_LINES)

    with caplog.at_level(logging.INFO, logger="digestpub"):
        first = run_publish(tmp_path, max_object_bytes=10 * 1024 * 1024)
    assert first.summaries_new == 2
    assert first.skipped == FLOOD_LINES
    problems = [problem for problem in first.problems if problem.key == f"{DAY}/flood.jsonl"]
    assert len(problems) == PROBLEMS_LISTED + 1
    assert [problem.line for problem in problems] == list(range(2, 3 + PROBLEMS_LISTED))
    assert problems[-1].count == FLOOD_LINES - PROBLEMS_LISTED
    assert f"{FLOOD_LINES - PROBLEMS_LISTED:,} skipped from here on" in problems[-1].reason
    assert sum("flood.jsonl" in record.getMessage() for record in caplog.records) <= PROBLEMS_LISTED + 1
    assert state_bytes(tmp_path / "state") < 1024 * 1024
    assert (tmp_path / "state" / "reports" / "latest.json").stat().st_size < 64 * 1024
    assert f"{FLOOD_LINES:,} skipped" not in first.summary_line()
    assert f"{FLOOD_LINES} skipped" in first.summary_line()

    second = run_publish(tmp_path, max_object_bytes=10 * 1024 * 1024)
    assert second.problems == []
    assert sum(problem.count for problem in second.still_skipped) == FLOOD_LINES
    assert len(second.still_skipped) == PROBLEMS_LISTED + 1


def test_a_long_record_kept_by_an_older_run_is_summed_up_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digestpub.publish import ingest

    source = tmp_path / "source"
    write_good(source, 1)
    (source / DAY / "flood.jsonl").write_bytes(b"{broken\n" * 2_000)
    with monkeypatch.context() as before_the_cap:
        before_the_cap.setattr(ingest, "PROBLEMS_LISTED", 10_000)  # as runs kept every line
        first = run_publish(tmp_path)
    assert len(first.problems) == 2_000
    inflated = state_bytes(tmp_path / "state")

    second = run_publish(tmp_path)
    assert len(second.still_skipped) == PROBLEMS_LISTED + 1
    assert sum(problem.count for problem in second.still_skipped) == 2_000
    assert state_bytes(tmp_path / "state") < inflated / 10


# --- objects too large ---------------------------------------------------------------


def test_an_object_over_max_object_bytes_is_skipped_unread_until_it_shrinks(tmp_path: Path) -> None:
    source = tmp_path / "source"
    write_good(source, 1)
    big = write_json(source, f"{DAY}/big.json", summary(2, notes="x" * 5_000))

    first = run_publish(tmp_path, max_object_bytes=4_096)
    assert first.summaries_new == 1
    [problem] = first.problems
    assert (problem.key, problem.outcome) == (f"{DAY}/big.json", "skipped")
    assert f"{big.stat().st_size:,} bytes is over the limit of 4,096 (max_object_bytes)" == problem.reason

    # Its version is recorded: a later run neither reads it again nor forgets it.
    second = run_publish(tmp_path, max_object_bytes=4_096)
    assert second.objects_read == 0
    assert [problem.key for problem in second.still_skipped] == [f"{DAY}/big.json"]

    write_json(source, f"{DAY}/big.json", summary(2))
    third = run_publish(tmp_path, max_object_bytes=4_096)
    assert third.summaries_new == 1 and third.problems == [] and third.still_skipped == []
    assert feed_ids(tmp_path / "public") == {"2611.00001", "2611.00002"}


def test_a_jsonl_line_over_the_line_limit_is_skipped_and_the_others_published(tmp_path: Path) -> None:
    source = tmp_path / "source"
    lines = [summary(1), summary(2, notes="x" * (4 * 65_536)), summary(3)]
    (source / DAY).mkdir(parents=True)
    (source / DAY / "day.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    report = run_publish(tmp_path)
    assert feed_ids(tmp_path / "public") == {"2611.00001", "2611.00003"}
    [problem] = report.problems
    assert problem.line == 2
    assert "over the limit of 262,144 for one summary" in problem.reason


def test_the_folder_store_refuses_a_large_object_by_its_size(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    version = store.put("a.json", b"x" * 2_000)
    with pytest.raises(ObjectTooLarge) as raised:
        store.read("a.json", max_bytes=1_999)
    assert (raised.value.size, raised.value.version) == (2_000, version)
    assert store.read("a.json", max_bytes=2_000) == (b"x" * 2_000, version)


def test_the_s3_store_refuses_a_large_object_by_its_content_length(s3: Any, s3_bucket: str) -> None:
    store = open_store(f"s3://{s3_bucket}/summaries")
    version = store.put("a.json", b"x" * 2_000)
    with pytest.raises(ObjectTooLarge) as raised:
        store.read("a.json", max_bytes=1_999)
    assert (raised.value.size, raised.value.version) == (2_000, version)
    assert store.read("a.json", max_bytes=2_000) == (b"x" * 2_000, version)
    assert store.read("gone.json", max_bytes=10) is None


def test_an_s3_object_over_max_object_bytes_is_skipped(s3: Any, s3_bucket: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key=f"summaries/{DAY}/good.json", Body=json.dumps(summary(1)).encode())
    big = json.dumps(summary(2, notes="x" * 5_000)).encode()
    s3.put_object(Bucket=s3_bucket, Key=f"summaries/{DAY}/big.json", Body=big)
    stores = [open_store(f"s3://{s3_bucket}/{prefix}") for prefix in ("summaries", "site", "state")]
    report = publish(*stores, make_site(), PublishOptions(workers=1, max_object_bytes=4_096))
    assert [(problem.key, problem.reason) for problem in report.problems] == [
        (f"{DAY}/big.json", f"{len(big):,} bytes is over the limit of 4,096 (max_object_bytes)")
    ]
    assert report.summaries_new == 1


# --- tags keep their meaning -----------------------------------------------------------


def tag_pages(public: Path) -> set[str]:
    return {path.name for path in (public / "tags").iterdir() if (path / "index.html").is_file()}


def tag_feed_ids(public: Path, slug: str) -> set[str]:
    items = json.loads((public / "feeds" / "tags" / slug / "feed.json").read_text(encoding="utf-8"))["items"]
    return {item["id"].rsplit("/", 1)[-1] for item in items}


def write_tagged(source: Path, number: int, *tags: str) -> None:
    write_json(source, f"{DAY}/tagged-{number}.json", summary(number, tags=list(tags)))


def test_tags_told_apart_by_plus_and_sharp_get_pages_of_their_own(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for number, tag in enumerate(["C++", "C#", "C", "Вопрос", "vopros", "machine learning", "machine-learning"], 1):
        write_tagged(source, number, tag)
    report = run_publish(tmp_path)
    public = tmp_path / "public"
    assert tag_pages(public) == {"c-plus-plus", "c-sharp", "c", "vopros", "machine-learning"}
    assert tag_feed_ids(public, "c-plus-plus") == {"2611.00001"}
    assert tag_feed_ids(public, "vopros") == {"2611.00004", "2611.00005"}  # one tag, as the contract says
    # Any other pair that shares a slug is published together, and reported.
    assert [(problem.outcome, problem.key, problem.reason) for problem in report.problems] == [
        (
            "warning",
            f"{DAY}/tagged-7.json",
            "tag `machine-learning` shares the page tags/machine-learning/ with `machine learning`: "
            "rename one to keep them apart",
        )
    ]


def test_a_tag_published_by_the_old_rule_keeps_its_url(tmp_path: Path) -> None:
    from slugify import slugify

    from digestpub.publish import ingest

    source = tmp_path / "source"
    write_tagged(source, 1, "C++", "Вопрос")
    with pytest.MonkeyPatch.context() as old_rule:
        ingest._tag_name_and_slug.cache_clear()
        # Slugs as runs made them before + and # counted: C++, C# and C were all c.
        old_rule.setattr(ingest, "tag_slug", lambda tag: slugify(tag, max_length=64, word_boundary=True))
        run_publish(tmp_path)
    ingest._tag_name_and_slug.cache_clear()
    public = tmp_path / "public"
    assert tag_pages(public) == {"c", "vopros"}

    write_tagged(source, 2, "c++")
    write_tagged(source, 3, "C#")
    second = run_publish(tmp_path)
    assert second.problems == []
    assert tag_pages(public) == {"c", "c-sharp", "vopros"}
    assert tag_feed_ids(public, "c") == {"2611.00001", "2611.00002"}

    # The slug it keeps is still one tag's: another that takes it is reported.
    write_tagged(source, 4, "C")
    third = run_publish(tmp_path)
    assert [problem.reason for problem in third.problems] == [
        "tag `C` shares the page tags/c/ with `C++`: rename one to keep them apart"
    ]

    # A rebuild keeps the slugs the state it replaces published.
    rebuilt = run_publish(tmp_path, rebuild=True)
    assert [problem.outcome for problem in rebuilt.problems] == ["warning"]
    assert tag_feed_ids(public, "c") == {"2611.00001", "2611.00002", "2611.00004"}
    assert not (public / "tags" / "c-plus-plus").exists()
