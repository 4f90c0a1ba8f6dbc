"""RSS 2.0 and Atom 1.0 through feedgen, and JSON Feed 1.1, for one feed.

The feed's header comes from feedgen; its entries were rendered once per summary
(``render.entries``) and are placed inside it. Feed dates come from the data,
never from the clock, so an unchanged feed is byte-identical on the next run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from feedgen.feed import FeedGenerator

from digestpub import __version__
from digestpub.catalog import FeedItem
from digestpub.model import TagInfo
from digestpub.render import Output
from digestpub.render.entries import entry_text
from digestpub.site import FEED_FILES, Site
from digestpub.words import words_for

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GENERATOR_URI = "https://pypi.org/project/digestpub/"


def feed_title(site: Site, tag: TagInfo | None) -> str:
    if tag is None:
        return site.title
    return words_for(site.lang)["feed_of_tag"].format(site=site.title, tag=tag.name)


def feed_description(site: Site, tag: TagInfo | None) -> str:
    if tag is None:
        return site.description
    return words_for(site.lang)["tag_heading"].format(tag=tag.name)


def render_feeds(site: Site, feed: str, tag: TagInfo | None, items: Sequence[FeedItem]) -> list[Output]:
    """The three files of one feed (``ALL_FEED`` or a tag slug), newest first."""
    updated = max((datetime.fromisoformat(item.version) for item in items), default=_EPOCH)
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
    rss = _insert(generator.rss_str(pretty=False), "</channel>", (entry_text(item, "rss") for item in items))
    generator.link([_self_link(site, feed, "atom"), page], replace=True)
    atom = _insert(generator.atom_str(pretty=False), "</feed>", (entry_text(item, "atom") for item in items))
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
    json_header = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    json_feed = _insert(json_header, "]}", (entry_text(item, "json_feed") for item in items), separator=",")
    return [
        Output(site.feed_path(feed, "rss"), rss, FEED_FILES["rss"][1]),
        Output(site.feed_path(feed, "atom"), atom, FEED_FILES["atom"][1]),
        Output(site.feed_path(feed, "json"), json_feed, FEED_FILES["json"][1]),
    ]


def _self_link(site: Site, feed: str, kind: str) -> dict[str, str]:
    return {
        "href": site.feed_url(feed, kind),
        "rel": "self",
        "type": FEED_FILES[kind][1].split(";")[0],
    }


def _insert(document: bytes, closing: str, entries: Iterable[str], separator: str = "\n") -> bytes:
    """``document`` with ``entries`` placed before its last ``closing`` marker."""
    text = document.decode()
    cut = text.rindex(closing)
    ending = "" if text.endswith("\n") else "\n"
    return (text[:cut] + separator.join(entries) + text[cut:] + ending).encode()
