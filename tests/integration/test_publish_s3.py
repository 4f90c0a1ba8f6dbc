"""Publishing with every store on S3, through moto in server mode (real HTTP on 127.0.0.1).

Source, destination and state are prefixes of one bucket, opened with
``open_store("s3://…")`` exactly as the CLI and the cloud function open them.
The tests check what lands in the bucket (keys, Content-Type, Cache-Control,
parseable feeds), how many PutObject requests a run really sends, the S3
adapter's conditional writes and paginated listing, incremental listing,
overlapping runs, and that storage failures surface as ``StorageError``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import boto3
import feedparser
import pytest
from botocore.config import Config

from digestpub.adapters.s3_store import S3Store
from digestpub.app.locations import open_store
from digestpub.app.wiring import SITE_PARTS
from digestpub.errors import PreconditionFailed, StorageError
from digestpub.model import PublishReport
from digestpub.publish import PublishOptions, publish
from digestpub.site import Site
from tests.conftest import EXAMPLES, summary

BASE_URL = "https://aidigest.example/"
FEED_CACHE = "public, max-age=60"
PAGE_CACHE = "public, max-age=600"
ARCHIVE_CACHE = "public, max-age=2592000"

RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_TYPE = "application/feed+json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"

# Slugs of the tags in examples/summaries (see its README).
EXAMPLE_SLUGS = {
    "mllm",
    "benchmark",
    "reasoning",
    "efficiency",
    "vqa",
    "rlhf",
    "diffusion",
    "agents",
    "moe",
    "rag",
    "multimodalnost",
    "speech",
    "robotics",
}
EXAMPLE_IDS = {
    "2611.03117", "2611.03342", "2611.03408", "2611.03521", "2611.03590",
    "2611.03877", "2611.03912", "2611.04005", "2611.04133", "2611.04210",
    "2611.04512", "2611.04577", "2611.04601", "2611.04688", "2611.04730",
    "2611.05014", "2611.05102", "2611.05166",
    "2611.05502", "2611.05618", "2611.05677", "2611.05740",
    "2611.06021", "2611.06105", "2611.06190",
}  # fmt: skip


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


# evening.jsonl adds 3 valid summaries with ids of its own (line 3 is broken).
EVENING_IDS = {
    json.loads(line)["id"]
    for line in (EXAMPLES / "2026/11/21/evening.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip() and _is_json(line)
}
ALL_EXAMPLE_IDS = EXAMPLE_IDS | EVENING_IDS


# helpers -------------------------------------------------------------------


def make_site() -> Site:
    return Site(
        title="Ай Дайджест",
        description="Свежая выжимка ml и AI статей - каждый день",
        lang="ru",
        base_url=BASE_URL,
        api_url=BASE_URL,
    )


def options(**overrides: Any) -> PublishOptions:
    values: dict[str, Any] = {
        "workers": 1,
        "lock_wait": timedelta(seconds=30),
        "feed_cache_control": FEED_CACHE,
        "page_cache_control": PAGE_CACHE,
        "archive_cache_control": ARCHIVE_CACHE,
        "site_parts": SITE_PARTS,
    }
    values.update(overrides)
    return PublishOptions(**values)


def client() -> Any:
    return boto3.client("s3", config=Config(max_pool_connections=32))


def put_json(s3: Any, bucket: str, key: str, document: Any) -> None:
    body = json.dumps(document, ensure_ascii=False).encode("utf-8")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def upload_examples(s3: Any, bucket: str, prefix: str = "summaries") -> int:
    """The whole examples tree (README included), keys relative to it."""
    files = [path for path in sorted(EXAMPLES.rglob("*")) if path.is_file()]
    for path in files:
        key = f"{prefix}/{path.relative_to(EXAMPLES).as_posix()}"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return len(files)


def put_many(s3: Any, bucket: str, keys: list[str]) -> None:
    """Tiny objects, many at once."""
    with ThreadPoolExecutor(24) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))


class Stores:
    """One run's three stores, opened the way the CLI opens them."""

    def __init__(self, bucket: str) -> None:
        self.source = open_store(f"s3://{bucket}/summaries")
        self.dest = open_store(f"s3://{bucket}/site")
        self.state = open_store(f"s3://{bucket}/state")

    def publish(self, **overrides: Any) -> PublishReport:
        return publish(self.source, self.dest, self.state, make_site(), options(**overrides))


