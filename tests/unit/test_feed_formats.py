"""A new feed format is one module and one line in ``render.feed_formats.FEEDS``: the run publishes it,
archived pages too, and the pages, OPML, WebSub and ``digestpub serve`` know it from that line alone."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import etree
from lxml import html as lxml_html

from digestpub.app.serve import content_type
from digestpub.errors import BadRequest
from digestpub.publish.combined import CombinedFeeds
from digestpub.publish.websub import changed_feed_urls
from digestpub.render import Frame, atom, feed_formats
from digestpub.render.batch import EntryBatch
from digestpub.render.kinds import CombinedView, Combining, FeedView, Kind, feed_format
from tests.fakes import MemoryStore
from tests.unit.test_publish_core import BASE_URL, OPML, SITE, Stores, doc, sid

TEXT_TYPE = "text/plain; charset=utf-8"


def _entries(batch: EntryBatch) -> list[bytes]:
    return [f"{batch.site.entry_id(summary.id)} {summary.title}".encode() for summary in batch.summaries]


def _frame(view: FeedView) -> Frame:
    page = "" if view.page is None else f" {view.page}"
    return Frame(f"# {view.feed}{page}\n".encode(), b"\n")


def _combined_entries(document: bytes) -> dict[str, bytes]:
    lines = document.decode().splitlines()[1:]
    return {line.split(" ", 1)[0]: line.encode() for line in lines if line}


def _combined_frame(view: CombinedView) -> Frame:
    return Frame(f"# {view.title}\n".encode(), b"\n")


TEXT = feed_format(
    "text",
    "Plain text",
    TEXT_TYPE,
    "feed.txt",
    b"\n",
    _entries,
    _frame,
    archived=True,
    preferred=True,
    combining=Combining(_combined_entries, _combined_frame),
)
"""What the format's module would declare."""


@pytest.fixture
def with_text(monkeypatch: pytest.MonkeyPatch) -> Kind:
    """The one line: the format in the list (preferred in Atom's place, so that OPML shows it)."""
    feeds = tuple(replace(kind, preferred=False) if kind is atom.KIND else kind for kind in feed_formats.FEEDS)
    monkeypatch.setattr(feed_formats, "FEEDS", (*feeds, TEXT))
    return TEXT


def test_a_new_feed_format_is_published_and_linked_everywhere(with_text: Kind) -> None:
    stores = Stores()
    for number in (1, 2, 3):
        stores.add(f"2026/11/20/{number}.json", doc(number, 8 + number, title=f"Заголовок {number}"))

    stores.run(archive_page_size=2)

    body, _, meta = stores.dest.objects["feeds/tags/mllm/feed.txt"]
    ids = [SITE.entry_id(sid(number)) for number in (3, 2, 1)]
    expected = "".join(f"{entry} Заголовок {number}\n" for entry, number in zip(ids, (3, 2, 1), strict=True))
    assert body.decode() == "# mllm\n" + expected and meta["content_type"] == TEXT_TYPE
    assert stores.dest.objects["feeds/archive/1/feed.txt"][0].decode() == "# _all 1\n" + expected.split("\n", 1)[1]
    index = lxml_html.fromstring(stores.dest.objects["index.html"][0])
    (alternate,) = index.xpath("//link[@rel='alternate'][@type='text/plain']")
    assert alternate.get("href") == BASE_URL + "feeds/feed.txt" and alternate.get("title").endswith("(Plain text)")
    labels = {link.text: link.get("href") for link in index.xpath("//section[@id='feeds']//li/a")}
    assert labels["Plain text"] == BASE_URL + "feeds/feed.txt"
    assert index.xpath("//select[@id='feed-format']/option/@value")[0] == "text", "the preferred format first"
    archive_page = lxml_html.fromstring(stores.dest.objects["archive/1/index.html"][0])
    assert BASE_URL + "feeds/archive/1/feed.txt" in archive_page.xpath("//link[@rel='alternate']/@href")
    outlines = etree.fromstring(stores.dest.objects[OPML][0]).xpath("//outline[@xmlUrl]/@xmlUrl")
    assert outlines == [BASE_URL + "feeds/tags/mllm/feed.txt"]


def test_a_new_feed_format_serves_feeds_of_several_tags(with_text: Kind) -> None:
    stores = Stores()
    stores.add("2026/11/20/1.json", doc(1, 9, tags=["mllm"], title="Первый"))
    stores.add("2026/11/20/2.json", doc(2, 10, tags=["vqa"], title="Второй"))
    stores.run()

    combined = CombinedFeeds(stores.dest, SITE, "").build(["mllm,vqa"], "text")

    assert combined.content_type == TEXT_TYPE
    lines = combined.body.decode().splitlines()
    assert lines[1:] == [f"{SITE.entry_id(sid(2))} Второй", f"{SITE.entry_id(sid(1))} Первый"], "cut from the tag feeds"
    assert "mllm" in lines[0] and "vqa" in lines[0]


def test_a_format_that_cannot_combine_is_not_offered_for_several_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = replace(TEXT, combining=None, preferred=False)
    monkeypatch.setattr(feed_formats, "FEEDS", (*feed_formats.FEEDS, plain))
    assert plain not in feed_formats.offered() and feed_formats.offered()[0] is atom.KIND
    with pytest.raises(BadRequest, match="unknown format 'text'"):
        CombinedFeeds(MemoryStore("dest"), SITE, "").build(["mllm"], "text")


def test_serve_and_websub_know_a_new_feed_format_by_its_declaration(with_text: Kind) -> None:
    assert content_type("feeds/tags/mllm/feed.txt") == TEXT_TYPE
    assert content_type("feeds/tags/mllm/atom.xml") == "application/atom+xml; charset=utf-8"
    changed = [("text", "feeds/feed.txt"), ("page", "index.html"), ("atom", "feeds/atom.xml")]
    assert changed_feed_urls(SITE, changed) == [BASE_URL + "feeds/atom.xml", BASE_URL + "feeds/feed.txt"]


def test_without_its_line_a_format_is_nowhere() -> None:
    assert content_type("feeds/feed.txt") == "text/plain"  # by its suffix, as any other file
    assert changed_feed_urls(SITE, [("text", "feeds/feed.txt")]) == []
    assert feed_formats.named("text") is None and feed_formats.preferred() is atom.KIND
