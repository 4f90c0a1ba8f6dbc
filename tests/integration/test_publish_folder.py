"""The publish use case end to end, between local folders, on the example summaries.

What subscribers and the site rely on (CONTRACT §1-§2): valid feeds in three
formats, the right items in the right order per tag, stable entry ids across edits,
idempotent runs that rewrite only what changed, safe concurrent runs, and nothing
written outside the destination.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html

from digestpub.adapters.folder_store import FolderStore
from digestpub.app.locations import open_store
from digestpub.app.wiring import SITE_PARTS
from digestpub.errors import StateLocked, StorageError
from digestpub.model import ObjectInfo, PublishReport
from digestpub.ports import ObjectStore
from digestpub.publish import PublishOptions, publish
from digestpub.settings import Settings
from digestpub.site import Site
from digestpub.state.lock import StateLock
from digestpub.state.parts import STATE_FORMAT
from tests.conftest import EXAMPLES, REPO, folder_state_part, html_problems, summary, write_json

BASE_URL = "https://aidigest.example/"
SITE_TITLE = "Ай Дайджест"
TAGLINE = "Свежая выжимка ml и AI статей - каждый день"
ALL_FEED_FILES = ("feeds/rss.xml", "feeds/atom.xml", "feeds/feed.json")
OPML = "feeds/tags.opml"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

# The example data's tag counts per distinct id, from examples/summaries/README.md.
EXAMPLE_TAG_COUNTS = {
    "mllm": 15,
    "benchmark": 11,
    "reasoning": 6,
    "efficiency": 5,
    "vqa": 4,
    "rlhf": 3,
    "diffusion": 3,
    "agents": 3,
    "moe": 2,
    "rag": 2,
    "multimodalnost": 2,
    "speech": 1,
    "robotics": 1,
}
# Tags that are not plain ASCII words, and the slug the contract promises for them.
KNOWN_SLUGS = {"Мультимодальность": "multimodalnost", "MLLM": "mllm"}
EDITED_ID = "2611.03877"
EDITED_KEY = "2026/11/24/2611.03877.json"


def entry_id(summary_id: str) -> str:
    return f"tag:aidigest.example,2026:summary/{summary_id}"


def make_site(**settings: Any) -> Site:
    return Settings.load(base_url=BASE_URL, **settings).site()


def run(
    source: Path | ObjectStore,
    dest: Path | ObjectStore,
    state: Path | ObjectStore,
    site: Site | None = None,
    **options: Any,
) -> PublishReport:
    def store(where: Path | ObjectStore) -> ObjectStore:
        return open_store(str(where)) if isinstance(where, Path) else where

    options.setdefault("workers", 1)
    options.setdefault("site_parts", SITE_PARTS)  # the site as the command publishes it
    return publish(store(source), store(dest), store(state), site or make_site(), PublishOptions(**options))


# The example data, read independently of digestpub ------------------------------


@dataclass(frozen=True)
class Expected:
    id: str
    title: str
    published_at: datetime
    version: datetime
    slugs: tuple[str, ...]
    lang: str
    authors: tuple[str, ...]


def _slug(tag: str) -> str:
    if tag in KNOWN_SLUGS:
        return KNOWN_SLUGS[tag]
    assert re.fullmatch(r"[a-z0-9-]+", tag), f"the oracle does not know the slug of {tag!r}"
    return tag


def expected_examples(skip_keys: tuple[str, ...] = ()) -> dict[str, Expected]:
    """The newest valid version of each example summary, by id."""
    found: dict[str, Expected] = {}
    for path in sorted(EXAMPLES.rglob("*.json*")):
        key = path.relative_to(EXAMPLES).as_posix()
        if key in skip_keys:
            continue
        text = path.read_text(encoding="utf-8")
        documents = [text] if path.suffix == ".json" else text.splitlines()
        for line in documents:
            try:
                document = json.loads(line)
            except json.JSONDecodeError:
                continue
            published = datetime.fromisoformat(document["published_at"])
            if published.tzinfo is None:
                continue
            version = datetime.fromisoformat(document.get("updated_at") or document["published_at"])
            slugs = tuple(dict.fromkeys(_slug(tag) for tag in document.get("tags", [])))
            item = Expected(
                document["id"],
                document["title"],
                published,
                version,
                slugs,
                document.get("lang", "ru"),
                tuple(document.get("authors", [])),
            )
            if item.id not in found or item.version > found[item.id].version:
                found[item.id] = item
    return found


def newest_first(items: Iterator[Expected] | list[Expected]) -> list[str]:
    ordered = sorted(items, key=lambda item: (item.published_at.astimezone(UTC), item.id), reverse=True)
    return [item.id for item in ordered]


# Reading the output --------------------------------------------------------------


def files_of(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        path.relative_to(folder).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


def feed_files(dest: Path) -> list[str]:
    """The subscription feeds' files."""
    return [path for path in _feed_documents(dest) if "/archive/" not in path]


def archive_files(dest: Path) -> list[str]:
    """The RFC 5005 archive documents: each complete page of each feed."""
    return [path for path in _feed_documents(dest) if "/archive/" in path]


def _feed_documents(dest: Path) -> list[str]:
    return sorted(
        path.relative_to(dest).as_posix()
        for path in (dest / "feeds").rglob("*")
        if path.name in {"rss.xml", "atom.xml", "feed.json"}
    )


def tag_slugs_in(dest: Path) -> set[str]:
    return {path.name for path in (dest / "feeds" / "tags").iterdir() if path.is_dir()}


def json_feed(dest: Path, slug: str | None = None) -> dict[str, Any]:
    path = dest / ("feeds/feed.json" if slug is None else f"feeds/tags/{slug}/feed.json")
    return json.loads(path.read_bytes())


def json_ids(dest: Path, slug: str | None = None) -> list[str]:
    return [item["id"] for item in json_feed(dest, slug)["items"]]


def parsed(dest: Path, path: str) -> Any:
    return feedparser.parse((dest / path).read_bytes())


def page(dest: Path, path: str) -> Any:
    return lxml_html.fromstring((dest / path).read_bytes())


