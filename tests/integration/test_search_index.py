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
from digestpub.errors import SearchIndexError
from digestpub.model import PublishReport
from digestpub.publish import PublishOptions, publish, search, search_bundles
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
        [path for path in bundle if "/fragment/en_" in path], bundle.__getitem__
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
    assert "00000/pagefind.js" in bundle and "00000/pagefind-entry.json" in bundle
    assert not any(path.endswith("pagefind-ui.js") for path in bundle)
    listed = orjson.loads(bundle["bundles.json"])["bundles"]
    assert listed == [{"name": "00000", "languages": {"en": 5, "ru": len(records) - 5}}]


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
    assert {f"00000/{path}" for path in state_head["bundles"]["00000"]["files"]} == set(after) - {"bundles.json"}
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
        if "/fragment/" not in path or path == min(p for p in first if "/fragment/" in p)
    }
    assert types["00000/pagefind.js"] == "text/javascript; charset=utf-8"
    assert types["00000/pagefind-entry.json"] == types["bundles.json"] == "application/json"
    assert types["00000/wasm.ru.pagefind"] == "application/wasm"
    listing = s3.head_object(Bucket=s3_bucket, Key="site/pagefind/bundles.json")
    bundle_file = s3.head_object(Bucket=s3_bucket, Key="site/pagefind/00000/pagefind-entry.json")
    assert listing["CacheControl"] == OPTIONS.feed_cache_control
    assert bundle_file["CacheControl"] == OPTIONS.page_cache_control
    assert {types[path] for path in types if path.endswith((".pf_fragment", ".pf_index", ".pf_meta"))} == {
        "application/octet-stream"
    }

    _edit_and_delete(source)
    publish(*stores, SITE, OPTIONS)
    second = bundle()
    gone = set(first) - set(second)
    assert gone and all(path.startswith(("00000/fragment/", "00000/index/", "00000/pagefind.")) for path in gone)

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
    assert (tmp_path / "public" / "pagefind" / "00000" / "pagefind.js").is_file()
    assert (tmp_path / "public" / "pagefind" / "bundles.json").is_file()
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


class _RecordingStore(FolderStore):
    """A folder that remembers the keys each run writes and deletes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.written: list[str] = []
        self.deleted: list[str] = []

    def put(self, key: str, data: bytes, **options: Any) -> None:
        self.written.append(key)
        super().put(key, data, **options)

    def delete(self, key: str) -> None:
        self.deleted.append(key)
        super().delete(key)


@pytest.fixture
def small_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bundles of ten places (two shards of five): the examples make four of them."""
    monkeypatch.setattr(search, "_SHARD_POSITIONS", 5)
    monkeypatch.setattr(search, "_GROUP_SHARDS", 2)


def _groups(bundle: dict[str, bytes]) -> dict[str, set[str]]:
    """Each bundle's titles, by the name of its group."""
    titles: dict[str, set[str]] = {}
    for path in bundle:
        if path.endswith(".pf_fragment"):
            (record,) = index_records([path], bundle.__getitem__)
            titles.setdefault(path.split("/")[0], set()).add(record["meta"]["title"])
    return titles


def test_each_group_of_records_is_a_bundle_and_an_old_edit_builds_only_its_own(
    tmp_path: Path, small_groups: None
) -> None:
    source = _source(tmp_path)
    dest = _RecordingStore(tmp_path / "public")
    stores = FolderStore(source), dest, FolderStore(tmp_path / "state")
    first = publish(*stores, SITE, OPTIONS)
    bundle = _folder_bundle(tmp_path / "public")
    groups = _groups(bundle)
    assert sorted(groups) == ["00000", "00001", "00002", "00003"]
    assert sum(len(titles) for titles in groups.values()) == first.summaries_new
    listed = orjson.loads(bundle["bundles.json"])["bundles"]
    assert [item["name"] for item in listed] == ["00003", "00002", "00001", "00000"]
    assert sum(sum(item["languages"].values()) for item in listed) == first.summaries_new
    # The list goes last, once the bundles it names are all there.
    assert dest.written[-1] == "pagefind/bundles.json"
    documents = searched_summaries()
    (old,) = [group for group, titles in groups.items() if documents["edited"]["title"] in titles]
    assert old != "00003"

    dest.written.clear()
    write_json(source, f"{DAY}/edited.json", edited_version(documents["edited"]))
    edited = publish(*stores, SITE, OPTIONS)
    assert edited.summaries_updated == 1
    index_written = [key for key in dest.written if key.startswith("pagefind/")]
    assert index_written and all(key.startswith(f"pagefind/{old}/") for key in index_written)
    assert index_written[-1] == f"pagefind/{old}/pagefind-entry.json"
    after = _folder_bundle(tmp_path / "public")
    assert {path: data for path, data in after.items() if not path.startswith(old)} == {
        path: data for path, data in bundle.items() if not path.startswith(old)
    }
    assert edited_version(documents["edited"])["title"] in _groups(after)[old]

    # New summaries join the newest group, or start one: no older bundle is built again.
    dest.written.clear()
    for number in range(8):
        later = {**documents["found"], "id": f"2612.0000{number}", "title": f"Позже {number}",
                 "published_at": f"2026-12-01T10:0{number}:00+03:00"}  # fmt: skip
        write_json(source, f"2026/12/01/later{number}.json", later)
    publish(*stores, SITE, OPTIONS)
    newer = {key.split("/")[1] for key in dest.written if key.startswith("pagefind/0")}
    assert newer and min(newer) >= "00003"
    assert "pagefind/bundles.json" in dest.written and dest.written[-1] == "pagefind/bundles.json"

    dest.written.clear()
    nothing = publish(*stores, SITE, OPTIONS)
    assert nothing.search_files_written == 0 and not [key for key in dest.written if key.startswith("pagefind/")]