class PutCounter:
    """Records the Key of every PutObject call a store's boto3 client makes."""

    def __init__(self, store: Any, prefix: str) -> None:
        assert isinstance(store, S3Store)
        self.prefix = prefix
        self.keys: list[str] = []
        self._lock = threading.Lock()
        store.client.meta.events.register("before-parameter-build.s3.PutObject", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        key = params.get("Key", "")
        if key.startswith(self.prefix):
            with self._lock:
                self.keys.append(key.removeprefix(self.prefix))

    def take(self) -> list[str]:
        with self._lock:
            keys, self.keys = self.keys, []
        return keys


def feed_files(folder: str) -> set[str]:
    return {f"{folder}/rss.xml", f"{folder}/atom.xml", f"{folder}/feed.json"}


def all_feed_files() -> set[str]:
    return feed_files("feeds") | {"index.html"}


def tag_files(slug: str) -> set[str]:
    return feed_files(f"feeds/tags/{slug}") | {f"tags/{slug}/index.html"}


def archive_index(slug: str | None) -> set[str]:
    """A feed's archive index: it changes only as pages complete (none of 50 does here), or a feed appears."""
    return {"archive/index.html" if slug is None else f"tags/{slug}/archive/index.html"}


def get(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def json_feed_ids(s3: Any, bucket: str, key: str = "site/feeds/feed.json") -> list[str]:
    document = json.loads(get(s3, bucket, key))
    return [item["id"] for item in document["items"]]


def entry_id(summary_id: str) -> str:
    return make_site().entry_id(summary_id)


@pytest.fixture
def s3(s3_bucket: str) -> Any:
    return client()


@pytest.fixture
def published(s3: Any, s3_bucket: str) -> Iterator[tuple[Stores, PublishReport]]:
    """Examples uploaded and published once; yields the stores and the first report."""
    upload_examples(s3, s3_bucket)
    stores = Stores(s3_bucket)
    report = stores.publish()
    assert report.summaries_new == len(ALL_EXAMPLE_IDS)
    yield stores, report


# 1. a full run onto S3 ----------------------------------------------------


def test_full_run_writes_every_feed_and_page_with_headers(s3: Any, s3_bucket: str) -> None:
    uploaded = upload_examples(s3, s3_bucket)
    assert uploaded == 29  # 28 summary files and the README
    extra = [
        ("2026/11/23/extra-1.json", summary(90001, tags=["mllm", "agents"])),
        ("2026/11/23/extra-2.json", summary(90002, tags=["Квантование"])),
    ]
    for key, document in extra:
        put_json(s3, s3_bucket, f"summaries/{key}", document)

    report = Stores(s3_bucket).publish()

    assert report.full_scan is True
    assert report.summaries_new == len(ALL_EXAMPLE_IDS) + 2
    assert report.skipped == 2  # broken.json and line 3 of evening.jsonl
    slugs = EXAMPLE_SLUGS | {"kvantovanie"}

    keys = {item["Key"] for page in client().get_paginator("list_objects_v2").paginate(
        Bucket=s3_bucket, Prefix="site/") for item in page.get("Contents", [])}  # fmt: skip
    expected = {f"site/{path}" for path in all_feed_files() | archive_index(None) | {"feeds/tags.opml"}}
    expected |= {"site/sitemap.xml", "site/robots.txt", "site/newsletter/index.html", "site/feeds/newsletter.xml"}
    for slug in slugs:
        expected |= {f"site/{path}" for path in tag_files(slug) | archive_index(slug)}
    assert keys == expected
    assert report.files_written == len(expected)

    types = {"rss.xml": RSS_TYPE, "atom.xml": ATOM_TYPE, "feed.json": JSON_TYPE}
    for key in sorted(expected):
        head = s3.head_object(Bucket=s3_bucket, Key=key)
        name = key.rsplit("/", 1)[-1]
        if name in types:
            assert head["ContentType"] == types[name], key
            assert head["CacheControl"] == FEED_CACHE, key
        elif name == "index.html":
            assert head["ContentType"] == HTML_TYPE, key
            assert head["CacheControl"] == PAGE_CACHE, key
        elif name == "newsletter.xml":  # the newsletter's archive, an Atom feed
            assert head["ContentType"] == ATOM_TYPE, key
            assert head["CacheControl"] == FEED_CACHE, key
        elif name == "sitemap.xml":
            assert head["ContentType"] == "application/xml; charset=utf-8", key
        elif name == "robots.txt":
            assert head["ContentType"] == "text/plain; charset=utf-8", key
            assert get(s3, s3_bucket, key).decode().endswith(f"Sitemap: {BASE_URL}sitemap.xml\n")
        else:
            assert key == "site/feeds/tags.opml"
            assert head["ContentType"].startswith("text/x-opml"), key
            assert head["CacheControl"], key

    for folder in ["site/feeds", *(f"site/feeds/tags/{slug}" for slug in sorted(slugs))]:
        for name in ("rss.xml", "atom.xml"):
            parsed = feedparser.parse(get(s3, s3_bucket, f"{folder}/{name}"))
            assert not parsed.bozo, (folder, name, parsed.get("bozo_exception"))
            assert parsed.entries, (folder, name)
        document = json.loads(get(s3, s3_bucket, f"{folder}/feed.json"))
        assert document["version"] == "https://jsonfeed.org/version/1.1"
        assert document["items"], folder

    all_ids = json_feed_ids(s3, s3_bucket)
    assert set(all_ids) == {entry_id(i) for i in ALL_EXAMPLE_IDS | {"2611.90001", "2611.90002"}}
    atom = feedparser.parse(get(s3, s3_bucket, "site/feeds/atom.xml"))
    assert {entry.id for entry in atom.entries} == set(all_ids)
    edited = next(entry for entry in atom.entries if entry.id == entry_id("2611.03877"))
    assert edited.title.endswith("(v2)")

    # 2611.04601 is tagged "MLLM": the same feed as "mllm".
    mllm = json_feed_ids(s3, s3_bucket, "site/feeds/tags/mllm/feed.json")
    assert entry_id("2611.04601") in mllm and entry_id("2611.90001") in mllm
    assert json_feed_ids(s3, s3_bucket, "site/feeds/tags/kvantovanie/feed.json") == [entry_id("2611.90002")]
    page = get(s3, s3_bucket, "site/tags/mllm/index.html").decode()
    assert "Подборка статей по тегу" in page

    opml = get(s3, s3_bucket, "site/feeds/tags.opml").decode()
    for slug in slugs:
        assert f"{BASE_URL}feeds/tags/{slug}/atom.xml" in opml


# 2. only what changed is uploaded ---------------------------------------


def test_put_requests_are_exactly_the_changed_files(s3: Any, s3_bucket: str) -> None:
    upload_examples(s3, s3_bucket)
    stores = Stores(s3_bucket)
    puts = PutCounter(stores.dest, "site/")
    first = stores.publish()
    written = puts.take()
    assert len(written) == len(set(written)) == first.files_written > 0

    # Nothing new: not one PUT under site/.
    again = stores.publish()
    assert again.summaries_new == again.summaries_updated == 0
    assert puts.take() == []
    assert again.files_written == 0

    # One new summary with a tag no summary had: the OPML list gains that feed.
    put_json(s3, s3_bucket, "summaries/2026/11/25/one.json",
             summary(91001, tags=["Роботы-пылесосы"], published_at="2026-11-25T09:00:00+03:00"))  # fmt: skip
    report = stores.publish()
    assert report.summaries_new == 1
    slug = "roboty-pylesosy"
    everything = all_feed_files()
    assert sorted(puts.take()) == sorted(
        everything | tag_files(slug) | archive_index(slug) | {"feeds/tags.opml", "sitemap.xml"}
    )
    assert f"feeds/tags/{slug}/atom.xml" in get(s3, s3_bucket, "site/feeds/tags.opml").decode()

    # One new summary with an existing tag, older than the newest: no OPML.
    put_json(s3, s3_bucket, "summaries/2026/11/25/two.json",
             summary(91002, tags=["moe"], published_at="2026-11-24T07:00:00+03:00"))  # fmt: skip
    report = stores.publish()
    assert report.summaries_new == 1
    # The newest of "moe": the lastmod of its pages in the sitemap moves.
    assert sorted(puts.take()) == sorted(everything | tag_files("moe") | {"sitemap.xml"})

    # One new summary with an existing tag, the newest of all (the everyday case):
    # the list of tag feeds is the same, so feeds/tags.opml is not uploaded either.
    put_json(s3, s3_bucket, "summaries/2026/11/25/three.json",
             summary(91003, tags=["reasoning"], published_at="2026-11-25T12:00:00+03:00"))  # fmt: skip
    report = stores.publish()
    assert report.summaries_new == 1
    assert sorted(puts.take()) == sorted(everything | tag_files("reasoning") | {"sitemap.xml"})


def test_a_page_is_put_once_when_it_fills_and_again_only_to_correct_it(s3: Any, s3_bucket: str) -> None:
    upload_examples(s3, s3_bucket)
    stores = Stores(s3_bucket)
    puts = PutCounter(stores.dest, "site/")
    stores.publish(archive_page_size=5)  # 28 summaries: pages 1 to 5 of everything are complete
    puts.take()
    for number in (1, 2, 3, 4, 5):
        head = s3.head_object(Bucket=s3_bucket, Key=f"site/feeds/archive/{number}/atom.xml")
        assert head["CacheControl"] == ARCHIVE_CACHE
    # The page to come: on the feed's page until it is complete.
    assert s3.head_object(Bucket=s3_bucket, Key="site/archive/6/index.html")["CacheControl"] == PAGE_CACHE

    # Two new summaries of a tag of one: everything's open page fills (page 6), and no tag's page does.
    for number in (91101, 91102):
        put_json(s3, s3_bucket, f"summaries/2026/11/25/{number}.json",
                 summary(number, tags=["speech"], published_at="2026-11-25T09:00:00+03:00"))  # fmt: skip
    assert stores.publish().summaries_new == 2
    written = puts.take()
    archived = sorted(key for key in written if "/archive/" in key and not key.endswith("index.html"))
    assert archived == ["feeds/archive/6/atom.xml", "feeds/archive/6/rss.xml"]
    assert s3.head_object(Bucket=s3_bucket, Key="site/feeds/archive/6/atom.xml")["CacheControl"] == ARCHIVE_CACHE
    assert "archive/7/index.html" in written, "the page to come after the one completed"
    assert len(written) <= 16, written

    # An edit of a summary on page 1 rewrites page 1 and no other page.
    oldest = "summaries/2026/11/18/2611.03117.json"
    document = json.loads(get(s3, s3_bucket, oldest))
    document.update(title="Исправленный заголовок", updated_at="2026-11-30T10:00:00Z")
    put_json(s3, s3_bucket, oldest, document)
    assert stores.publish(keys=("2026/11/18/2611.03117.json",)).summaries_updated == 1
    written = puts.take()
    archived = sorted(key for key in written if "/archive/" in key and not key.endswith("index.html"))
    assert {key.split("/archive/")[1].split("/")[0] for key in archived} == {"1"}, archived
    assert "Исправленный заголовок" in get(s3, s3_bucket, "site/feeds/archive/1/atom.xml").decode()
    assert "Исправленный заголовок" in get(s3, s3_bucket, "site/feeds/atom.xml").decode(), "a correction is news"

    assert stores.publish().files_written == 0
    assert puts.take() == []


# 3. conditional writes on S3 ---------------------------------------------


def test_conditional_writes(s3_bucket: str) -> None:
    store = S3Store(s3_bucket, "cond")
    assert store.read("missing.json") is None

    first = store.put("a.json", b'{"v": 1}', content_type="application/json")
    assert store.read("a.json") == (b'{"v": 1}', first)

    with pytest.raises(PreconditionFailed):
        store.put("a.json", b'{"v": 2}', if_none_match=True)
    assert store.read("a.json") == (b'{"v": 1}', first)

    created = store.put("b.json", b"b", if_none_match=True)
    assert store.read("b.json") == (b"b", created)

    second = store.put("a.json", b'{"v": 2}', if_match=first)
    assert second != first
    assert store.read("a.json") == (b'{"v": 2}', second)

    with pytest.raises(PreconditionFailed):
        store.put("a.json", b'{"v": 3}', if_match=first)  # stale
    assert store.read("a.json") == (b'{"v": 2}', second)

    third = store.put("a.json", b'{"v": 3}', if_match=second)
    assert third not in (first, second)
    assert store.read("a.json") == (b'{"v": 3}', third)


# 4. paginated listing ------------------------------------------------------


def test_list_after_a_key_over_many_pages(s3: Any, s3_bucket: str) -> None:
    keys = [f"k/{number:05d}.json" for number in range(1100)]
    put_many(s3, s3_bucket, [f"many/{key}" for key in keys])
    # Neighbours that must not show up: a sibling prefix and a parent-level key.
    put_many(s3, s3_bucket, ["many-more/k/00999.json", "manyk/00500.json", "k/00700.json"])

    store = S3Store(s3_bucket, "many")
    calls: list[dict[str, Any]] = []
    store.client.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2", lambda params, **_: calls.append(dict(params))
    )

    listed = [info.key for info in store.list(start_after="k/00042.json")]
    assert listed == keys[43:]
    assert len(listed) == 1057
    assert len(calls) >= 2, "a listing of more than 1,000 keys takes more than one page"

    everything = list(store.list())
    assert [info.key for info in everything] == keys
    assert all(info.size == 1 and info.etag and '"' not in info.etag for info in everything)

    assert [info.key for info in store.list(prefix="k/010")] == keys[1000:1100]
    assert [info.key for info in store.list(start_after="k/01098.json")] == ["k/01099.json"]
    assert list(store.list(start_after="k/01099.json")) == []


# 5. incremental listing ----------------------------------------------------


def test_new_day_folder_is_picked_up_incrementally(
    s3: Any, s3_bucket: str, published: tuple[Stores, PublishReport]
) -> None:
    stores, first = published
    assert first.full_scan is True

    put_json(s3, s3_bucket, "summaries/2026/11/25/fresh.json",
             summary(92001, tags=["rag"], published_at="2026-11-25T11:00:00+03:00"))  # fmt: skip
    report = Stores(s3_bucket).publish()

    assert report.full_scan is False
    assert report.summaries_new == 1
    assert report.objects_read == 1
    assert json_feed_ids(s3, s3_bucket)[0] == entry_id("2611.92001")
    assert entry_id("2611.92001") in json_feed_ids(s3, s3_bucket, "site/feeds/tags/rag/feed.json")

    head = json.loads(get(s3, s3_bucket, "state/catalog/head.json"))
    assert head["cursor"] == "2026/11/25"
    assert head["total"] == len(ALL_EXAMPLE_IDS) + 1
    latest = json.loads(get(s3, s3_bucket, "state/reports/latest.json"))
    assert latest["run_id"] == report.run_id
    assert latest["summaries_new"] == 1
    assert latest["full_scan"] is False
    # The lock is released after every run.
    assert stores.state.read("lock.json") is None


def test_state_files_no_head_names_are_swept_by_the_daily_full_scan(
    s3: Any, s3_bucket: str, published: tuple[Stores, PublishReport]
) -> None:
    def state_files() -> set[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket, Prefix="state/catalog/")
        keys = {item["Key"].removeprefix("state/") for page in pages for item in page.get("Contents", [])}
        return {key for key in keys if not key.startswith("catalog/log/")}

    head = json.loads(get(s3, s3_bucket, "state/catalog/head.json"))
    named = {"catalog/head.json", *head["parts"].values()}
    assert state_files() == named
    # What a run stopped before its head leaves: parts under its own run's name.
    strays = {"catalog/ids/0a3.0123456789ab.json", "catalog/windows.0123456789ab.jsonl"}
    for key in strays:
        s3.put_object(Bucket=s3_bucket, Key=f"state/{key}", Body=b"{}")
    assert Stores(s3_bucket).publish().full_scan is False
    assert state_files() == named | strays
    report = Stores(s3_bucket).publish(full_scan=True)
    assert report.full_scan and report.files_written == 0
    assert state_files() == named


# 6. overlapping runs ---------------------------------------------------------


def test_concurrent_runs_on_one_state_lose_nothing(
    s3: Any, s3_bucket: str, published: tuple[Stores, PublishReport]
) -> None:
    runs = [Stores(s3_bucket), Stores(s3_bucket)]  # boto3 clients are made in this thread
    documents = [
        ("summaries/2026/11/25/left.json", summary(93001, tags=["speech"], published_at="2026-11-25T08:00:00+03:00")),
        ("summaries/2026/11/26/right.json", summary(93002, tags=["vqa"], published_at="2026-11-26T08:00:00+03:00")),
    ]
    start = threading.Barrier(2)
    reports: list[PublishReport | None] = [None, None]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            key, document = documents[index]
            put_json(s3, s3_bucket, key, document)
            start.wait(timeout=10)
            reports[index] = runs[index].publish()
        except BaseException as error:  # handed to the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert all(report is not None for report in reports)
    assert sum(report.summaries_new for report in reports if report) == 2

    third = Stores(s3_bucket).publish()
    assert third.summaries_new == third.summaries_updated == 0
    assert third.files_written == 0

    ids = json_feed_ids(s3, s3_bucket)
    assert ids[:2] == [entry_id("2611.93002"), entry_id("2611.93001")]
    assert set(ids) == {entry_id(i) for i in ALL_EXAMPLE_IDS | {"2611.93001", "2611.93002"}}
    assert entry_id("2611.93001") in json_feed_ids(s3, s3_bucket, "site/feeds/tags/speech/feed.json")
    assert entry_id("2611.93002") in json_feed_ids(s3, s3_bucket, "site/feeds/tags/vqa/feed.json")
    head = json.loads(get(s3, s3_bucket, "state/catalog/head.json"))
    assert head["total"] == len(ALL_EXAMPLE_IDS) + 2
    assert head["cursor"] == "2026/11/26"
    assert runs[0].state.read("lock.json") is None


# 7. storage failures ---------------------------------------------------------


def test_missing_bucket_raises_storage_error(s3: Any, s3_bucket: str) -> None:
    upload_examples(s3, s3_bucket)
    missing = f"{s3_bucket}-absent"
    source = open_store(f"s3://{s3_bucket}/summaries")
    state = open_store(f"s3://{s3_bucket}/state")

    with pytest.raises(StorageError) as raised:
        publish(source, open_store(f"s3://{missing}/site"), state, make_site(), options())
    assert not isinstance(raised.value, PreconditionFailed)
    assert missing in str(raised.value)
    assert state.read("lock.json") is None, "a failed run releases the lock"

    # Nothing was committed: a run to a working destination publishes everything.
    report = publish(source, open_store(f"s3://{s3_bucket}/site"), state, make_site(), options())
    assert report.summaries_new == len(ALL_EXAMPLE_IDS)
    assert set(json_feed_ids(s3, s3_bucket)) == {entry_id(i) for i in ALL_EXAMPLE_IDS}

    absent = S3Store(missing, "x")
    with pytest.raises(StorageError):
        absent.read("a.json")
    with pytest.raises(StorageError):
        list(absent.list())
    with pytest.raises(StorageError):
        absent.put("a.json", b"a")
    with pytest.raises(StorageError):
        publish(open_store(f"s3://{missing}/summaries"), open_store(f"s3://{s3_bucket}/site2"),
                open_store(f"s3://{s3_bucket}/state2"), make_site(), options())  # fmt: skip
