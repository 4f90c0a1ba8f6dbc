"""Atom 1.0 (RFC 4287), through feedgen."""

from __future__ import annotations

from lxml import etree  # type: ignore[import-untyped]

from digestpub.render import Frame, framed
from digestpub.render.entries import EntryBatch
from digestpub.render.feeds import feed_generator
from digestpub.render.history import tombstones, with_history
from digestpub.render.kinds import FeedView, Kind
from digestpub.site import FEED_CONTENT_TYPES, Site

_CONTENT_TYPE = FEED_CONTENT_TYPES["atom"]
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _path(site: Site, feed: str, page: int | None) -> str:
    return site.feed_path(feed, "atom", page)


def _entries(batch: EntryBatch) -> list[bytes]:
    entries = []
    for summary, entry in zip(batch.summaries, batch.feedgen_entries, strict=True):
        element = entry.atom_entry()
        # feedgen has no per-entry language; Atom carries it as xml:lang.
        element.set(_XML_LANG, summary.lang)
        entries.append(etree.tostring(element, encoding="utf-8"))
    return entries


def _frame(view: FeedView) -> Frame:
    document = feed_generator(view, "atom", _CONTENT_TYPE).atom_str(pretty=False).decode()
    document = with_history(document, view, "atom", root="feed", before="</feed>", link="link", extra=tombstones(view))
    return framed(document, "</feed>")


KIND = Kind("atom", _CONTENT_TYPE, b"\n", _path, _entries, _frame)
"""A feed's Atom document, and each of its archive pages."""