def test_a_group_whose_summaries_are_all_gone_loses_its_bundle(tmp_path: Path, small_groups: None) -> None:
    source = _source(tmp_path)
    for number in range(12):
        later = {**searched_summaries()["found"], "id": f"2612.0001{number:02d}", "title": f"Позже {number}",
                 "published_at": f"2026-12-02T10:{number:02d}:00+03:00"}  # fmt: skip
        write_json(source, f"2026/12/02/later{number}.json", later)
    _publish_folder(source, tmp_path)
    before = _groups(_folder_bundle(tmp_path / "public"))
    newest = max(before)
    assert before[newest] <= {f"Позже {number}" for number in range(12)}
    for title in before[newest]:
        (source / "2026" / "12" / "02" / f"later{title.split()[-1]}.json").unlink()
    _publish_folder(source, tmp_path)
    after = _folder_bundle(tmp_path / "public")
    assert newest not in _groups(after) and not (tmp_path / "public" / "pagefind" / newest).exists()
    listed = [item["name"] for item in orjson.loads(after["bundles.json"])["bundles"]]
    assert listed == sorted(_groups(after), reverse=True) and newest not in listed


def test_a_site_of_one_bundle_moves_to_groups_on_its_next_run(tmp_path: Path, small_groups: None) -> None:
    source = _source(tmp_path)
    _publish_folder(source, tmp_path)
    grouped = _folder_bundle(tmp_path / "public")
    # The layout of before: one bundle at the top of pagefind/, and a head that names its files.
    head_path = tmp_path / "state" / SEARCH_HEAD_KEY
    head = orjson.loads(head_path.read_bytes())
    folder = tmp_path / "public" / "pagefind"
    shutil.rmtree(folder)
    old_files = {"pagefind.js": "a", "pagefind-entry.json": "b", "fragment/ru_1a2b.pf_fragment": "c"}
    for path in old_files:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(b"old")
    old_head = {"shards": head["shards"], "built": "0" * 32, "built_at": head["built_at"], "files": old_files}
    head_path.write_bytes(orjson.dumps(old_head))

    moved = _publish_folder(source, tmp_path)
    assert moved.summaries_new == 0 and moved.search_failure is None
    assert _folder_bundle(tmp_path / "public") == grouped
    assert not (folder / "pagefind.js").exists() and not (folder / "fragment").exists()
    assert orjson.loads(head_path.read_bytes())["unmoved"] == {}
    again = _publish_folder(source, tmp_path)
    assert again.search_files_written == 0


def test_a_bundle_that_failed_is_built_by_the_next_run_and_the_others_are_kept(
    tmp_path: Path, small_groups: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = search_bundles.build_bundle
    calls: list[int] = []
    failing = True

    def fails_second(records: Any) -> dict[str, bytes]:
        nonlocal failing
        calls.append(len(records))
        if len(calls) == 2 and failing:
            raise SearchIndexError("Pagefind answered 'Error': out of memory")
        return real(records)

    monkeypatch.setattr(search_bundles, "build_bundle", fails_second)
    source = _source(tmp_path)
    failed = _publish_folder(source, tmp_path)
    assert failed.search_failure and "out of memory" in failed.search_failure
    head = orjson.loads((tmp_path / "state" / SEARCH_HEAD_KEY).read_bytes())
    assert sorted(head["bundles"]) == ["00000"]
    # The box searches what is there meanwhile.
    listed = orjson.loads((tmp_path / "public" / "pagefind" / "bundles.json").read_bytes())["bundles"]
    assert [item["name"] for item in listed] == ["00000"]

    calls.clear()
    failing = False
    retried = _publish_folder(source, tmp_path)
    assert retried.search_failure is None and retried.summaries_new == 0
    assert len(calls) == 3  # the three groups not built, not the first again
    assert sorted(_groups(_folder_bundle(tmp_path / "public"))) == ["00000", "00001", "00002", "00003"]
