"""Each summary's entry in every format, rendered once, when it enters a feed.

A feed or page is a frame (``render.Frame``) around the entries of its newest
summaries; later runs cut the entries they keep out of the published files (see
``catalog.WindowItem``), so a run renders only the summaries it read, never the
history. The XML entries come from feedgen's own entry serialisers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

import orjson
from feedgen.entry import FeedEntry
from lxml import etree  # type: ignore[import-untyped]

from digestpub.model import Summary
from digestpub.site import Site
from digestpub.templates import environment
from digestpub.words import words_for

ENTRY_REVISION = 2
"""Raised whenever this module or ``text`` writes other bytes for the same summary.

Part of the rendering fingerprint (``publish``): a run after the change renders
every feed again instead of keeping entries in the old form beside new ones.
2: authors as dc:creator in RSS; links whose target was refused become text.
"""

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_ITEM_END = b"</item>"


class Entry(NamedTuple):
    """A summary's entry in every format, as the bytes that go in each file.

    ``texts`` are in ``FORMATS`` order: RSS item, Atom entry, JSON Feed item,
    page card. Rendered entries travel and wait in an ``EntryPack``.
    """

    id: str
    texts: tuple[bytes, bytes, bytes, bytes]


class EntryPack:
    """Many entries' bytes in one buffer, with where each entry's texts are.

    A cold run holds the entries of its 18,000 shown summaries while forked
    workers write the feeds. In a few large buffers, the workers read them
    without touching (and so copying) a page per entry, and they cross from the
    process that rendered them as one copy.
    """

    __slots__ = ("_bounds", "_buffer")

    def __init__(self, entries: Sequence[Entry]) -> None:
        self._buffer = b"".join(text for entry in entries for text in entry.texts)
        self._bounds: dict[str, tuple[int, ...]] = {}
        start = 0
        for entry in entries:
            bounds = [start]
            for text in entry.texts:
                start += len(text)
                bounds.append(start)
            self._bounds[entry.id] = tuple(bounds)

    def ids(self) -> Iterable[str]:
        return self._bounds.keys()

    def texts(self, summary_id: str) -> list[memoryview]:
        """The entry's texts in ``FORMATS`` order, as views into the buffer."""
        bounds = self._bounds[summary_id]
        view = memoryview(self._buffer)
        return [view[start:end] for start, end in pairwise(bounds)]


def render_entries(site: Site, summaries: Sequence[Summary]) -> list[Entry]:
    """Each summary's entry in every format, in the order given.

    One step at a time over the whole batch, not one summary at a time: the
    Markdown parser, the sanitiser, lxml and Jinja each keep their code and
    tables warm in the CPU's caches that way, and a cold run renders its
    entries in about three quarters of the CPU time.
    """
    htmls = [summary.summary_html for summary in summaries]
    feed_entries = [_feed_entry(site, summary, html) for summary, html in zip(summaries, htmls, strict=True)]
    rss = []
    for summary, entry in zip(summaries, feed_entries, strict=True):
        item = etree.tostring(entry.rss_entry(), encoding="utf-8")
        if summary.authors:
            # RSS's own <author> must be an email address; readers show dc:creator's
            # name. The frame declares dc on <rss> (render.feeds), so the item need not.
            creators = "".join(f"<dc:creator>{escape(author)}</dc:creator>" for author in summary.authors)
            item = item[: -len(_ITEM_END)] + creators.encode() + _ITEM_END
        rss.append(item)
    atom = []
    for summary, entry in zip(summaries, feed_entries, strict=True):
        element = entry.atom_entry()
        # feedgen has no per-entry language; Atom carries it as xml:lang.
        element.set(_XML_LANG, summary.lang)
        atom.append(etree.tostring(element, encoding="utf-8"))
    del feed_entries
    # orjson: ten times faster than json.dumps(ensure_ascii=False) on an item this size.
    json_items = [orjson.dumps(_json_item(site, summary, html)) for summary, html in zip(summaries, htmls, strict=True)]
    card_template = environment().get_template("_summary.html.j2")
    words = words_for(site.lang)
    cards = [card_template.render(item=summary, site=site, words=words).strip().encode() for summary in summaries]
    return [
        Entry(summary.id, texts)
        for summary, texts in zip(summaries, zip(rss, atom, json_items, cards, strict=True), strict=True)
    ]


def _feed_entry(site: Site, summary: Summary, html: str) -> FeedEntry:
    entry = FeedEntry()
    # id() and guid() share one field in feedgen: set it once, as a non-permalink guid.
    entry.guid(site.entry_id(summary.id), permalink=False)
    entry.title(summary.title)
    entry.link(href=summary.url)
    entry.published(summary.published_at)
    entry.updated(summary.version)
    entry.content(html, type="html")
    for author in summary.authors:
        entry.author({"name": author})
    for name, slug in zip(summary.tags, summary.tag_slugs, strict=True):
        entry.category(term=slug, label=name, scheme=site.url("tags/"))
    return entry


def _json_item(site: Site, summary: Summary, html: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": site.entry_id(summary.id),
        "url": summary.url,
        "title": summary.title,
        "content_html": html,
        "date_published": summary.published_at.isoformat(),
        "date_modified": summary.version.isoformat(),
        "language": summary.lang,
        "tags": list(summary.tags),
    }
    if summary.authors:
        item["authors"] = [{"name": name} for name in summary.authors]
    if summary.paper_url:
        item["external_url"] = summary.paper_url
    if summary.image_url:
        item["image"] = summary.image_url
    return item
