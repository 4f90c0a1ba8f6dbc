"""The whole history, kept: archive pages that never change, corrections readers see, pages a phone can open.

A history of 1,000 summaries over six months, cut into pages of 20 with feeds of
10, then edited, retagged, deleted and joined by back-dated arrivals; read back
only the ways a feed reader, a person and a search engine would: by following links.
"""

from __future__ import annotations

import random
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html

from digestpub.adapters.folder_store import FolderStore
from tests.conftest import html_problems, summary, write_json
from tests.integration.test_publish_folder import BASE_URL, RecordingStore, local_target, make_site, run

ATOM = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"
AT = "{http://purl.org/atompub/tombstones/1.0}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
TAGS = ["mllm", "rag", "agents", "vqa"]
RARE = "redkii"
"""A tag of a handful of summaries: its feed holds its whole history."""
FEED_SIZE, PAGE_SIZE = 10, 20
HTML_PAGE_LIMIT = 500_000
START = datetime(2026, 5, 1, tzinfo=UTC)


def _document(number: int, **fields: Any) -> dict[str, Any]:
    published = START + timedelta(hours=number * 4.3)
    tags = sorted({TAGS[number % 4], TAGS[(number // 4) % 4]} | ({"Редкий"} if number % 150 == 0 else set()))
    return summary(number, **{"tags": tags, "published_at": published.isoformat(), **fields})


def _key(document: dict[str, Any], name: str) -> str:
    return f"{document['published_at'][:10].replace('-', '/')}/{name}.json"


class History:
    """The source as the test wrote it, and what each feed should hold: read independently of digestpub."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.source, self.dest, self.state = root / "source", root / "dest", root / "state"
        self.documents: dict[int, dict[str, Any]] = {}
        self.keys: dict[int, str] = {}

    def write(self, number: int, document: dict[str, Any]) -> None:
        key = self.keys.setdefault(number, _key(document, f"{number:05d}"))
        self.documents[number] = document
        write_json(self.source, key, document)

    def delete(self, number: int) -> None:
        (self.source / self.keys.pop(number)).unlink()
        del self.documents[number]

    def run(self, **options: Any) -> Any:
        options.setdefault("archive_page_size", PAGE_SIZE)
        return run(self.source, self.dest, self.state, make_site(feed_size=FEED_SIZE), full_scan=True, **options)

    def expected(self) -> dict[str, dict[str, str]]:
        """Per feed, the entry id of each summary it holds and its title."""
        feeds: dict[str, dict[str, str]] = {}
        for document in self.documents.values():
            slugs = {"Редкий": RARE}
            for feed in ("_all", *(slugs.get(tag, tag) for tag in document["tags"])):
                feeds.setdefault(feed, {})[f"tag:aidigest.example,2026:summary/{document['id']}"] = document["title"]
        return feeds


def _link(root: Any, rel: str) -> str | None:
    found = [link.get("href") for link in root.iter(f"{ATOM}link") if link.get("rel") == rel]
    assert len(found) <= 1, rel
    return found[0] if found else None


def _feed_url(feed: str, kind: str) -> str:
    folder = "feeds" if feed == "_all" else f"feeds/tags/{feed}"
    return f"{BASE_URL}{folder}/{kind}.xml"


def _walk(dest: Path, url: str, kind: str) -> tuple[dict[str, set[str]], list[str]]:
    """Every entry (id to the titles it has anywhere) of a subscription feed and the archives behind it."""
    entries: dict[str, set[str]] = {}
    walked: list[str] = []
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
        if kind == "rss":
            root = root.find("channel")
        is_archive = root.find(f"{FH}archive") is not None
        assert is_archive == (current != url), current
        if is_archive:
            assert _link(root, "current") == url
        for entry in parsed.entries:
            entries.setdefault(entry.id, set()).add(entry.title)
        current = _link(root, "prev-archive")
    return entries, walked


def _archives(dest: Path) -> dict[Path, set[str]]:
    """Every archive document (``fh:archive``) and the ids of its entries."""
    found = {}
    for path in dest.rglob("*.xml"):
        root = etree.parse(str(path)).getroot()
        if root.find(f".//{FH}archive") is not None:
            found[path] = {element.text for element in root.iter(f"{ATOM}id", "guid")} - {root.findtext(f"{ATOM}id")}
    return found


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    """1,000 summaries, then edits, retags, deletions and back-dated arrivals over later runs."""
    history = History(tmp_path_factory.mktemp("history"))
    for number in range(1, 1001):
        history.write(number, _document(number))
    history.run()
    chosen = random.Random(5005).sample(range(1, 1001), 40)
    edited = "2026-12-01T00:00:00Z"
    for number in chosen[:10]:  # edits: a new title
        history.write(number, {**history.documents[number], "title": f"Правка {number}", "updated_at": edited})
    for number in chosen[10:20]:  # retags
        history.write(number, {**history.documents[number], "tags": ["rag", "Редкий"], "updated_at": edited})
    for number in chosen[20:30]:
        history.delete(number)
    history.run()
    for number in range(1001, 1021):  # back-dated arrivals, in the first months
        history.write(number, _document(number, published_at=(START + timedelta(days=number - 1000)).isoformat()))
    history.run()
    return history


@pytest.mark.parametrize("kind", ["atom", "rss"])
def test_walking_prev_archive_from_every_feed_yields_each_summary_once_in_its_newest_version(
    history: History, kind: str
) -> None:
    expected = history.expected()
    assert len(expected["_all"]) == 1010
    for feed, summaries in expected.items():
        url = _feed_url(feed, kind)
        entries, walked = _walk(history.dest, url, kind)
        assert entries.keys() == summaries.keys(), feed
        # Wherever a summary appears, it is in its newest version: corrections rewrote its page.
        assert entries == {entry_id: {title} for entry_id, title in summaries.items()}, feed
        pages = [int(walked_url.split("/archive/")[1].split("/")[0]) for walked_url in walked[1:]]
        assert pages == list(range(len(pages), 0, -1)), f"{feed}: pages walked newest first, down to page 1"
        subscription = etree.parse(str(local_target(history.dest, url))).getroot()
        complete = subscription.find(f".//{FH}complete") is not None
        assert complete == (pages == []), feed
        if feed == RARE:
            assert complete, "a feed whose history fits says so"


def test_every_archive_document_is_a_valid_page_of_its_feed_linking_its_neighbours(
    history: History, atom_schema: Any
) -> None:
    dest = history.dest
    for folder in [dest / "feeds/archive", *sorted(dest.glob("feeds/tags/*/archive"))]:
        numbers = sorted(int(path.name) for path in folder.iterdir())
        assert numbers == list(range(1, len(numbers) + 1)), folder
        for number in numbers:
            for kind in ("atom", "rss"):
                path = folder / str(number) / f"{kind}.xml"
                root = etree.parse(str(path)).getroot()
                if kind == "atom":
                    assert atom_schema.validate(etree.ElementTree(root)), f"{path}: {atom_schema.error_log}"
                    assert len(root.findall(f"{ATOM}entry")) <= PAGE_SIZE
                else:
                    root = root.find("channel")
                assert root.find(f"{FH}archive") is not None, path
                older, newer = _link(root, "prev-archive"), _link(root, "next-archive")
                assert (older is None) == (number == 1), path
                if older:
                    assert older.endswith(f"/archive/{number - 1}/{kind}.xml")
                assert newer is not None and newer.endswith(f"/archive/{number + 1}/{kind}.xml"), path


def test_a_new_summary_changes_no_archive_documents_entries(history: History, tmp_path: Path) -> None:
    before = _archives(history.dest)
    history.write(2000, _document(2000, tags=["mllm", "Редкий"]))
    recorder = RecordingStore(FolderStore(history.dest))
    report = run(history.source, recorder, history.state, make_site(feed_size=FEED_SIZE), archive_page_size=PAGE_SIZE)
    assert report.summaries_new == 1
    after = _archives(history.dest)
    assert {path: after[path] for path in before} == before, "an archive document changed its entries"
    # One summary: its feeds, the open pages' web pages, the archive indexes and the sitemap.
    assert all("/archive/" not in path or path.endswith("index.html") for path in recorder.puts), recorder.puts
    assert len(recorder.puts) <= 20, recorder.puts
    nothing = RecordingStore(FolderStore(history.dest))
    again = run(history.source, nothing, history.state, make_site(feed_size=FEED_SIZE), archive_page_size=PAGE_SIZE)
    assert (again.files_written, nothing.puts) == (0, [])


def test_following_links_from_the_index_reaches_every_summary_within_the_size_bound(history: History) -> None:
    dest = history.dest
    queue, seen = deque([BASE_URL]), {BASE_URL}
    cards: set[str] = set()
    archive_pages: dict[str, Any] = {}
    to_come: set[str] = set()
    while queue:
        url = queue.popleft()
        path = local_target(dest, url)
        assert path is not None and path.is_file(), url
        data = path.read_bytes()
        assert len(data) <= HTML_PAGE_LIMIT, f"{url}: {len(data)} bytes"
        page = lxml_html.fromstring(data)
        cards.update(link.get("href") for link in page.xpath("//article/h2/a"))
        if "/archive/" in url and url.rstrip("/").split("/")[-1].isdigit():
            if page.xpath("//meta[@http-equiv='refresh']"):
                to_come.add(url)  # the page after the newest complete one: on the feed's page until complete
            else:
                archive_pages[url] = page
        for href in page.xpath("//a/@href"):
            href = href.split("#")[0]
            if href not in seen and local_target(dest, href) is not None and href.endswith("/"):
                seen.add(href)
                queue.append(href)
    assert cards == {document["url"] for document in history.documents.values()}
    on_disk = list(dest.glob("archive/*/index.html")) + list(dest.glob("tags/*/archive/*/index.html"))
    assert len(archive_pages) + len(to_come) == len(on_disk)
    for url, page in archive_pages.items():
        number = int(url.rstrip("/").split("/")[-1])
        base = url.rsplit(f"{number}/", 1)[0]
        previous = page.xpath("//nav[@class='pages']/a[@rel='prev']/@href")
        following = page.xpath("//nav[@class='pages']/a[@rel='next']/@href")
        assert set(previous) == ({f"{base}{number - 1}/"} if number > 1 else set()), url
        assert set(following) == {f"{base}{number + 1}/"}, url
        assert f"{base}{number + 1}/" in archive_pages.keys() | to_come, url


def test_archive_indexes_count_every_summary_by_month_and_the_sitemap_lists_every_page(history: History) -> None:
    dest = history.dest
    index = lxml_html.fromstring((dest / "archive/index.html").read_bytes())
    counted = sum(int(line.split()[0]) for line in index.xpath("//ul[@class='months']//span[@class='count']/text()"))
    # A bar a month, drawn in the page (no script): its height is to scale, its title says the count.
    bars = index.xpath("//svg[@class='chart']/rect/title/text()")
    assert len(bars) == len(index.xpath("//ul[@class='months']/li")) > 1
    assert sum(int(bar.rsplit(": ", 1)[1]) for bar in bars) == counted
    # The complete pages, by month; the open page's summaries are on the feed's page.
    listed = sum(int(count) for count in index.xpath("//ul[@class='pages']//span[@class='count']/text()"))
    front = lxml_html.fromstring((dest / "index.html").read_bytes())
    assert counted == listed and len(history.documents) - PAGE_SIZE < listed <= len(history.documents)
    assert len(front.xpath("//article")) >= len(history.documents) - listed
    sitemap = etree.parse(str(dest / "sitemap.xml")).getroot()
    mapped = {url.findtext(f"{SITEMAP}loc") for url in sitemap.iter(f"{SITEMAP}url")}
    pages = {
        BASE_URL + path.relative_to(dest).as_posix().removesuffix("index.html")
        for path in dest.rglob("index.html")
        if not path.relative_to(dest).as_posix().startswith("newsletter/") and b"http-equiv" not in path.read_bytes()
    }
    assert mapped == pages


def test_archive_pages_and_indexes_are_valid_html(history: History) -> None:
    dest = history.dest
    pages = [
        dest / "index.html",
        dest / "archive/index.html",
        dest / "archive/1/index.html",
        max(dest.glob("archive/*/index.html"), key=lambda path: int(path.parent.name)),  # the page to come
        dest / f"tags/{RARE}/archive/index.html",
    ]
    assert html_problems(pages) == []


def test_an_edit_and_a_deletion_on_the_oldest_page_reach_subscribers_for_a_while(
    tmp_path: Path, atom_schema: Any
) -> None:
    history = History(tmp_path)
    for number in range(1, 61):
        history.write(number, _document(number, tags=["mllm"]))
    history.run()
    page_one = history.dest / "feeds/tags/mllm/archive/1/atom.xml"
    first_ids = [element.text for element in etree.parse(str(page_one)).getroot().iter(f"{ATOM}id")][1:]
    assert len(first_ids) == PAGE_SIZE

    history.write(1, {**history.documents[1], "title": "Исправлено", "updated_at": "2026-12-01T00:00:00Z"})
    history.delete(2)
    recorder = RecordingStore(FolderStore(history.dest))
    # Corrections stay for two seconds here, so the test can see them go.
    run(
        history.source, recorder, history.state, make_site(feed_size=FEED_SIZE),
        full_scan=True, archive_page_size=PAGE_SIZE, correction_days=2 / 86_400,
    )  # fmt: skip
    archive_writes = sorted(path for path in recorder.puts if "/archive/" in path and not path.endswith("index.html"))
    assert archive_writes == [
        "feeds/archive/1/atom.xml", "feeds/archive/1/rss.xml",
        "feeds/tags/mllm/archive/1/atom.xml", "feeds/tags/mllm/archive/1/rss.xml",
    ], "only the page that holds them"  # fmt: skip
    for feed in ("mllm", "_all"):
        url = _feed_url(feed, "atom")
        root = etree.parse(str(local_target(history.dest, url))).getroot()
        assert atom_schema.validate(etree.ElementTree(root)), atom_schema.error_log
        titles = {entry.findtext(f"{ATOM}id"): entry.findtext(f"{ATOM}title") for entry in root.iter(f"{ATOM}entry")}
        edited, deleted = (f"tag:aidigest.example,2026:summary/2611.{number:05d}" for number in (1, 2))
        assert titles[edited] == "Исправлено"
        assert deleted not in titles
        assert [stone.get("ref") for stone in root.iter(f"{AT}deleted-entry")] == [deleted]
        rss = (history.dest / _feed_url(feed, "rss").removeprefix(BASE_URL)).read_text()
        assert "Исправлено" in rss and "deleted-entry" not in rss
    page = etree.parse(str(page_one)).getroot()
    assert [element.text for element in page.iter(f"{ATOM}id")][1:] != first_ids
    assert "Исправлено" in page_one.read_text()

    time.sleep(2.1)
    history.run()  # nothing new: the corrections are due to leave
    root = etree.parse(str(history.dest / "feeds/tags/mllm/atom.xml")).getroot()
    assert list(root.iter(f"{AT}deleted-entry")) == []
    assert edited not in {entry.findtext(f"{ATOM}id") for entry in root.iter(f"{ATOM}entry")}
    assert "Исправлено" in page_one.read_text(), "the page alone holds the truth"


def test_a_rebuild_keeps_every_page_where_it_was(tmp_path: Path) -> None:
    history = History(tmp_path)
    for number in range(1, 46):
        history.write(number, _document(number, tags=["mllm"]))
    history.run()
    # A back-dated arrival joins the newest page, not the one its date would give.
    history.write(100, _document(100, tags=["mllm"], published_at=START.isoformat()))
    history.run()
    before = _archives(history.dest)
    history.run(rebuild=True, archive_page_size=7)
    assert _archives(history.dest) == before, "a rebuild renumbered pages (or took the new page size)"


def test_pages_show_every_date_in_the_site_time_zone_and_open_with_the_ways_around(tmp_path: Path) -> None:
    source, dest, state = tmp_path / "source", tmp_path / "dest", tmp_path / "state"
    moments = ["2025-11-01T04:00:00+05:30", "2025-10-31T23:30:00+00:00", "2025-11-01T01:00:00-08:00"]
    for number, moment in enumerate(moments, start=1):
        write_json(source, f"2025/11/01/{number}.json", summary(number, tags=["mllm"], published_at=moment))
    run(source, dest, state, make_site(feed_size=FEED_SIZE, timezone="Europe/Moscow"), archive_page_size=1)
    index = lxml_html.fromstring((dest / "index.html").read_bytes())
    # 01:30, 02:30 and 12:00 in Moscow: one day, whatever offset each summary was written with.
    assert index.xpath("//article//time/text()") == ["2025-11-01"] * 3
    archive = lxml_html.fromstring((dest / "archive/index.html").read_bytes())
    assert [text.strip() for text in archive.xpath("//ul[@class='months']/li/a/text()")] == ["ноябрь 2025"]
    # Before any card: the tags, the archive, the feeds and the subscription form.
    body = (dest / "tags/mllm/index.html").read_text()
    # The tag's last twelve months, drawn in the page.
    trend = lxml_html.fromstring(body).xpath("//div[@class='trend']/svg/rect/title/text()")
    assert len(trend) == 12 and trend[-1] == "ноябрь 2025: 3"
    navigation = lxml_html.fromstring(body).xpath("//nav[@class='site']/a/@href")
    assert navigation == [f"{BASE_URL}#tags", f"{BASE_URL}tags/mllm/archive/", f"{BASE_URL}tags/mllm/#feeds",
                          f"{BASE_URL}tags/mllm/#subscribe"]  # fmt: skip
    assert body.index('class="site"') < body.index("<article")
    form = index.xpath("//form[contains(@action, '/subscribe')]//input[@type='checkbox']/@name")
    assert form == ["tag-mllm"], "the index's form offers the tags"


def test_a_time_zone_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not an IANA time zone"):
        make_site(timezone="Mars/Olympus")
