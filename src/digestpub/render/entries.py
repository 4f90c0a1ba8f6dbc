"""Each summary's entry in every format, rendered once, when it enters a feed.

A feed or page is a frame (``render.Frame``) around the entries of its newest
summaries; later runs cut the entries they keep out of the published files (see
``catalog.WindowItem``), so a run renders only the summaries it read, never the
history. The XML entries come from feedgen's own entry serialisers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from feedgen.entry import FeedEntry
from lxml import etree  # type: ignore[import-untyped]

from digestpub.model import Summary
from digestpub.render import Format
from digestpub.site import Site
from digestpub.templates import environment
from digestpub.words import words_for

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(slots=True)
class Entry:
    """A summary's entry in every format: RSS item, Atom entry, JSON Feed item, page card.

    The summary's HTML is kept once; each format's text is kept without it, with
    the offset where it goes (-1: nowhere), and ``text`` puts it back, escaped as
    that format needs. A cold run holds and passes thousands of these.
    """

    id: str
    html: str
    rss: str
    rss_at: int
    atom: str
    atom_at: int
    json: str
    json_at: int
    page: str
    page_at: int

    def text(self, kind: Format) -> str:
        hollow: str = getattr(self, kind)
        at: int = getattr(self, f"{kind}_at")
        if at < 0:
            return hollow
        return hollow[:at] + _ESCAPE[kind](self.html) + hollow[at:]


# A summary sits in the all-summaries feed and in each of its tags' feeds: escape
# its HTML once per run, not once per feed.
@lru_cache(maxsize=4096)
def xml_escape(text: str) -> str:
    """Text as lxml writes it in an element: ``&``, ``<``, ``>`` and CR escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


@lru_cache(maxsize=4096)
def json_escape(text: str) -> str:
    """Text as orjson writes it inside a JSON string."""
    return orjson.dumps(text).decode()[1:-1]


def _as_is(text: str) -> str:
    return text


_ESCAPE: dict[Format, Callable[[str], str]] = {
    "rss": xml_escape,
    "atom": xml_escape,
    "json": json_escape,
    "page": _as_is,
}


def _hollow(rendered: str, content: str) -> tuple[str, int]:
    """The entry without its content, and where the content goes (-1: kept inside)."""
    at = rendered.rfind(content) if content else -1
    if at < 0:
        return rendered, -1
    return rendered[:at] + rendered[at + len(content) :], at


def render_entry(site: Site, summary: Summary) -> Entry:
    entry = FeedEntry()
    # id() and guid() share one field in feedgen: set it once, as a non-permalink guid.
    entry.guid(site.entry_id(summary.id), permalink=False)
    entry.title(summary.title)
    entry.link(href=summary.url)
    entry.published(summary.published_at)
    entry.updated(summary.version)
    entry.content(summary.summary_html, type="html")
    for author in summary.authors:
        entry.author({"name": author})
    for name, slug in zip(summary.tags, summary.tag_slugs, strict=True):
        entry.category(term=slug, label=name, scheme=site.url("tags/"))
    atom_element = entry.atom_entry()
    # feedgen has no per-entry language; Atom carries it as xml:lang.
    atom_element.set(_XML_LANG, summary.lang)
    html = summary.summary_html
    atom, atom_at = _hollow(etree.tostring(atom_element, encoding="unicode"), xml_escape(html))
    rss, rss_at = _hollow(etree.tostring(entry.rss_entry(), encoding="unicode"), xml_escape(html))
    # orjson: ten times faster than json.dumps(ensure_ascii=False) on an item this size.
    json_item = orjson.dumps(_json_item(site, summary)).decode()
    json_feed, json_at = _hollow(json_item, json_escape(html))
    card_template = environment().get_template("_summary.html.j2")
    card_html = card_template.render(item=summary, site=site, words=words_for(site.lang)).strip()
    card, card_at = _hollow(card_html, html)
    return Entry(
        id=summary.id,
        html=html,
        rss=rss,
        rss_at=rss_at,
        atom=atom,
        atom_at=atom_at,
        json=json_feed,
        json_at=json_at,
        page=card,
        page_at=card_at,
    )


def _json_item(site: Site, summary: Summary) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": site.entry_id(summary.id),
        "url": summary.url,
        "title": summary.title,
        "content_html": summary.summary_html,
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
