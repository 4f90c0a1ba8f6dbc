"""Atom 1.0 (RFC 4287), through feedgen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from digestpub.render import Frame, framed
from digestpub.render.feeds import feed_generator
from digestpub.render.history import tombstones, with_history
from digestpub.render.kinds import FeedView, feed_format

if TYPE_CHECKING:
    from digestpub.render.batch import EntryBatch

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _entries(batch: EntryBatch) -> list[bytes]:
    from lxml import etree  # type: ignore[import-untyped]  # only when rendering: the list of formats stays light

    entries = []
    for summary, entry in zip(batch.summaries, batch.feedgen_entries, strict=True):
        element = entry.atom_entry()
        # feedgen has no per-entry language; Atom carries it as xml:lang.
        element.set(_XML_LANG, summary.lang)
        entries.append(etree.tostring(element, encoding="utf-8"))
    return entries


def _frame(view: FeedView) -> Frame:
    document = feed_generator(view, KIND).atom_str(pretty=False).decode()
    document = with_history(document, view, KIND, root="feed", before="</feed>", link="link", extra=tombstones(view))
    return framed(document, "</feed>")


KIND = feed_format(
    "atom",
    "Atom",
    "application/atom+xml; charset=utf-8",
    "atom.xml",
    b"\n",
    _entries,
    _frame,
    archived=True,
    preferred=True,
)
"""A feed's Atom document, and each of its archive pages."""
