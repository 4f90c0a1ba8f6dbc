"""The whole history, reachable: RFC 5005 archives, month pages and the sitemap, published into folders.

A history of 300 summaries over eight months with ``feed_size`` 10, read back
only the ways a feed reader, a person and a search engine would: by following
links.
"""

from __future__ import annotations

import functools
import shutil
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html

from digestpub.adapters.folder import FolderStore
from digestpub.publish import outputs as outputs_module
from digestpub.render.sitemap import render_sitemaps
from tests.conftest import html_problems, summary, write_json
from tests.integration.test_publish_folder import BASE_URL, RecordingStore, local_target, make_site, run

ATOM = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
MONTHS = [f"2026-{number:02d}" for number in range(4, 12)]
TAGS = ["mllm", "rag", "agents", "vqa"]
RARE = "redkii"
"""A tag of 4 summaries: its feed shows its whole history."""
FEED_SIZE = 10


def _document(number: int, **fields: Any) -> dict[str, Any]:
    month = MONTHS[number % len(MONTHS)]
    day = 1 + number % 28
    tags = [TAGS[number % len(TAGS)], TAGS[(number // len(TAGS)) % len(TAGS)]]
    if number % 75 == 0:
        tags.append("Редкий")
    published = f"{month}-{day:02d}T{number % 24:02d}:{number % 60:02d}:00+00:00"
    return summary(number, **{"tags": sorted(set(tags)), "published_at": published, **fields})


def _key(number: int) -> str:
    month = MONTHS[number % len(MONTHS)]
    return f"{month.replace('-', '/')}/{1 + number % 28:02d}/{number:05d}.json"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 summaries over eight months, published, then one edited: its title, tags and month change."""
    root = tmp_path_factory.mktemp("history")
    for number in range(1, 301):
        write_json(root / "source", _key(number), _document(number))
    site = make_site(feed_size=FEED_SIZE)
    run(root / "source", root / "dest", root / "state", site)
    edited = _document(
        7,
        title="Правка",
        tags=["rag", "Редкий"],
        published_at="2026-05-02T10:00:00+00:00",
        updated_at="2026-12-01T00:00:00Z",
    )
    write_json(root / "source", _key(7), edited)
    # A full scan: the edited object lies in an old month's folder.
    run(root / "source", root / "dest", root / "state", site, full_scan=True)
    return root


def _expected() -> dict[str, list[tuple[str, str]]]:
    """Per feed, its summaries (id, title) newest first, as read from the source independently."""
    documents = {number: _document(number) for number in range(1, 301)}
    documents[7] = {
        **documents[7],
        "title": "Правка",
        "tags": ["rag", "Редкий"],
        "published_at": "2026-05-02T10:00:00+00:00",
    }
    feeds: dict[str, list[tuple[datetime, str, str]]] = {}
    for document in documents.values():
        published = datetime.fromisoformat(document["published_at"]).astimezone(UTC)
        slugs = {"Редкий": RARE}
        for feed in ("_all", *(slugs.get(tag, tag) for tag in document["tags"])):
            feeds.setdefault(feed, []).append((published, document["id"], document["title"]))
    return {
        feed: [
            (f"tag:aidigest.example,2026:summary/{summary_id}", title)
            for _, summary_id, title in sorted(rows, reverse=True)
        ]
        for feed, rows in feeds.items()
    }


def _link(root: Any, rel: str, atom_namespace: str) -> str | None:
    found = [link.get("href") for link in root.iter(f"{atom_namespace}link") if link.get("rel") == rel]
    assert len(found) <= 1, rel
    return found[0] if found else None


def _walk(dest: Path, url: str, kind: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The entries (id, title) of a subscription feed and every archive behind it, and the documents walked."""
    entries: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    walked = []
    current: str | None = url
    while current is not None:
        assert current not in walked, f"prev-archive loops back to {current}"
        walked.append(current)
        path = local_target(dest, current)
        assert path is not None and path.is_file(), current
        data = path.read_bytes()
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, f"{current}: {parsed.get('bozo_exception')}"
        root = etree.fromstring(data)
        links_namespace = ATOM
        if kind == "rss":
            root = root.find("channel")
        is_archive = root.find(f"{FH}archive") is not None
        assert is_archive == (current != url), current
        if is_archive:
            assert _link(root, "current", links_namespace) == url
        # Entries newer documents already gave are their newest version (RFC 5005 §4).
        for entry in parsed.entries:
            if entry.id not in seen:
                seen[entry.id] = entry.title
                entries.append((entry.id, entry.title))
        current = _link(root, "prev-archive", links_namespace)
    return entries, walked


@pytest.mark.parametrize("kind", ["atom", "rss"])
def test_walking_prev_archive_from_every_feed_yields_its_whole_history_once_in_order(history: Path, kind: str) -> None:
    dest = history / "dest"
    expected = _expected()
    assert len(expected["_all"]) == 300 and len(expected[RARE]) == 5
    for feed, summaries in expected.items():
        folder = "feeds" if feed == "_all" else f"feeds/tags/{feed}"
        url = f"{BASE_URL}{folder}/{kind}.xml"
        entries, walked = _walk(dest, url, kind)
        # Each summary once, newest first: each document is newest first, and the
        # archives go back in time; an edited one in its newest version.
        assert entries == summaries, feed
        months = sorted({walked_url.split("/archive/")[1][:7] for walked_url in walked[1:]}, reverse=True)
        assert [walked_url.split("/archive/")[1][:7] for walked_url in walked[1:]] == months, feed
        subscription = etree.parse(str(local_target(dest, url))).getroot()
        complete = subscription.find(f".//{FH}complete") is not None
        assert complete == (len(summaries) <= FEED_SIZE), feed
        if complete:
            assert walked == [url], "a complete feed links no archive"


def test_each_archive_holds_its_month_and_links_its_neighbours(history: Path, atom_schema: Any) -> None:
    dest = history / "dest"
    expected = _expected()
    for feed, summaries in expected.items():
        folder = dest / ("feeds" if feed == "_all" else f"feeds/tags/{feed}") / "archive"
        months = sorted(path.name for path in folder.iterdir())
        ids_in_archives: list[str] = []
        for index, month in enumerate(months):
            for kind in ("atom", "rss"):
                path = folder / month / f"{kind}.xml"
                data = path.read_bytes()
                assert feedparser.parse(data).bozo == 0, path
                root = etree.fromstring(data)
                if kind == "atom":
                    assert atom_schema.validate(etree.ElementTree(root)), f"{path}: {atom_schema.error_log}"
                    ids_in_archives += [entry.findtext(f"{ATOM}id") for entry in root.iter(f"{ATOM}entry")]
                else:
                    root = root.find("channel")
                assert root.find(f"{FH}archive") is not None, path
                older = _link(root, "prev-archive", ATOM)
                newer = _link(root, "next-archive", ATOM)
                assert (older is None) == (index == 0), path
                assert (newer is None) == (index == len(months) - 1), path
                if older:
                    assert f"/archive/{months[index - 1]}/{kind}.xml" in older
                if newer:
                    assert f"/archive/{months[index + 1]}/{kind}.xml" in newer
        # The archives together hold the feed's history, each summary in exactly one month.
        assert sorted(ids_in_archives) == sorted(summary_id for summary_id, _ in summaries), feed


def test_following_links_from_the_index_reaches_every_card_and_month(history: Path) -> None:
    dest = history / "dest"
    start = BASE_URL
    queue, seen = deque([start]), {start}
    cards: set[str] = set()
    month_pages: dict[str, Any] = {}
    while queue:
        url = queue.popleft()
        path = local_target(dest, url)
        assert path is not None and path.is_file(), url
        page = lxml_html.fromstring(path.read_bytes())
        cards.update(link.get("href") for link in page.xpath("//article/h2/a"))
        if "/2026/" in url:
            month_pages[url] = page
        for href in page.xpath("//a/@href"):
            target = local_target(dest, href)
            if href not in seen and target is not None and href.endswith("/"):
                seen.add(href)
                queue.append(href)
    assert cards == {f"https://aidigest.example/papers/2611.{number:05d}" for number in range(1, 301)}
    # Every month page of every feed is reached, and links the months beside it.
    assert len(month_pages) == len(list(dest.glob("archive/2026/*/index.html"))) + len(
        list(dest.glob("tags/*/2026/*/index.html"))
    )
    for url, page in month_pages.items():
        feed_root = url.split("2026/")[0]
        months = sorted(key for key in month_pages if key.startswith(feed_root) and key.count("/") == url.count("/"))
        index = months.index(url)
        previous = page.xpath("//nav[@class='months']/a[@rel='prev']/@href")
        following = page.xpath("//nav[@class='months']/a[@rel='next']/@href")
        assert set(previous) == ({months[index - 1]} if index > 0 else set()), url
        assert set(following) == ({months[index + 1]} if index < len(months) - 1 else set()), url


def test_archive_indexes_count_each_month_and_the_sitemap_lists_every_page(history: Path) -> None:
    dest = history / "dest"
    index = lxml_html.fromstring((dest / "archive/index.html").read_bytes())
    counts = [int(count) for count in index.xpath("//ul[@class='months']//span[@class='count']/text()")]
    assert len(counts) == len(MONTHS) and sum(counts) == 300
    sitemap = etree.parse(str(dest / "sitemap.xml")).getroot()
    listed = {url.findtext(f"{SITEMAP}loc"): url.findtext(f"{SITEMAP}lastmod") for url in sitemap.iter(f"{SITEMAP}url")}
    # Every page made of summaries; the newsletter's archive lists issues, and is not publish's to date.
    pages = {
        BASE_URL + path.relative_to(dest).as_posix().removesuffix("index.html")
        for path in dest.rglob("index.html")
        if not path.relative_to(dest).as_posix().startswith("newsletter/")
    }
    assert set(listed) == pages
    assert all(datetime.fromisoformat(lastmod) <= datetime(2026, 12, 1, tzinfo=UTC) for lastmod in listed.values())
    assert (dest / "robots.txt").read_text().endswith(f"Sitemap: {BASE_URL}sitemap.xml\n")


def test_month_pages_and_archive_indexes_are_valid_html(history: Path) -> None:
    dest = history / "dest"
    pages = [
        dest / "archive/index.html",
        dest / "archive/2026/05/index.html",
        dest / f"tags/{RARE}/archive/index.html",
        *sorted(dest.glob(f"tags/{RARE}/2026/*/index.html")),
    ]
    assert html_problems(pages) == []


def test_an_edit_rewrites_the_months_it_was_and_is_in_and_nothing_older(tmp_path: Path) -> None:
    site = make_site(feed_size=FEED_SIZE)
    for number in range(1, 81):
        write_json(tmp_path / "source", _key(number), _document(number))
    run(tmp_path / "source", tmp_path / "dest", tmp_path / "state", site)
    before = {path: path.read_bytes() for path in (tmp_path / "dest").rglob("*") if path.is_file()}

    # Summary 8 moves from 2026-04 (tags agents, mllm) to 2026-06 (tag mllm only).
    moved = _document(8, tags=["mllm"], published_at="2026-06-03T10:00:00+00:00", updated_at="2026-12-01T00:00:00Z")
    write_json(tmp_path / "source", _key(8), moved)
    recorder = RecordingStore(FolderStore(tmp_path / "dest"))
    run(tmp_path / "source", recorder, tmp_path / "state", site, full_scan=True)
    archives = {path for path in recorder.puts if "/archive/20" in path or "/2026/" in path}
    months = {path.split("/archive/")[1][:7] if "/archive/20" in path else path.split("/")[-2] for path in archives}
    assert months <= {"2026-04", "2026-06", "04", "06"}, sorted(archives)
    assert {
        "feeds/archive/2026-04/atom.xml",
        "feeds/archive/2026-06/atom.xml",
        "tags/agents/2026/04/index.html",
    } <= archives
    assert not any("2026-05" in path or "2026/05" in path for path in recorder.puts)
    # Nothing new: no file is written, and every month's documents keep their bytes.
    again = RecordingStore(FolderStore(tmp_path / "dest"))
    assert run(tmp_path / "source", again, tmp_path / "state", site, full_scan=True).files_written == 0
    assert again.puts == []
    after = {path: path.read_bytes() for path in (tmp_path / "dest").rglob("*") if path.is_file()}
    unchanged_month = [path for path in before if "2026-07" in str(path) or "2026/07" in str(path)]
    assert unchanged_month and all(after[path] == before[path] for path in unchanged_month)


def test_a_month_that_empties_is_removed_and_its_neighbours_relink(tmp_path: Path) -> None:
    site = make_site(feed_size=2)
    source, dest, state = tmp_path / "source", tmp_path / "dest", tmp_path / "state"
    for number, month in ((1, "2026-09"), (2, "2026-10"), (3, "2026-11")):
        write_json(
            source,
            f"{month.replace('-', '/')}/01/{number}.json",
            summary(number, tags=["solo"], published_at=f"{month}-01T10:00:00+00:00"),
        )
    run(source, dest, state, site)
    assert (dest / "feeds/tags/solo/archive/2026-10/atom.xml").is_file()
    # The October summary moves to November: October is empty, so it goes, and the neighbours skip it.
    write_json(
        source,
        "2026/10/01/2.json",
        summary(2, tags=["solo"], published_at="2026-11-02T10:00:00+00:00", updated_at="2026-12-01T00:00:00Z"),
    )
    run(source, dest, state, site, full_scan=True)
    assert not (dest / "feeds/tags/solo/archive/2026-10/atom.xml").exists()
    assert not (dest / "tags/solo/2026/10/index.html").exists()
    # No empty folder is left to be served or listed as if the month were there.
    assert not (dest / "feeds/tags/solo/archive/2026-10").exists()
    assert not (dest / "tags/solo/2026/10").exists()
    assert (dest / "tags/solo/2026/11/index.html").is_file()
    september = etree.parse(str(dest / "feeds/tags/solo/archive/2026-09/atom.xml")).getroot()
    assert _link(september, "next-archive", ATOM) == f"{BASE_URL}feeds/tags/solo/archive/2026-11/atom.xml"
    november = etree.parse(str(dest / "feeds/tags/solo/archive/2026-11/atom.xml")).getroot()
    assert _link(november, "prev-archive", ATOM) == f"{BASE_URL}feeds/tags/solo/archive/2026-09/atom.xml"
    assert len(november.findall(f"{ATOM}entry")) == 2
    shutil.rmtree(tmp_path / "source")


def test_a_sitemap_index_that_shrinks_leaves_no_file_of_it_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, dest, state = tmp_path / "source", tmp_path / "dest", tmp_path / "state"
    site = make_site(feed_size=FEED_SIZE)
    for number in range(1, 9):
        write_json(source, f"2026/11/0{number}/{number}.json", summary(number, tags=[f"tag{number}"]))
    # Past a limit of 10 URLs the site's 27 pages take an index of three files.
    monkeypatch.setattr(outputs_module, "render_sitemaps", functools.partial(render_sitemaps, limit=10))
    run(source, dest, state, site)
    assert sorted(path.name for path in (dest / "sitemaps").iterdir()) == [f"sitemap-{n}.xml" for n in (1, 2, 3)]

    monkeypatch.setattr(outputs_module, "render_sitemaps", functools.partial(render_sitemaps, limit=20))
    write_json(source, "2026/11/09/9.json", summary(9, tags=["tag1"]))
    run(source, dest, state, site)
    assert sorted(path.name for path in (dest / "sitemaps").iterdir()) == ["sitemap-1.xml", "sitemap-2.xml"]
    index = etree.parse(str(dest / "sitemap.xml")).getroot()
    listed = [loc.text for loc in index.iter(f"{SITEMAP}loc")]
    assert listed == [f"{BASE_URL}sitemaps/sitemap-1.xml", f"{BASE_URL}sitemaps/sitemap-2.xml"]

    monkeypatch.setattr(outputs_module, "render_sitemaps", render_sitemaps)
    write_json(source, "2026/11/10/10.json", summary(10, tags=["tag2"]))
    run(source, dest, state, site)
    assert not (dest / "sitemaps").exists(), "the files of an index that is one sitemap again were left"
    assert etree.parse(str(dest / "sitemap.xml")).getroot().tag == f"{SITEMAP}urlset"