def is_absolute(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "mailto":
        return bool(parts.path)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def html_links(fragment: str) -> list[str]:
    if not fragment.strip():
        return []
    links: list[str] = []
    for element in lxml_html.fragments_fromstring(fragment):
        if isinstance(element, str):
            continue
        for node in element.iter():
            links.extend(node.get(name) for name in ("href", "src") if node.get(name) is not None)
    return links


def xml_feed_links(data: bytes) -> list[str]:
    """Every URL an RSS or Atom document carries, including those inside its HTML content."""
    root = etree.fromstring(data)
    links: list[str] = []
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        name = etree.QName(node).localname
        links.extend(node.get(attribute) for attribute in ("href", "uri", "domain", "src") if node.get(attribute))
        if name in {"link", "docs", "uri", "url", "comments"} and node.text and node.text.strip():
            links.append(node.text.strip())
        if name == "guid" and node.get("isPermaLink", "true") == "true":
            links.append((node.text or "").strip())
        if name in {"content", "description", "summary"} and node.text:
            links.extend(html_links(node.text))
    return links


def json_feed_links(document: dict[str, Any]) -> list[str]:
    links = [document[name] for name in ("home_page_url", "feed_url", "icon", "favicon") if name in document]
    links += [author["url"] for author in document.get("authors", []) if "url" in author]
    for item in document["items"]:
        links += [item[name] for name in ("url", "external_url", "image", "banner_image") if name in item]
        links += [author["url"] for author in item.get("authors", []) if "url" in author]
        links += html_links(item.get("content_html", ""))
    return links


def page_links(data: bytes) -> list[str]:
    document = lxml_html.fromstring(data)
    return [
        value
        for node in document.iter()
        if isinstance(node.tag, str)
        for value in (node.get("href"), node.get("src"), node.get("action"))
        if value is not None
    ]


def local_target(dest: Path, url: str) -> Path | None:
    """The file of ``dest`` that a URL of the site itself points to, or None for others."""
    if not url.startswith(BASE_URL):
        return None
    path = urlsplit(url).path.lstrip("/")
    if path and not path.startswith(("feeds/", "tags/", "archive/", "sitemap", "robots.txt")):
        return None  # summary pages and images live on the digest site, not in dest
    return dest / (path + "index.html" if path == "" or path.endswith("/") else path)


# Fixtures --------------------------------------------------------------------------


EXAMPLE_PAGE_SIZE = 5
EXAMPLE_COMPLETE_PAGES = sum(count // EXAMPLE_PAGE_SIZE for count in (28, *EXAMPLE_TAG_COUNTS.values()))
"""Complete archive pages of the examples, over every feed."""


@dataclass
class Published:
    dest: Path
    state: Path
    report: PublishReport


@pytest.fixture(scope="module")
def examples_published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """The examples, published once into folders, in archive pages of ``EXAMPLE_PAGE_SIZE``; tests only read
    the result."""
    root = tmp_path_factory.mktemp("examples")
    report = run(EXAMPLES, root / "dest", root / "state", archive_page_size=EXAMPLE_PAGE_SIZE)
    return Published(root / "dest", root / "state", report)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A private copy of the examples, which a test may add to."""
    folder = tmp_path / "source"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("README.md"))
    return folder


class RecordingStore:
    """Wraps a store and records every key written."""

    is_local = False  # a wrapper: the run treats it as a remote store, with threads

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.puts: list[str] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.inner.url

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix, start_after)

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, str] | None:
        return self.inner.read(key, max_bytes)

    def put(self, key: str, data: bytes, **arguments: Any) -> str:
        with self._lock:
            self.puts.append(key)
        return self.inner.put(key, data, **arguments)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


# 1. Valid feeds ------------------------------------------------------------------------


def test_examples_run_reports_what_it_read(examples_published: Published) -> None:
    report = examples_published.report
    assert report.summaries_new == len(expected_examples()) == 28
    assert report.skipped == 2
    assert {(problem.key, problem.line) for problem in report.problems if problem.outcome == "skipped"} == {
        ("2026/11/21/evening.jsonl", 3),
        ("2026/11/22/broken.json", None),
    }
    assert report.files_written == len(files_of(examples_published.dest))


def test_every_xml_feed_parses_without_bozo(examples_published: Published) -> None:
    dest = examples_published.dest
    paths = [path for path in feed_files(dest) if path.endswith(".xml")]
    assert len(paths) == 2 * (1 + len(EXAMPLE_TAG_COUNTS))
    archives = archive_files(dest)
    assert len(archives) == 2 * EXAMPLE_COMPLETE_PAGES
    for path in paths + archives:
        result = parsed(dest, path)
        assert result.bozo == 0, f"{path}: {result.get('bozo_exception')}"
        assert result.version == ("atom10" if path.endswith("atom.xml") else "rss20"), path
        assert result.entries, path


def test_every_atom_feed_validates_against_rfc4287_schema(examples_published: Published, atom_schema: Any) -> None:
    dest = examples_published.dest
    atoms = [path for path in feed_files(dest) if path.endswith("atom.xml")]
    assert len(atoms) == 1 + len(EXAMPLE_TAG_COUNTS)
    archives = [path for path in archive_files(dest) if path.endswith("atom.xml")]
    assert len(archives) == EXAMPLE_COMPLETE_PAGES
    for path in atoms + archives:
        document = etree.parse(str(dest / path))
        assert atom_schema.validate(document), f"{path}: {atom_schema.error_log}"


def test_every_json_feed_is_json_feed_1_1(examples_published: Published) -> None:
    # feedparser 6.0 has no JSON Feed parser, so the spec's rules are checked directly.
    dest = examples_published.dest
    paths = [path for path in feed_files(dest) if path.endswith("feed.json")]
    assert len(paths) == 1 + len(EXAMPLE_TAG_COUNTS)
    for path in paths:
        document = json.loads((dest / path).read_bytes())
        assert document["version"] == JSON_FEED_VERSION, path
        assert isinstance(document["title"], str) and document["title"], path
        assert isinstance(document["items"], list) and document["items"], path
        assert document["feed_url"] == BASE_URL + path, path
        assert document["home_page_url"].startswith(BASE_URL), path
        for author in document.get("authors", []):
            assert author.get("name") or author.get("url"), path
        ids = [item["id"] for item in document["items"]]
        assert len(ids) == len(set(ids)), f"{path}: duplicate item ids"
        for item in document["items"]:
            assert isinstance(item["id"], str) and item["id"].startswith("tag:aidigest.example,2026:summary/")
            assert item.get("content_html") or item.get("content_text"), item["id"]
            assert item["url"].startswith("https://"), item["id"]
            for field in ("date_published", "date_modified"):
                moment = datetime.fromisoformat(item[field])
                assert moment.tzinfo is not None, f"{path} {item['id']} {field} has no offset"
            assert isinstance(item["tags"], list)


def test_every_feed_names_each_summarys_authors(examples_published: Published) -> None:
    # RSS's <author> must be an email address, so RSS names them as dc:creator.
    expected = {entry_id(item.id): list(item.authors) for item in expected_examples().values()}
    assert any(expected.values()), "no sample summary has authors"
    dest = examples_published.dest
    for path in feed_files(dest):
        if path.endswith(".json"):
            items = json.loads((dest / path).read_text(encoding="utf-8"))["items"]
            found = {item["id"]: [author["name"] for author in item.get("authors", [])] for item in items}
        else:
            entries = parsed(dest, path).entries
            found = {entry.id: [author.get("name") for author in entry.get("authors", [])] for entry in entries}
        assert found == {summary_id: expected[summary_id] for summary_id in found}, path


def test_every_page_is_valid_html(examples_published: Published) -> None:
    pages = sorted(examples_published.dest.rglob("*.html"))
    # Each feed's page and archive index, its complete pages and (once one is) the page to come after them;
    # the newsletter's archive.
    paged = sum(1 for count in (28, *EXAMPLE_TAG_COUNTS.values()) if count >= EXAMPLE_PAGE_SIZE)
    assert len(pages) == 2 * (1 + len(EXAMPLE_TAG_COUNTS)) + EXAMPLE_COMPLETE_PAGES + paged + 1
    assert html_problems(pages) == []


def test_opml_lists_every_tag_feed_with_absolute_urls(examples_published: Published) -> None:
    dest = examples_published.dest
    root = etree.fromstring((dest / OPML).read_bytes())
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == SITE_TITLE
    outlines = [outline for outline in root.iter("outline") if outline.get("xmlUrl")]
    by_url = {outline.get("xmlUrl"): outline for outline in outlines}
    assert len(by_url) == len(outlines), "a tag feed is listed twice"
    expected_slugs = set(EXAMPLE_TAG_COUNTS)
    listed_slugs = set()
    for url, outline in by_url.items():
        assert is_absolute(url) and url.startswith(BASE_URL + "feeds/tags/"), url
        assert is_absolute(outline.get("htmlUrl")), outline.get("htmlUrl")
        assert outline.get("text"), url
        assert outline.get("type") == "rss"
        target = local_target(dest, url)
        assert target is not None and target.is_file(), f"OPML points to a missing feed: {url}"
        listed_slugs.add(url.removeprefix(BASE_URL + "feeds/tags/").split("/")[0])
    assert listed_slugs == expected_slugs == tag_slugs_in(dest)
    # The W3C validator asks a type of every outline with more than a text.
    for outline in root.iter("outline"):
        if outline.get("type") is None:
            assert set(outline.keys()) == {"text"}, outline.keys()


def test_every_url_in_feeds_and_pages_is_absolute_and_site_links_resolve(examples_published: Published) -> None:
    dest = examples_published.dest
    checked = 0
    for path, data in sorted(files_of(dest).items()):
        if path.endswith(".xml") or path.endswith(".opml"):
            links = xml_feed_links(data)
            if path.endswith(".opml"):
                root = etree.fromstring(data)
                links = [value for node in root.iter() for key, value in node.attrib.items() if key.endswith("Url")]
        if path == "sitemap.xml":
            links = [
                loc.text for loc in etree.fromstring(data).iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")
            ]
        elif path.endswith(".json"):
            links = json_feed_links(json.loads(data))
        elif path.endswith(".html"):
            links = page_links(data)
        else:
            continue
        assert links, f"{path} carries no links at all"
        for url in links:
            assert is_absolute(url), f"{path}: relative or empty link {url!r}"
            # A category's domain/scheme names the taxonomy; it need not be a page.
            target = None if url == BASE_URL + "tags/" else local_target(dest, url)
            assert target is None or target.is_file(), f"{path}: {url} points to no published file"
            checked += 1
    assert checked > 500
    # The example's relative Markdown link is made absolute against the summary's page.
    assert "https://aidigest.example/papers/2611.03877" in (dest / "feeds/feed.json").read_text(encoding="utf-8")


def test_feeds_and_pages_declare_their_language(examples_published: Published) -> None:
    dest = examples_published.dest
    english = {item.id for item in expected_examples().values() if item.lang == "en"}
    assert len(english) == 5
    for path in feed_files(dest):
        data = (dest / path).read_bytes()
        if path.endswith("rss.xml"):
            assert etree.fromstring(data).findtext("channel/language") == "ru", path
        elif path.endswith("atom.xml"):
            root = etree.fromstring(data)
            assert root.get(XML_LANG) == "ru", path
            for entry in root.iter(f"{{{ATOM_NS}}}entry"):
                summary_id = entry.findtext(f"{{{ATOM_NS}}}id").rsplit("/", 1)[1]
                assert entry.get(XML_LANG) == ("en" if summary_id in english else "ru"), (path, summary_id)
        else:
            document = json.loads(data)
            assert document["language"] == "ru", path
            for item in document["items"]:
                summary_id = item["id"].rsplit("/", 1)[1]
                assert item["language"] == ("en" if summary_id in english else "ru"), (path, summary_id)
    for path in ["index.html", *(f"tags/{slug}/index.html" for slug in EXAMPLE_TAG_COUNTS)]:
        assert page(dest, path).get("lang") == "ru", path


# 2. Items, counts, order and slugs -----------------------------------------------------


def test_items_per_feed_are_the_distinct_summaries_newest_first(examples_published: Published) -> None:
    dest = examples_published.dest
    expected = expected_examples()
    assert json_ids(dest) == [entry_id(summary_id) for summary_id in newest_first(list(expected.values()))]
    for slug, count in EXAMPLE_TAG_COUNTS.items():
        tagged = [item for item in expected.values() if slug in item.slugs]
        assert len(tagged) == count, f"the oracle disagrees with the README about {slug}"
        want = [entry_id(summary_id) for summary_id in newest_first(tagged)]
        assert json_ids(dest, slug) == want, slug
        for kind in ("rss.xml", "atom.xml"):
            result = parsed(dest, f"feeds/tags/{slug}/{kind}")
            assert [entry.id for entry in result.entries] == want, (slug, kind)
    for kind in ("rss.xml", "atom.xml"):
        assert [entry.id for entry in parsed(dest, f"feeds/{kind}").entries] == json_ids(dest)


def test_feeds_are_capped_at_feed_size_keeping_the_newest(tmp_path: Path) -> None:
    # Pages of 4: once one is complete, a feed shows its newest 4 and the few of its open page.
    report = run(EXAMPLES, tmp_path / "dest", tmp_path / "state", make_site(feed_size=4), archive_page_size=4)
    dest = tmp_path / "dest"
    assert report.summaries_new == 28
    expected = expected_examples()
    assert json_ids(dest) == [entry_id(i) for i in newest_first(list(expected.values()))[:4]]
    assert len(parsed(dest, "feeds/rss.xml").entries) == 4
    assert len(parsed(dest, "feeds/atom.xml").entries) == 4
    for slug, count in EXAMPLE_TAG_COUNTS.items():
        tagged = [item for item in expected.values() if slug in item.slugs]
        assert json_ids(dest, slug) == [entry_id(i) for i in newest_first(tagged)[:4]], slug
        assert len(json_ids(dest, slug)) == min(count, 4)
        assert len(parsed(dest, f"feeds/tags/{slug}/atom.xml").entries) == min(count, 4)
        # The page shows the same window; the index still counts every summary of the tag.
        assert len(page(dest, f"tags/{slug}/index.html").xpath("//article")) == min(count, 4)
    counts = {
        link.get("href").removeprefix(BASE_URL + "tags/").strip("/"): int(link.findtext("span"))
        for link in page(dest, "index.html").xpath("//section[@id='tags']//li/a")
    }
    assert counts == EXAMPLE_TAG_COUNTS


def test_tags_differing_in_case_are_one_tag_and_cyrillic_is_transliterated(examples_published: Published) -> None:
    dest = examples_published.dest
    assert tag_slugs_in(dest) == set(EXAMPLE_TAG_COUNTS)
    assert {path.name for path in (dest / "tags").iterdir()} == set(EXAMPLE_TAG_COUNTS)
    # 2611.04601 is tagged "MLLM": it is in the one mllm feed.
    assert entry_id("2611.04601") in json_ids(dest, "mllm")
    assert not (dest / "feeds/tags/MLLM").exists()
    assert "Мультимодальность" in json_feed(dest, "multimodalnost")["title"]
    assert len(json_ids(dest, "multimodalnost")) == 2


def test_tags_merge_by_slug_within_one_summary_and_across_summaries(tmp_path: Path) -> None:
    src = tmp_path / "source"
    write_json(
        src, "2026/11/20/a.json", summary(1, tags=["MLLM", "mllm", "Mllm"], published_at="2026-11-20T09:00:00+03:00")
    )
    write_json(src, "2026/11/20/b.json", summary(2, tags=["mllm"], published_at="2026-11-20T10:00:00+03:00"))
    write_json(
        src, "2026/11/20/c.json", summary(3, tags=["Мультимодальность"], published_at="2026-11-20T11:00:00+03:00")
    )
    run(src, tmp_path / "dest", tmp_path / "state")
    dest = tmp_path / "dest"
    assert tag_slugs_in(dest) == {"mllm", "multimodalnost"}
    assert json_ids(dest, "mllm") == [entry_id("2611.00002"), entry_id("2611.00001")]
    assert json_ids(dest, "multimodalnost") == [entry_id("2611.00003")]
    first = next(item for item in json_feed(dest)["items"] if item["id"] == entry_id("2611.00001"))
    assert len(first["tags"]) == 1, first["tags"]


# 3. Edits ---------------------------------------------------------------------------


def test_an_edit_keeps_the_entry_id_and_shows_the_new_version_everywhere(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    edited = source / EDITED_KEY
    held_back = edited.read_bytes()
    edited.unlink()
    first = run(source, dest, state)
    assert first.summaries_new == 28  # the first version of the edited id is still there
    old = expected_examples(skip_keys=(EDITED_KEY,))[EDITED_ID]
    new = expected_examples()[EDITED_ID]
    assert new.title.endswith("(v2)") and not old.title.endswith("(v2)")
    feeds_with_it = ["feeds"] + [f"feeds/tags/{slug}" for slug in new.slugs]
    for folder in feeds_with_it:
        assert old.title in (dest / folder / "feed.json").read_text(encoding="utf-8")

    edited.write_bytes(held_back)
    second = run(source, dest, state)
    assert (second.summaries_new, second.summaries_updated) == (0, 1)

    for folder in feeds_with_it:
        document = json.loads((dest / folder / "feed.json").read_bytes())
        ids = [item["id"] for item in document["items"]]
        assert ids.count(entry_id(EDITED_ID)) == 1 and len(ids) == len(set(ids)), folder
        item = next(item for item in document["items"] if item["id"] == entry_id(EDITED_ID))
        assert item["title"] == new.title
        assert "Обновлено 24 ноября" in item["content_html"]
        assert "уже доступен" not in item["content_html"]  # words of the first version only
        assert datetime.fromisoformat(item["date_modified"]) == new.version
        assert datetime.fromisoformat(item["date_published"]) == old.published_at
        for kind in ("rss.xml", "atom.xml"):
            entries = [entry for entry in parsed(dest, f"{folder}/{kind}").entries if entry.id == entry_id(EDITED_ID)]
            assert len(entries) == 1, (folder, kind)
            assert entries[0].title == new.title
            body = entries[0].content[0].value if kind == "atom.xml" else entries[0].summary
            assert "Обновлено 24 ноября" in body
        if folder == "feeds":
            atom = parsed(dest, "feeds/atom.xml")
            entry = next(entry for entry in atom.entries if entry.id == entry_id(EDITED_ID))
            assert datetime.fromisoformat(entry.updated) == new.version
    for path in ["index.html", *(f"tags/{slug}/index.html" for slug in new.slugs)]:
        text = page(dest, path).text_content()
        assert new.title in text and "Обновлено 24 ноября" in text, path
        assert text.count(old.title) == 1, path  # only as the prefix of the new title
    # The edit changed no tag, so nothing else moved: counts stay as in the README.
    assert len(json_ids(dest)) == 28


# 4. Idempotence and byte-stable output ---------------------------------------------------


def test_a_second_run_with_nothing_new_writes_nothing(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    before = snapshot(dest)
    catalog_before = snapshot(state / "catalog")
    again = run(source, dest, state)
    assert again.files_written == 0
    assert again.summaries_new == again.summaries_updated == 0
    assert snapshot(dest) == before
    # Nor any part of the state: only its run report is new.
    assert snapshot(state / "catalog") == catalog_before
    # A forced full scan re-reads nothing that changed and still writes nothing.
    full = run(source, dest, state, full_scan=True)
    assert full.full_scan and full.files_written == 0 and full.objects_read == 0
    assert snapshot(dest) == before


@pytest.mark.parametrize("change", ["site-title", "entry-revision"])
def test_a_new_look_renders_every_feed_again_and_logs_no_news(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Kept entries are cut from the published files, so they must not keep an old look beside new ones."""
    import digestpub.publish.fingerprint as fingerprint_module

    dest, state = tmp_path / "dest", tmp_path / "state"
    first = run(source, dest, state)
    logs_before = sorted((state / "catalog" / "log").rglob("*.jsonl"))
    site = make_site()
    if change == "site-title":
        site = Site(**{**site.__dict__, "title": "Другой Дайджест"})
    else:  # digestpub writes an entry's bytes differently for the same summary
        monkeypatch.setattr(fingerprint_module, "ENTRY_REVISION", fingerprint_module.ENTRY_REVISION + 1)
        fingerprint_module.rendering_fingerprint.cache_clear()
    fresh = tmp_path / "fresh"
    expected = run(source, fresh / "dest", fresh / "state", site)

    again = run(source, dest, state, site)

    assert again.files_written == first.files_written
    # A change of settings says what it is: no summary is news, no old skip is reported again.
    assert again.rendered_again and not first.rendered_again
    assert (again.summaries_new, again.summaries_updated, again.skipped) == (0, 0, 0)
    assert again.summaries_unchanged == first.summaries_new
    assert "rewritten (settings or templates changed)" in again.summary_line()
    assert "2 earlier skipped still unfixed" in again.summary_line()
    assert {path: data for path, (data, _) in snapshot(dest).items()} == {
        path: data for path, (data, _) in snapshot(fresh / "dest").items()
    }
    assert expected.files_written == first.files_written
    # Nothing was published anew: newsletters get no second log of the same summaries.
    assert sorted((state / "catalog" / "log").rglob("*.jsonl")) == logs_before
    fingerprint_module.rendering_fingerprint.cache_clear()


def test_a_fresh_rebuild_produces_byte_identical_output(source: Path, tmp_path: Path) -> None:
    run(source, tmp_path / "dest", tmp_path / "state")
    first = files_of(tmp_path / "dest")
    run(source, tmp_path / "dest2", tmp_path / "state2")
    assert files_of(tmp_path / "dest2") == first
    # --rebuild over the old state, into the old destination, changes no byte either.
    run(source, tmp_path / "dest", tmp_path / "state", rebuild=True)
    assert files_of(tmp_path / "dest") == first


def test_day_by_day_runs_produce_the_same_bytes_as_one_fresh_build(tmp_path: Path) -> None:
    incremental = tmp_path / "incremental"
    incremental.mkdir()
    for day in sorted((EXAMPLES / "2026" / "11").iterdir()):
        shutil.copytree(day, incremental / "2026" / "11" / day.name)
        run(incremental, tmp_path / "dest-inc", tmp_path / "state-inc")
    run(EXAMPLES, tmp_path / "dest-full", tmp_path / "state-full")
    built_daily = files_of(tmp_path / "dest-inc")
    built_once = files_of(tmp_path / "dest-full")
    assert sorted(built_daily) == sorted(built_once)
    different = [path for path in built_once if built_daily[path] != built_once[path]]
    assert different == []


# 5. Only what changed is rewritten ----------------------------------------------------------


def _feed_and_page(slug: str | None) -> set[str]:
    if slug is None:
        return {*ALL_FEED_FILES, "index.html"}
    return {f"feeds/tags/{slug}/{name}" for name in ("rss.xml", "atom.xml", "feed.json")} | {f"tags/{slug}/index.html"}


@pytest.mark.parametrize(
    ("tags", "published_at", "slug", "opml_changes", "sitemap_changes"),
    [
        pytest.param(["vqa"], "2026-11-25T09:00:00+03:00", "vqa", False, True, id="existing-tag-newest"),
        # Not the newest of its page anywhere: every lastmod in the sitemap stays.
        pytest.param(["VQA"], "2026-11-18T07:00:00+03:00", "vqa", False, False, id="existing-tag-older-other-case"),
        pytest.param(["Новый тег"], "2026-11-25T09:00:00+03:00", "novyi-teg", True, True, id="new-tag"),
    ],
)
def test_one_new_summary_rewrites_only_its_feeds_and_pages(
    source: Path,
    tmp_path: Path,
    tags: list[str],
    published_at: str,
    slug: str,
    opml_changes: bool,
    sitemap_changes: bool,
) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    before = snapshot(dest)
    write_json(source, "2026/11/25/2611.07001.json", summary("2611.07001", tags=tags, published_at=published_at))
    recorder = RecordingStore(FolderStore(dest))
    report = run(source, recorder, state)
    assert report.summaries_new == 1
    expected = _feed_and_page(None) | _feed_and_page(slug) | ({OPML} if opml_changes else set())
    # No page of 50 is complete: no archive page changes, and the archive indexes list only complete ones.
    expected |= {f"tags/{slug}/archive/index.html"} if opml_changes else set()
    expected |= {"sitemap.xml"} if sitemap_changes else set()
    assert sorted(recorder.puts) == sorted(expected), "written: " + ", ".join(sorted(recorder.puts))
    assert report.files_written == len(expected)
    after = snapshot(dest)
    assert {path for path in after if after[path] != before.get(path)} == expected
    assert entry_id("2611.07001") in json_ids(dest, slug)


def _as_earlier_builds_kept_it(state: Path) -> None:
    """A state of the format before this one (3: no checksums, entry sizes on the items)."""
    head_file = state / "catalog" / "head.json"
    head = json.loads(head_file.read_text())
    head.pop("checksums")
    head["format"] = 3
    head_file.write_text(json.dumps(head))


def test_state_kept_by_earlier_builds_is_refused_until_a_rebuild(source: Path, tmp_path: Path) -> None:
    # No release read an earlier format, so none is converted: the run says how to start afresh.
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    before = files_of(dest)
    _as_earlier_builds_kept_it(state)
    write_json(source, "2026/11/25/2611.07001.json", summary("2611.07001", tags=["vqa"]))
    with pytest.raises(StorageError, match=r"state format 3; .*--rebuild"):
        run(source, dest, state)
    assert files_of(dest) == before, "a refused run writes nothing"
    rebuilt = run(source, dest, state, rebuild=True)
    assert rebuilt.summaries_new > 0
    assert entry_id("2611.07001") in json_ids(dest, "vqa")
    head = json.loads((state / "catalog" / "head.json").read_text())
    assert head["format"] == STATE_FORMAT == 7
    # The head names a file for every part, and only the files it names are left.
    assert _part_files(state) == _named_files(state)
    assert run(source, dest, state).files_written == 0
    report = run(source, dest, state, full_scan=True)
    assert report.files_written == 0 and report.summaries_new == 0


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"not json\n" + data, id="a-line-of-no-feed"),
        pytest.param(lambda data: data.replace(b'"items":[', b'"items":[[', 1), id="a-broken-line"),
        pytest.param(None, id="missing"),
    ],
)
def test_damaged_windows_stop_the_run_with_what_to_do(source: Path, tmp_path: Path, damage: Any) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    head = json.loads((state / "catalog" / "head.json").read_text())
    windows = state / head["parts"]["catalog/windows.jsonl"]
    if damage is None:
        windows.unlink()
    else:
        lines = windows.read_bytes().splitlines(keepends=True)
        # The damage is in the line of the feed every new summary touches.
        windows.write_bytes(b"".join(damage(line) if line.startswith(b'{"feed":"_all"') else line for line in lines))
    write_json(source, "2026/11/25/2611.07001.json", summary("2611.07001", tags=["vqa"]))
    with pytest.raises(StorageError, match=r"catalog/windows\.\w+\.jsonl is damaged .*--rebuild"):
        run(source, dest, state)
    # As the message says: a rebuild starts the state afresh, and publishes everything.
    rebuilt = run(source, dest, state, rebuild=True)
    assert rebuilt.summaries_new > 0
    assert entry_id("2611.07001") in json_ids(dest, "vqa")
    # The rebuild's head names only its own files; the others are gone.
    head = json.loads((state / "catalog" / "head.json").read_text())
    assert _part_files(state) == _named_files(state)


