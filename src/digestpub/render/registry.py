"""Every output kind a run renders: the feed formats (``render.feed_formats``) and the web pages.

An archive kind shares its name and entries with the kind it archives, so each
entry is rendered once for both: a feed format is its own archive kind, and a
feed's web page has its archive page.
"""

from __future__ import annotations

from digestpub.render import archive_page, feed_formats, page
from digestpub.render.kinds import Kind


def all_kinds() -> tuple[Kind, ...]:
    """Every kind, in the order a run renders them."""
    return (*feed_formats.FEEDS, page.KIND)


def archive_kinds() -> tuple[Kind, ...]:
    """Every kind a complete archive page is published as."""
    return (*(kind for kind in feed_formats.FEEDS if kind.archived), archive_page.KIND)
