"""Atom 1.0 (RFC 4287), through feedgen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from digestpub.render import Frame, framed
from digestpub.render.feeds import combined_generator, feed_generator, published_entries
from digestpub.render.history import tombstones, with_history
from digestpub.render.kinds import CombinedView, Combining, FeedView, feed_format

if TYPE_CHECKING:
    from digestpub.render.batch import EntryBatch

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_ATOM = "{http://www.w3.org/2005/Atom}"


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


def _combined_entries(document: bytes) -> dict[str, bytes]:
    return published_entries(document, f"{_ATOM}entry", f"{_ATOM}id")


def _combined_frame(view: CombinedView) -> Frame:
    return framed(combined_generator(view, KIND).atom_str(pretty=False).decode(), "</feed>")


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
    combining=Combining(_combined_entries, _combined_frame),
)
"""A feed's Atom document, and each of its archive pages."""
