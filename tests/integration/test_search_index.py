"""The search index as publish writes it: to a folder and to S3 (moto), kept up to date by each run that
changes summaries, and left as it was by a run with nothing new; a failing Pagefind loses no feed."""

from __future__ import annotations

import shutil
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from digestpub.adapters.folder_store import FolderStore
from digestpub.app.locations import open_store
from digestpub.model import PublishReport
from digestpub.publish import PublishOptions, publish
from digestpub.publish.search import SEARCH_HEAD_KEY
from digestpub.site import Site
from tests.conftest import EXAMPLES, write_json
from tests.search_support import edited_version, found_titles, index_records, searched_summaries
from tests.serve_support import run_digestpub, serve_env

BASE_URL = "https://aidigest.example/"
DAY = "2026/11/22"
SITE = Site("Ай Дайджест", "Выжимка статей", "ru", BASE_URL, BASE_URL, search=True)
OPTIONS = PublishOptions(workers=1, lock_wait=timedelta(seconds=30))


def _source(root: Path) -> Path:
    source = root / "summaries"
    shutil.copytree(EXAMPLES, source)
    for name, document in searched_summaries().items():
        write_json(source, f"{DAY}/{name}.json", document)
    return source


def _edit_and_delete(source: Path) -> None:
    write_json(source, f"{DAY}/edited.json", edited_version(searched_summaries()["edited"]))
    (source / DAY / "deleted.json").unlink()


def _folder_bundle(dest: Path) -> dict[str, bytes]:
    folder = dest / "pagefind"
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def _publish_folder(source: Path, root: Path, site: Site = SITE) -> PublishReport:
    stores = FolderStore(source), FolderStore(root / "public"), FolderStore(root / "state")
    return publish(*stores, site, OPTIONS)


def test_every_summary_is_a_record_that_links_its_card(tmp_path: Path) -> None:
    source = _source(tmp_path)
    report = _publish_folder(source, tmp_path)
    assert report.search_failure is None and report.search_files_written > 0
    bundle = _folder_bundle(tmp_path / "public")
    records = index_records(bundle, bundle.__getitem__)
    assert len(records) == report.summaries_new
    # An English summary is in the English index, the rest in the Russian one.
    english = {record["meta"]["title"] for record in index_records(
        [path for path in bundle if path.startswith("fragment/en_")], bundle.__getitem__
    )}  # fmt: skip
    assert "GroundedChart: Do MLLMs Actually Read the Axes?" in english
    assert not english & {document["title"] for document in searched_summaries().values()}
    found = searched_summaries()["found"]
    (record,) = [record for record in records if record["meta"]["title"] == found["title"]]
    page_path, anchor = record["url"].split("#")
    assert page_path == "/archive/1/"
    # Page 1 is not complete: its page to come leads on, anchor and all, to the feed's page that holds the card.
    to_come = (tmp_path / "public" / "archive" / "1" / "index.html").read_text(encoding="utf-8")
    assert 'http-equiv="refresh"' in to_come and "location.hash" in to_come
    assert f'id="{anchor}"' in (tmp_path / "public" / "index.html").read_text(encoding="utf-8")
    assert "Ирина Лебедева" in record["content"] and "benchmark" in record["content"]
    # Only what the search box loads is published: not Pagefind's stock interfaces.
    assert "pagefind.js" in bundle and "pagefind-entry.json" in bundle and "pagefind-ui.js" not in bundle


def test_complete_pages_hold_the_cards_their_records_name(tmp_path: Path) -> None:
    source = _source(tmp_path)
    options = PublishOptions(workers=1, archive_page_size=5)
    publish(FolderStore(source), FolderStore(tmp_path / "public"), FolderStore(tmp_path / "state"), SITE, options)
    bundle = _folder_bundle(tmp_path / "public")
    records = index_records(bundle, bundle.__getitem__)
    complete = 0
    for record in records:
        page_path, anchor = record["url"].split("#")
        page = (tmp_path / "public" / page_path.strip("/") / "index.html").read_text(encoding="utf-8")
        if 'http-equiv="refresh"' in page:
            page = (tmp_path / "public" / "index.html").read_text(encoding="utf-8")
        else:
            complete += 1
        assert f'id="{anchor}"' in page, record["url"]
    assert complete >= 25


def test_an_edit_and_a_deletion_reach_the_index_and_stale_files_go(tmp_path: Path) -> None:
    source = _source(tmp_path)
    _publish_folder(source, tmp_path)
    before = _folder_bundle(tmp_path / "public")
    documents = searched_summaries()

    unchanged = _publish_folder(source, tmp_path)
    assert unchanged.search_files_written == 0
    assert _folder_bundle(tmp_path / "public") == before

    _edit_and_delete(source)
    report = _publish_folder(source, tmp_path)
    assert (report.summaries_updated, report.summaries_deleted) == (1, 1)
    after = _folder_bundle(tmp_path / "public")
    records = index_records(after, after.__getitem__)
    assert found_titles(records, "эллипсоидах") == {edited_version(documents["edited"])["title"]}
    assert found_titles(records, "гиперболоидах") == set()
    assert found_titles(records, "метаматериалах") == set()
    assert len(records) == len(index_records(before, before.__getitem__)) - 1
    # Fragments are named by their content: the old ones are deleted, the others were not written again.
    assert set(before) - set(after) and not any(path in after for path in set(before) - set(after))
    state_head = orjson.loads((tmp_path / "state" / SEARCH_HEAD_KEY).read_bytes())
    assert set(state_head["files"]) == set(after)
    assert report.search_files_written < len(after) / 2


