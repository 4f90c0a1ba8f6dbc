"""RFC 5005 feed history: what joins a feed to its archive pages, and RFC 6721 tombstones.

A subscription feed links ``prev-archive`` to its newest complete page, or says
``fh:complete`` while no page is complete; each archive page links ``current``
and the pages beside it and says ``fh:archive``. Its ``next-archive`` is named
when the page is written, once: the next page's URL is fixed, and the document
is there once that page is complete. feedgen writes none of these, so they are
added to the frame feedgen wrote, before the place where the entries go.
"""

from __future__ import annotations

from html import escape

from digestpub.render.kinds import FeedView, Kind

FH_NAMESPACE = "http://purl.org/syndication/history/1.0"
TOMBSTONES_NAMESPACE = "http://purl.org/atompub/tombstones/1.0"


def history(view: FeedView, kind: Kind) -> tuple[list[tuple[str, str]], str | None]:
    """The history links (relation, URL) of a feed's document of ``kind``, and its ``fh`` marker."""
    site, feed = view.site, view.feed
    if view.page is None:
        if view.complete:
            return [], "complete"
        return [("prev-archive", kind.url(site, feed, view.complete_pages))], None
    links = [("current", kind.url(site, feed))]
    if view.page > 1:
        links.append(("prev-archive", kind.url(site, feed, view.page - 1)))
    links.append(("next-archive", kind.url(site, feed, view.page + 1)))
    return links, "archive"


def tombstones(view: FeedView) -> str:
    """RFC 6721 ``at:deleted-entry`` elements of the summaries that lately left the feed."""
    return "".join(
        f'<at:deleted-entry ref="{escape(view.site.entry_id(stone.id))}" when="{_rfc3339(stone.when)}"/>'
        for stone in view.tombstones
    )


def _rfc3339(sortable: str) -> str:
    return sortable[:19] + "Z"


def with_history(
    document: str, view: FeedView, kind: Kind, *, root: str, before: str, link: str, extra: str = ""
) -> str:
    """``document`` with its history declared on ``root`` and written just before its last ``before``.

    ``link`` names the link element: ``link`` in Atom, ``atom:link`` in RSS;
    ``extra`` goes after the history (Atom's tombstones).
    """
    links, marker = history(view, kind)
    elements = "".join(f'<{link} rel="{rel}" type="{kind.media_type}" href="{escape(href)}"/>' for rel, href in links)
    if marker is not None:
        elements += f"<fh:{marker}/>"
    elements += extra
    namespaces = f'xmlns:fh="{FH_NAMESPACE}" '
    if extra:
        namespaces += f'xmlns:at="{TOMBSTONES_NAMESPACE}" '
    document = document.replace(f"<{root} ", f"<{root} {namespaces}", 1)
    cut = document.rindex(before)
    return document[:cut] + elements + document[cut:]
