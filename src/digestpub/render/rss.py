"""RSS 2.0, through feedgen."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from digestpub.render import Frame, framed
from digestpub.render.feeds import combined_generator, feed_generator, hub_links, published_entries
from digestpub.render.history import with_history
from digestpub.render.kinds import CombinedView, Combining, FeedView, feed_format
from digestpub.site import Site

if TYPE_CHECKING:
    from digestpub.render.batch import EntryBatch

_DC_NAMESPACE = "http://purl.org/dc/elements/1.1/"
_ITEM_END = b"</item>"


def _entries(batch: EntryBatch) -> list[bytes]:
    from lxml import etree  # type: ignore[import-untyped]  # only when rendering: the list of formats stays light

    items = []
    for summary, entry in zip(batch.summaries, batch.feedgen_entries, strict=True):
        item = etree.tostring(entry.rss_entry(), encoding="utf-8")
        if summary.authors:
            # RSS's own <author> must be an email address; readers show dc:creator's
            # name. The frame declares dc on <rss>, so the item need not.
            creators = "".join(f"<dc:creator>{escape(author, quote=False)}</dc:creator>" for author in summary.authors)
            item = item[: -len(_ITEM_END)] + creators.encode() + _ITEM_END
        items.append(item)
    return items


def _frame(view: FeedView) -> Frame:
    document = feed_generator(view, KIND).rss_str(pretty=False).decode()
    if view.page is None:  # hubs announce subscription feeds, never an archive page
        document = _with_hubs(document, view.site)
    document = with_history(with_dc(document), view, KIND, root="rss", before="</channel>", link="atom:link")
    return framed(document, "</channel>")


def with_dc(document: str) -> str:
    """The RSS document with dc declared on ``<rss>``, for the entries' dc:creator.

    feedgen's dc extension would do the same, at a cost in every feed of every run.
    """
    return document.replace("<rss ", f'<rss xmlns:dc="{_DC_NAMESPACE}" ', 1)


def _with_hubs(document: str, site: Site) -> str:
    """feedgen's RSS carries only the ``rel=self`` atom:link: the hubs go right after it."""
    if not site.hubs:
        return document
    self_link = document.index("<atom:link ")
    after = document.index("/>", self_link) + 2
    hubs = "".join(f'<atom:link href="{escape(link["href"])}" rel="hub"/>' for link in hub_links(site))
    return document[:after] + hubs + document[after:]


def _combined_entries(document: bytes) -> dict[str, bytes]:
    return published_entries(document, "item", "guid")


def _combined_frame(view: CombinedView) -> Frame:
    return framed(with_dc(combined_generator(view, KIND).rss_str(pretty=False).decode()), "</channel>")


KIND = feed_format(
    "rss",
    "RSS",
    "application/rss+xml; charset=utf-8",
    "rss.xml",
    b"\n",
    _entries,
    _frame,
    archived=True,
    combining=Combining(_combined_entries, _combined_frame),
)
"""A feed's RSS document, and each of its archive pages."""