class _StopsWhileSaving(RecordingStore):
    """A state store whose run stops (as if killed) after ``parts`` parts of its catalog are written."""

    def __init__(self, inner: ObjectStore, parts: int) -> None:
        super().__init__(inner)
        self.parts = parts

    def put(self, key: str, data: bytes, **arguments: Any) -> str:
        if key.startswith("catalog/"):
            if self.parts == 0:
                raise StorageError(f"stopped before writing {key}")
            self.parts -= 1
        return super().put(key, data, **arguments)


def _state_summary(state: Path) -> tuple[object, ...]:
    """What the state says was published: each feed's items, the tag counts, the ids' versions."""
    head = json.loads((state / "catalog" / "head.json").read_text())
    windows = folder_state_part(state, "catalog/windows.jsonl") or b""
    items = {window["feed"]: window["items"] for window in map(json.loads, windows.splitlines())}
    ids: dict[str, object] = {}
    for key in head["parts"]:
        if key.startswith("catalog/ids/") and key != "catalog/ids/known.bin":
            ids |= json.loads(folder_state_part(state, key) or b"{}")
    return head["total"], head["tags"], items, ids, folder_state_part(state, "catalog/ids/known.bin")


def _part_files(state: Path) -> set[str]:
    files = {path.relative_to(state).as_posix() for path in (state / "catalog").rglob("*") if path.is_file()}
    return {file for file in files if not file.startswith("catalog/log/")}


