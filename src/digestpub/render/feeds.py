"""RSS 2.0 and Atom 1.0 through feedgen, and JSON Feed 1.1, for one feed.

The feed's frame (everything but its entries) comes from feedgen; its entries are
rendered once per summary (``render.entries``) and placed inside it. Feed dates come
from the data, never from the clock, so an unchanged feed is byte-identical on the
next run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from feedgen.feed import FeedGenerator

from digestpub import __version__
from digestpub.model import TagInfo
from digestpub.render import Frame, framed
from digestpub.site import FEED_FILES, Site
from digestpub.words import words_for

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GENERATOR_URI = "https://pypi.org/project/digestpub/"
_DC_NAMESPACE = "http://purl.org/dc/elements/1.1/"


def feed_title(site: Site, tag: TagInfo | None) -> str:
    if tag is None:
        return site.title
    return words_for(site.lang)["feed_of_tag"].format(site=site.title, tag=tag.name)


def feed_description(site: Site, tag: TagInfo | None) -> str:
    if tag is None:
        return site.description
    return words_for(site.lang)["tag_heading"].format(tag=tag.name)


def feed_frames(site: Site, feed: str, tag: TagInfo | None, updated: datetime | None) -> list[Frame]:
    """The RSS, Atom and JSON Feed frames of one feed (``ALL_FEED`` or a tag slug).

    ``updated`` is the newest version among the feed's items (``None``: no items).
    """
    updated = updated or _EPOCH
    title = feed_title(site, tag)
    description = feed_description(site, tag)
    generator = FeedGenerator()
    generator.id(site.feed_id(feed))
    generator.title(title)
    generator.subtitle(description)
    generator.language(site.lang)
    generator.author({"name": site.title})
    generator.updated(updated)
    generator.lastBuildDate(updated)
    generator.generator("digestpub", __version__, _GENERATOR_URI)

    page = {"href": site.page_url(feed), "rel": "alternate", "type": "text/html"}
    # RSS takes its channel <link> from the last link and emits only the first
    # rel=self, so each format gets its own self link, first, and the page last.
    generator.link([_self_link(site, feed, "rss"), page], replace=True)
    # Declared here for the entries' dc:creator (render.entries): feedgen's dc
    # extension would do the same at a tenth of a millisecond a feed.
    rss = generator.rss_str(pretty=False).decode().replace("<rss ", f'<rss xmlns:dc="{_DC_NAMESPACE}" ', 1)
    generator.link([_self_link(site, feed, "atom"), page], replace=True)
    atom = generator.atom_str(pretty=False).decode()
    header: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": site.page_url(feed),
        "feed_url": site.feed_url(feed, "json"),
        "description": description,
        "language": site.lang,
        "authors": [{"name": site.title, "url": site.base_url}],
        "items": [],
    }
    json_feed = json.dumps(header, ensure_ascii=False, separators=(",", ":"))
    return [
        framed("rss", site.feed_path(feed, "rss"), FEED_FILES["rss"][1], rss, "</channel>"),
        framed("atom", site.feed_path(feed, "atom"), FEED_FILES["atom"][1], atom, "</feed>"),
        framed("json", site.feed_path(feed, "json"), FEED_FILES["json"][1], json_feed, "]}"),
    ]


def _self_link(site: Site, feed: str, kind: str) -> dict[str, str]:
    return {
        "href": site.feed_url(feed, kind),
        "rel": "self",
        "type": FEED_FILES[kind][1].split(";")[0],
    }
