"""RFC 5005 feed history: what joins a feed to its archive documents, one per UTC month.

A subscription feed links ``prev-archive`` to its newest month, or says
``fh:complete`` when it shows the feed's whole history; each archive links
``current`` and its neighbouring months and says ``fh:archive``. feedgen writes
none of these, so they are added to the frame feedgen wrote, before the place
where the entries go.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from digestpub.render.kinds import FeedView
from digestpub.site import FEED_CONTENT_TYPES

FH_NAMESPACE = "http://purl.org/syndication/history/1.0"


def history(view: FeedView, kind: str) -> tuple[list[tuple[str, str]], str | None]:
    """The history links (relation, URL) of a feed's document of ``kind``, and its ``fh`` marker."""
    site, feed = view.site, view.feed
    if view.month is None:
        if view.complete or not view.months:
            return [], "complete"
        return [("prev-archive", site.feed_url(feed, kind, view.months[-1]))], None
    links = [("current", site.feed_url(feed, kind))]
    older, newer = view.neighbours()
    if older is not None:
        links.append(("prev-archive", site.feed_url(feed, kind, older)))
    if newer is not None:
        links.append(("next-archive", site.feed_url(feed, kind, newer)))
    return links, "archive"


def with_history(document: str, view: FeedView, kind: str, *, root: str, before: str, link: str) -> str:
    """``document`` with its history declared on ``root`` and written just before its last ``before``.

    ``link`` names the link element: ``link`` in Atom, ``atom:link`` in RSS.
    """
    links, marker = history(view, kind)
    media_type = FEED_CONTENT_TYPES[kind].split(";")[0]
    elements = "".join(
        f"<{link} rel={quoteattr(rel)} type={quoteattr(media_type)} href={quoteattr(href)}/>" for rel, href in links
    )
    if marker is not None:
        elements += f"<fh:{marker}/>"
    document = document.replace(f"<{root} ", f'<{root} xmlns:fh="{FH_NAMESPACE}" ', 1)
    cut = document.rindex(before)
    return document[:cut] + elements + document[cut:]