def _named_files(state: Path) -> set[str]:
    head = json.loads((state / "catalog" / "head.json").read_text())
    return {"catalog/head.json", *head["parts"].values()}


def _logged_ids(state: Path) -> set[str]:
    lines = [line for path in (state / "catalog" / "log").rglob("*.jsonl") for line in path.read_text().splitlines()]
    return {json.loads(line)["summary"]["id"] for line in lines}


def test_a_run_stopped_while_saving_its_state_loses_nothing(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for day in ("18", "19", "20"):
        shutil.copytree(EXAMPLES / "2026" / "11" / day, source / "2026" / "11" / day)
    run(EXAMPLES, tmp_path / "dest-whole", tmp_path / "state-whole")
    whole = files_of(tmp_path / "dest-whole")
    later_days = [day for day in sorted((EXAMPLES / "2026" / "11").iterdir()) if day.name > "20"]
    stopped_at = 0
    while True:
        attempt = tmp_path / f"stopped-after-{stopped_at}"
        shutil.copytree(source, attempt / "source")
        run(attempt / "source", attempt / "dest", attempt / "state")
        for day in later_days:
            shutil.copytree(day, attempt / "source" / "2026" / "11" / day.name)
        stopping = _StopsWhileSaving(FolderStore(attempt / "state"), stopped_at)
        try:
            run(attempt / "source", attempt / "dest", stopping)
        except StorageError:
            pass
        else:
            break
        # The next run finishes the work: every feed and page as one run over all of it makes them.
        run(attempt / "source", attempt / "dest", attempt / "state")
        assert files_of(attempt / "dest") == whole, f"stopped after {stopped_at} state parts"
        # The state agrees: later runs keep what the feeds show, and count each tag right.
        assert _state_summary(attempt / "state") == _state_summary(tmp_path / "state-whole"), stopped_at
        # And newsletters hear of every summary.
        assert _logged_ids(attempt / "state") == _logged_ids(tmp_path / "state-whole"), stopped_at
        # The daily full scan deletes what the stopped run left that no head names.
        run(attempt / "source", attempt / "dest", attempt / "state", full_scan=True)
        assert _part_files(attempt / "state") == _named_files(attempt / "state"), stopped_at
        stopped_at += 1
    assert stopped_at >= 5, "the run saved fewer state parts than this test expects"


# 6. Pages ---------------------------------------------------------------------------------


def _autodiscovery(document: Any) -> dict[str, str]:
    return {link.get("type"): link.get("href") for link in document.xpath("//head/link[@rel='alternate']")}


def test_index_page_has_masthead_tags_with_counts_subscribe_links_and_autodiscovery(
    examples_published: Published,
) -> None:
    dest = examples_published.dest
    document = page(dest, "index.html")
    masthead = document.xpath("//header")[0]
    assert masthead.xpath(".//a")[0].text_content().strip() == SITE_TITLE
    assert TAGLINE in masthead.text_content()
    assert SITE_TITLE in document.findtext(".//title")

    tags = {
        link.get("href"): (link.text.strip(), int(link.findtext("span").strip()))
        for link in document.xpath("//section[@id='tags']//li/a")
    }
    expected_names = {slug: slug for slug in EXAMPLE_TAG_COUNTS} | {"multimodalnost": "Мультимодальность"}
    assert tags == {
        f"{BASE_URL}tags/{slug}/": (expected_names[slug], count) for slug, count in EXAMPLE_TAG_COUNTS.items()
    }

    assert _autodiscovery(document) == {
        "application/rss+xml": BASE_URL + "feeds/rss.xml",
        "application/atom+xml": BASE_URL + "feeds/atom.xml",
        "application/feed+json": BASE_URL + "feeds/feed.json",
    }
    subscribe = {link.get("href") for link in document.xpath("//a")}
    assert {BASE_URL + path for path in (*ALL_FEED_FILES, OPML)} <= subscribe
    # The newest summaries, newest first, as the all-feed lists them.
    titles = [link.text_content().strip() for link in document.xpath("//article/h2/a")]
    assert titles == [item["title"] for item in json_feed(dest)["items"]]


def test_tag_page_has_heading_autodiscovery_and_a_script_free_subscribe_form(examples_published: Published) -> None:
    dest = examples_published.dest
    document = page(dest, "tags/mllm/index.html")
    assert document.xpath("//h1")[0].text_content().strip() == 'Подборка статей по тегу "mllm"'
    masthead = document.xpath("//header")[0]
    assert SITE_TITLE in masthead.text_content() and TAGLINE in masthead.text_content()
    assert _autodiscovery(document) == {
        "application/rss+xml": BASE_URL + "feeds/tags/mllm/rss.xml",
        "application/atom+xml": BASE_URL + "feeds/tags/mllm/atom.xml",
        "application/feed+json": BASE_URL + "feeds/tags/mllm/feed.json",
    }
    forms = document.xpath("//form")
    assert len(forms) == 1
    form = forms[0]
    assert form.get("method", "").lower() == "post"
    assert is_absolute(form.get("action"))
    assert form.xpath(".//input[@type='email']")
    assert form.xpath(".//input[@name='tags']")[0].get("value") == "mllm"
    assert len(document.xpath("//article")) == EXAMPLE_TAG_COUNTS["mllm"]
    for path, data in files_of(dest).items():
        if path.endswith(".html"):
            lowered = data.lower()
            assert b"<script" not in lowered, path
            assert not lxml_html.fromstring(data).xpath("//script"), path
            handlers = [
                name
                for node in lxml_html.fromstring(data).iter()
                if isinstance(node.tag, str)
                for name in node.attrib
                if name.lower().startswith("on")
            ]
            assert handlers == [], path


def test_cyrillic_tag_page_uses_the_name_as_written(examples_published: Published) -> None:
    document = page(examples_published.dest, "tags/multimodalnost/index.html")
    assert document.xpath("//h1")[0].text_content().strip() == 'Подборка статей по тегу "Мультимодальность"'


# 7. Concurrent runs and the state lock ----------------------------------------------------------


def test_two_overlapping_runs_lose_nothing(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    first_listed = threading.Event()

    class SignallingSource(FolderStore):
        def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
            first_listed.set()  # run A holds the lock and has begun reading
            yield from super().list(prefix, start_after)

    reports: dict[str, PublishReport] = {}
    errors: list[BaseException] = []

    def run_a() -> None:
        try:
            write_json(
                source, "2026/11/25/2611.08001.json", summary("2611.08001", published_at="2026-11-25T09:00:00+03:00")
            )
            reports["a"] = run(SignallingSource(source), dest, state, lock_wait=timedelta(seconds=30))
        except BaseException as error:  # reported below
            errors.append(error)

    def run_b() -> None:
        try:
            assert first_listed.wait(10), "run A never started"
            write_json(
                source, "2026/11/25/2611.08002.json", summary("2611.08002", published_at="2026-11-25T10:00:00+03:00")
            )
            reports["b"] = run(source, dest, state, lock_wait=timedelta(seconds=30))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run_a), threading.Thread(target=run_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert reports["a"].summaries_new + reports["b"].summaries_new == 2

    third = run(source, dest, state)
    assert third.summaries_new == third.summaries_updated == 0
    assert third.files_written == 0
    ids = json_ids(dest)
    assert ids[:2] == [entry_id("2611.08002"), entry_id("2611.08001")]
    assert len(ids) == len(set(ids)) == 30
    assert json_ids(dest, "mllm")[:2] == ids[:2]
    assert not (state / "lock.json").exists()


_PUBLISH_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from datetime import timedelta
    from digestpub.app.locations import open_store
    from digestpub.publish import PublishOptions, publish
    from digestpub.settings import Settings
    from tests.conftest import summary, write_json
    from pathlib import Path

    source, dest, state, number, start = sys.argv[1:6]
    write_json(Path(source), f"2026/11/25/{number}.json",
               summary(number, published_at=f"2026-11-25T{start}:00+03:00"))
    print("ready", flush=True)
    sys.stdin.readline()  # wait until both processes have written their summary
    report = publish(open_store(source), open_store(dest), open_store(state),
                     Settings.load(base_url="https://aidigest.example/").site(),
                     PublishOptions(workers=1, lock_wait=timedelta(seconds=30)))
    print(json.dumps({"new": report.summaries_new, "written": report.files_written}), flush=True)
    """
)


def test_two_concurrent_processes_sharing_one_state_lose_nothing(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    run(source, dest, state)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _PUBLISH_SCRIPT, str(source), str(dest), str(state), number, start],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=environment,
        )
        for number, start in (("2611.09001", "09:00"), ("2611.09002", "10:00"))
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""
        for process in processes:  # release both at once
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert sum(result["new"] for result in results) == 2

    third = run(source, dest, state)
    assert third.summaries_new == 0 and third.files_written == 0
    ids = json_ids(dest)
    assert {entry_id("2611.09001"), entry_id("2611.09002")} <= set(ids)
    assert len(ids) == len(set(ids)) == 30


def test_a_run_that_cannot_get_the_lock_raises_state_locked(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    holder = StateLock(FolderStore(state), ttl=timedelta(minutes=5), wait=timedelta(seconds=1))
    with holder:
        with pytest.raises(StateLocked) as caught:
            run(source, dest, state, lock_wait=timedelta(milliseconds=200))
        message = str(caught.value)
        assert "another publish run" in message
        assert str(state / "lock.json") in message
        assert f":{os.getpid()}" in message  # who holds it
        assert not dest.exists() or files_of(dest) == {}
        assert (state / "lock.json").exists()
    assert not (state / "lock.json").exists()
    report = run(source, dest, state, lock_wait=timedelta(milliseconds=200))
    assert report.summaries_new == 28


def test_an_expired_lock_is_taken_over(source: Path, tmp_path: Path) -> None:
    dest, state = tmp_path / "dest", tmp_path / "state"
    crashed = StateLock(FolderStore(state), ttl=timedelta(milliseconds=1), wait=timedelta(seconds=1))
    crashed.acquire()  # and never released, as by a run that died
    report = run(source, dest, state, lock_wait=timedelta(seconds=2))
    assert report.summaries_new == 28
    assert not (state / "lock.json").exists()


# 8. Nothing is written outside the destination ----------------------------------------------------


def test_publishing_writes_only_into_dest_and_state(tmp_path: Path) -> None:
    src = tmp_path / "source"
    write_json(
        src,
        "2026/11/20/a.json",
        summary(1, tags=["../../x", "a/b", "..", "/etc/passwd"], published_at="2026-11-20T09:00:00+03:00"),
    )
    write_json(
        src,
        "2026/11/20/b.json",
        summary(2, tags=["..\\..\\win", "%2e%2e/up", "mllm"], published_at="2026-11-20T10:00:00+03:00"),
    )
    neighbour = tmp_path / "x"
    neighbour.mkdir()
    (neighbour / "keep.txt").write_text("untouched")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "rss.xml").write_text("not a feed")
    before_entries = {path.name for path in tmp_path.iterdir()}
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in tmp_path.rglob("*") if path.is_file()}

    report = run(src, tmp_path / "dest", tmp_path / "state")
    assert report.summaries_new == 2
    assert {path.name for path in tmp_path.iterdir()} == before_entries | {"dest", "state"}
    after = {
        path: (path.read_bytes(), path.stat().st_mtime_ns)
        for path in tmp_path.rglob("*")
        if path.is_file() and not path.is_relative_to(tmp_path / "dest") and not path.is_relative_to(tmp_path / "state")
    }
    assert after == before

    dest = (tmp_path / "dest").resolve()
    for path in dest.rglob("*"):
        assert path.resolve().is_relative_to(dest), path
        assert not path.is_symlink(), path
    slugs = tag_slugs_in(dest)
    assert {"x", "a-b", "mllm"} <= slugs
    assert all(re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug) for slug in slugs), slugs
    assert {path.name for path in (dest / "tags").iterdir()} == slugs
    assert {path.name for path in dest.iterdir()} == {
        "feeds",
        "tags",
        "archive",
        "newsletter",
        "index.html",
        "sitemap.xml",
        "robots.txt",
    }


@pytest.mark.parametrize("key", ["../x.json", "a/../../x.json", "a/../b.json", "/etc/passwd", "", "a//b", "./a", "a/."])
def test_folder_store_refuses_keys_that_leave_its_root(tmp_path: Path, key: str) -> None:
    store = FolderStore(tmp_path / "root")
    with pytest.raises(StorageError, match="refusing key"):
        store.put(key, b"data")
    with pytest.raises(StorageError, match="refusing key"):
        store.read(key)
    with pytest.raises(StorageError, match="refusing key"):
        store.delete(key)
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []
