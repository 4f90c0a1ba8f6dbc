"""``GET /feed?tags=…``, the feed of several tags, from ``digestpub serve`` over the published examples.

What a reader relies on: the newest ``feed_size`` summaries of the tags' union,
each once, under the tag feeds' own entry ids and in their published form; valid
Atom, RSS and JSON Feed; an ``ETag`` and ``Cache-Control`` to cache it by; a 400
page for what it cannot serve. A real feed reader (``reader``) that held the tag
feeds finds nothing new in the combined one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
import requests
from lxml import etree

from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.subscriptions.subscribers import new_subscriber
from digestpub.subscriptions.tokens import make_token
from tests.conftest import html_problems
from tests.serve_support import free_port, publish_examples, running_serve, serve_env

TOKEN_KEY = "a-test-key-that-is-long-enough-0123456789"
FEED_SIZE = 6
FEED_CACHE = "public, max-age=120"
TIMEOUT = 20
ATOM = "{http://www.w3.org/2005/Atom}"
TAGS = ("mllm", "vqa", "multimodalnost")
TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}


@dataclass(frozen=True)
class Served:
    base_url: str
    public: Path
    root: Path

    def feed(self, query: str, **headers: str) -> requests.Response:
        return requests.get(f"{self.base_url}feed?{query}", headers=headers, timeout=TIMEOUT)

    def tag_items(self, slug: str) -> list[dict[str, Any]]:
        return list(json.loads((self.public / f"feeds/tags/{slug}/feed.json").read_text())["items"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("combined")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/"
    public = publish_examples(root, base_url)  # tag feeds of 50: every example
    env = serve_env(root, base_url, token_key=TOKEN_KEY, feed_size=str(FEED_SIZE), feed_cache_control=FEED_CACHE)
    with running_serve(root, env, port):
        yield Served(base_url, public, root)


def _expected(served: Served, slugs: tuple[str, ...]) -> list[str]:
    """The oracle: the union of the tag feeds' items by id, newest published first, the first FEED_SIZE."""
    union = {item["id"]: item for slug in slugs for item in served.tag_items(slug)}
    newest = sorted(union.values(), key=lambda item: datetime.fromisoformat(item["date_published"]), reverse=True)
    return [item["id"] for item in newest[:FEED_SIZE]]


def _atom_entries(data: bytes) -> dict[str, bytes]:
    """Each entry's canonical XML by id, so an entry cut from a tag feed compares equal to its source."""
    root = etree.fromstring(data)
    return {
        entry.findtext(f"{ATOM}id"): etree.tostring(entry, method="c14n", exclusive=True, with_comments=False)
        for entry in root.iter(f"{ATOM}entry")
    }


def test_the_atom_feed_holds_the_newest_of_the_union_as_the_tag_feeds_published_them(
    served: Served, atom_schema: Any
) -> None:
    response = served.feed("tags=mllm,vqa,multimodalnost&format=atom")

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == TYPES["atom"]
    assert response.headers["Cache-Control"] == FEED_CACHE
    document = etree.fromstring(response.content)
    assert atom_schema.validate(document), atom_schema.error_log
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.bozo_exception
    ids = [entry.id for entry in parsed.entries]
    assert ids == _expected(served, TAGS)
    assert len(set(ids)) == len(ids) == FEED_SIZE
    self_link = next(link.href for link in parsed.feed.links if link.rel == "self")
    assert self_link == f"{served.base_url}feed?tags=mllm,multimodalnost,vqa&format=atom"
    assert "Мультимодальность" in parsed.feed.title  # the tag's name, not its slug

    published: dict[bytes | str, bytes] = {}
    for slug in TAGS:
        published |= _atom_entries((served.public / f"feeds/tags/{slug}/atom.xml").read_bytes())
    for entry_id, entry in _atom_entries(response.content).items():
        assert entry == published[entry_id], entry_id


def test_rss_and_json_feed_hold_the_same_entries_under_the_same_ids(served: Served) -> None:
    expected = _expected(served, TAGS)

    rss = served.feed("tags=mllm,vqa,multimodalnost&format=rss")
    assert (rss.status_code, rss.headers["Content-Type"]) == (200, TYPES["rss"])
    parsed = feedparser.parse(rss.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "rss20"
    assert [entry.id for entry in parsed.entries] == expected
    assert all(entry.get("author") for entry in parsed.entries if entry.id.endswith("2611.05244"))

    answer = served.feed("tags=mllm,vqa,multimodalnost&format=json")
    assert (answer.status_code, answer.headers["Content-Type"]) == (200, TYPES["json"])
    feed = answer.json()
    # JSON Feed 1.1: version, title and items are required; feed_url is where the document is.
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] and feed["home_page_url"] == served.base_url
    assert feed["feed_url"] == f"{served.base_url}feed?tags=mllm,multimodalnost,vqa&format=json"
    assert [item["id"] for item in feed["items"]] == expected
    for item in feed["items"]:
        assert isinstance(item["id"], str) and (item.get("content_html") or item.get("content_text"))
        datetime.fromisoformat(item["date_published"])
    tag_items = {item["id"]: item for slug in TAGS for item in served.tag_items(slug)}
    assert all(item == tag_items[item["id"]] for item in feed["items"])


def test_tags_by_name_repeated_or_in_any_order_give_one_document(served: Served) -> None:
    canonical = served.feed("tags=mllm,multimodalnost,vqa&format=json")
    for query in (
        "tags=vqa&tags=mllm&tags=multimodalnost&format=json",
        "tags=MLLM,%D0%9C%D1%83%D0%BB%D1%8C%D1%82%D0%B8%D0%BC%D0%BE%D0%B4%D0%B0%D0%BB%D1%8C%D0%BD%D0%BE%D1%81%D1%82%D1%8C&tags=vqa,mllm&format=json",
    ):
        answer = served.feed(query)
        assert (answer.status_code, answer.content) == (200, canonical.content), query
        assert answer.headers["ETag"] == canonical.headers["ETag"]


def test_a_matching_etag_gets_304_and_another_format_another_etag(served: Served) -> None:
    first = served.feed("tags=vqa,rag&format=atom")
    tag = first.headers["ETag"]
    assert tag.startswith('"') and tag.endswith('"')

    again = served.feed("tags=vqa,rag&format=atom", **{"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == tag and again.headers["Cache-Control"] == FEED_CACHE
    weak = served.feed("tags=vqa,rag&format=atom", **{"If-None-Match": f'"other", W/{tag}'})
    assert weak.status_code == 304
    stale = served.feed("tags=vqa,rag&format=atom", **{"If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.content == first.content
    assert served.feed("tags=vqa,rag&format=rss").headers["ETag"] != tag
    assert served.feed("tags=vqa&format=atom").headers["ETag"] != tag


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("tags=mllm,no-such-tag&format=atom", "no-such-tag"),
        ("tags=mllm,%3F%3F%3F&format=atom", "???"),
        ("tags=mllm&format=html", "unknown format"),
        ("tags=&format=atom", "at least one tag"),
        ("format=rss", "at least one tag"),
        ("tags=" + ",".join(f"t{number}" for number in range(21)), "at most 20"),
    ],
)
def test_what_cannot_be_served_gets_a_400_page_saying_why(served: Served, query: str, said: str) -> None:
    answer = served.feed(query)

    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.headers["Cache-Control"] == "no-store" and "ETag" not in answer.headers
    assert said in answer.text


def test_a_reader_that_held_the_tag_feeds_finds_nothing_new_in_the_combined_feed(
    served: Served, tmp_path: Path
) -> None:
    reader_module = pytest.importorskip("reader", reason="`reader` is not installed: `pip install -e '.[test]'`")
    reader = reader_module.make_reader(str(tmp_path / "reader.sqlite"))
    try:
        for slug in TAGS:
            reader.add_feed(f"{served.base_url}feeds/tags/{slug}/atom.xml")
        reader.update_feeds()
        held = {entry.id for entry in reader.get_entries()}
        assert held, "the reader read none of the tag feeds"

        for kind in ("atom", "rss", "json"):
            reader.add_feed(f"{served.base_url}feed?tags=mllm,vqa,multimodalnost&format={kind}")
        reader.update_feeds()

        combined = [entry for entry in reader.get_entries() if "/feed?" in entry.feed_url]
        assert len(combined) == 3 * FEED_SIZE, [feed.last_exception for feed in reader.get_feeds()]
        assert {entry.id for entry in reader.get_entries()} == held  # no id the reader had not seen
    finally:
        reader.close()


def test_the_index_builds_a_combined_feed_and_a_preference_page_offers_the_subscribers_own(served: Served) -> None:
    index = (served.public / "index.html").read_text()
    form = etree.HTML(index).xpath("//form[@id='follow']")[0]
    assert (form.get("method"), form.get("action")) == ("get", f"{served.base_url}feed")
    boxes = form.xpath(".//input[@type='checkbox']")
    assert {box.get("name") for box in boxes} == {"tags"} and {"mllm", "vqa"} <= {box.get("value") for box in boxes}
    # What the browser sends for two ticked boxes and the chosen format:
    assert served.feed("tags=mllm&tags=vqa&format=rss").status_code == 200

    subscriber = new_subscriber("feeds@example.com", "vqa mllm", "daily", "en", status="confirmed")
    SqliteSubscriberStore(served.root / "s.db").save(subscriber)
    token = make_token(TOKEN_KEY.encode(), subscriber.id, "preferences")
    page = requests.get(f"{served.base_url}preferences?token={token}", timeout=TIMEOUT)
    links = etree.HTML(page.text).xpath("//p[@id='own-feed']/a/@href")
    assert links == [f"{served.base_url}feed?tags=mllm,vqa&format={kind}" for kind in ("atom", "rss", "json")]
    assert all(served.feed(link.partition("?")[2]).status_code == 200 for link in links)

    everything = new_subscriber("all@example.com", "", "daily", "ru", status="confirmed")
    SqliteSubscriberStore(served.root / "s.db").save(everything)
    token = make_token(TOKEN_KEY.encode(), everything.id, "preferences")
    page = requests.get(f"{served.base_url}preferences?token={token}", timeout=TIMEOUT)
    assert etree.HTML(page.text).xpath("//p[@id='own-feed']/a/@href")[0] == f"{served.base_url}feeds/atom.xml"

    saved = served.root / "preferences.html"
    saved.write_text(page.text, encoding="utf-8")
    # Errors and warnings; the checker's "info" that a page with no message has no <h1> is older than this.
    problems = html_problems([served.public / "index.html", saved])
    assert [problem for problem in problems if ": info: " not in problem] == []
