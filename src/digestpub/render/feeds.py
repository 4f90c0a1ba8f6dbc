"""What the RSS and Atom kinds share: feedgen's feed-level header, built from the data.

Feed dates come from the data, never from the clock, so an unchanged feed is
byte-identical on the next run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from digestpub.model import TagInfo
from digestpub.render.kinds import FeedView, Kind
from digestpub.site import Site
from digestpub.version import __version__
from digestpub.words import words_for

if TYPE_CHECKING:
    from feedgen.feed import FeedGenerator

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GENERATOR_URI = "https://pypi.org/project/digestpub/"


def feed_title(site: Site, tag: TagInfo | None) -> str:
    if tag is None:
        return site.title
    return words_for(site.lang)["feed_of_tag"].format(site=site.title, tag=tag.name)


def feed_description(site: Site, tag: TagInfo | None) -> str:
    if tag is None:
        return site.description
    return words_for(site.lang)["tag_heading"].format(tag=tag.name)


def feed_generator(view: FeedView, kind: Kind) -> FeedGenerator:
    """A feed's header in feedgen, its ``rel=self`` link to its file of ``kind``."""
    from feedgen.feed import FeedGenerator  # only when rendering: the list of formats stays light

    site, feed = view.site, view.feed
    updated = view.updated or EPOCH
    generator = FeedGenerator()
    generator.id(site.feed_id(feed))
    generator.title(feed_title(site, view.tag))
    generator.subtitle(feed_description(site, view.tag))
    generator.language(site.lang)
    generator.author({"name": site.title})
    generator.updated(updated)
    generator.lastBuildDate(updated)
    generator.generator("digestpub", __version__, GENERATOR_URI)
    # RSS takes its channel <link> from the last link and emits only the first
    # rel=self: the self link goes first, and the page last.
    self_link = {"href": kind.url(site, feed, view.page), "rel": "self", "type": kind.media_type}
    page = {"href": site.page_url(feed, view.page), "rel": "alternate", "type": "text/html"}
    # Hubs announce the subscription feeds; an archive page is never pushed.
    hubs = hub_links(site) if view.page is None else []
    generator.link([self_link, *hubs, page], replace=True)
    return generator


def hub_links(site: Site) -> list[dict[str, str]]:
    """WebSub: the hubs beside ``rel=self``, so a reader subscribes there instead of polling."""
    return [{"href": hub, "rel": "hub"} for hub in site.hubs]