def test_on_s3_the_index_has_its_content_types_and_loses_stale_files(s3_bucket: str, tmp_path: Path) -> None:
    source = _source(tmp_path)
    stores = FolderStore(source), open_store(f"s3://{s3_bucket}/site"), open_store(f"s3://{s3_bucket}/state")
    publish(*stores, SITE, OPTIONS)
    s3 = boto3.client("s3")

    def bundle() -> dict[str, Any]:
        listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="site/pagefind/", MaxKeys=1000)["Contents"]
        return {item["Key"].removeprefix("site/pagefind/"): item for item in listed}

    first = bundle()
    types = {
        path: s3.head_object(Bucket=s3_bucket, Key=f"site/pagefind/{path}")["ContentType"]
        for path in first
        if not path.startswith("fragment/") or path == min(p for p in first if p.startswith("fragment/"))
    }
    assert types["pagefind.js"] == "text/javascript; charset=utf-8"
    assert types["pagefind-entry.json"] == "application/json"
    assert types["wasm.ru.pagefind"] == "application/wasm"
    assert {types[path] for path in types if path.endswith((".pf_fragment", ".pf_index", ".pf_meta"))} == {
        "application/octet-stream"
    }

    _edit_and_delete(source)
    publish(*stores, SITE, OPTIONS)
    second = bundle()
    gone = set(first) - set(second)
    assert gone and all(path.startswith(("fragment/", "index/", "pagefind.")) for path in gone)

    def read(path: str) -> bytes:
        return bytes(s3.get_object(Bucket=s3_bucket, Key=f"site/pagefind/{path}")["Body"].read())

    records = index_records(second, read)
    assert found_titles(records, "эллипсоидах") and not found_titles(records, "метаматериалах")


def test_search_off_keeps_no_index_and_no_box(tmp_path: Path) -> None:
    source = _source(tmp_path)
    site = Site("Ай Дайджест", "Выжимка статей", "ru", BASE_URL, BASE_URL, search=False)
    report = _publish_folder(source, tmp_path, site)
    assert report.search_files_written == 0
    assert not (tmp_path / "public" / "pagefind").exists() and not (tmp_path / "state" / "search").exists()
    assert "<script" not in (tmp_path / "public" / "index.html").read_text(encoding="utf-8")


@pytest.fixture
def failing_pagefind(tmp_path: Path) -> Path:
    script = tmp_path / "bin" / "pagefind"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho 'pagefind: out of luck' >&2\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_a_failing_pagefind_loses_no_feed_and_the_next_run_builds_the_index(
    tmp_path: Path, failing_pagefind: Path
) -> None:
    env = serve_env(tmp_path, BASE_URL, source=str(_source(tmp_path)))
    failed = run_digestpub(tmp_path, {**env, "PAGEFIND_BINARY_PATH": str(failing_pagefind)}, "publish")
    assert failed.returncode == 1, failed.stderr
    assert "search index failed" in failed.stderr and "Pagefind" in failed.stderr
    assert "search index NOT updated" in failed.stdout
    assert (tmp_path / "public" / "feeds" / "rss.xml").is_file()
    assert not (tmp_path / "public" / "pagefind").exists()
    shown = run_digestpub(tmp_path, env, "report")
    assert "search index not updated" in shown.stdout

    missing = run_digestpub(tmp_path, {**env, "PAGEFIND_BINARY_PATH": str(tmp_path / "nowhere")}, "publish")
    assert missing.returncode == 1 and "cannot start the Pagefind binary" in missing.stderr

    # Nothing new, yet the index is built: the records changed since it last was.
    retried = run_digestpub(tmp_path, env, "publish")
    assert retried.returncode == 0, retried.stderr
    assert "0 new" in retried.stdout and "search index:" in retried.stdout
    assert (tmp_path / "public" / "pagefind" / "pagefind.js").is_file()
    again = run_digestpub(tmp_path, env, "publish")
    assert again.returncode == 0 and "search index" not in again.stdout


def test_lost_search_records_stop_no_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = _source(tmp_path)
    _publish_folder(source, tmp_path)
    for shard in (tmp_path / "state" / "search" / "records").iterdir():
        shard.unlink()
    write_json(source, f"{DAY}/later.json", {**searched_summaries()["found"], "id": "2611.08009", "title": "Позже"})
    report = _publish_folder(source, tmp_path)
    assert report.summaries_new == 1 and report.search_failure is None
    assert "search records 00000 are gone" in caplog.text
    bundle = _folder_bundle(tmp_path / "public")
    assert {record["meta"]["title"] for record in index_records(bundle, bundle.__getitem__)} == {"Позже"}
