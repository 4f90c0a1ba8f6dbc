"""What the RSS and Atom kinds share: feedgen's feed-level header, built from the data.

Feed dates come from the data, never from the clock, so an unchanged feed is
byte-identical on the next run.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from digestpub.errors import StorageError
from digestpub.model import TagInfo
from digestpub.render.kinds import CombinedView, FeedView, Kind
from digestpub.site import ALL_FEED, Site
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


def combined_generator(view: CombinedView, kind: Kind) -> FeedGenerator:
    """A feed of several tags' header in feedgen: the tag feeds' own, with its id, title and links."""
    generator = feed_generator(FeedView(view.site, ALL_FEED, None, {}, view.updated), kind)
    generator.id(view.feed_id)
    generator.title(view.title)
    generator.subtitle(view.description)
    # RSS takes its channel <link> from the last link, and a combined feed is never pushed: no hubs.
    self_link = {"href": view.url, "rel": "self", "type": kind.media_type}
    generator.link([self_link, {"href": view.site.base_url, "rel": "alternate", "type": "text/html"}], replace=True)
    return generator


def published_entries(document: bytes, tag: str, id_tag: str) -> dict[str, bytes]:
    """Each ``tag`` element of a published XML document by its ``id_tag`` text, serialised with the
    namespaces it uses (lxml would repeat every one in scope)."""
    from lxml import etree  # type: ignore[import-untyped]  # only when serving a combined feed

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=False)
    try:
        root = etree.fromstring(document, parser)
    except etree.XMLSyntaxError as error:
        raise StorageError(f"a published tag feed is not well-formed XML: {error}") from error
    found: dict[str, bytes] = {}
    for element in root.iter(tag):
        entry_id = element.findtext(id_tag)
        if entry_id:
            alone = copy.deepcopy(element)
            etree.cleanup_namespaces(alone)
            found[entry_id] = bytes(etree.tostring(alone, encoding="utf-8", with_tail=False))
    return found
