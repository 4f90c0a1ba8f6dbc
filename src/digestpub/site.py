"""The public shape of the site: where every feed and page lives, and stable ids."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

ALL_FEED = "_all"
"""The feed of every summary; a slug never starts with ``_``, so it cannot clash."""

FEED_FILE_NAMES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
"""Each feed format's file name, in the feed's folder."""
FEED_CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
"""Each feed format's Content-Type, on S3 and from ``digestpub serve`` alike."""
OPML_PATH = "feeds/tags.opml"
INDEX_PATH = "index.html"
SITEMAP_PATH = "sitemap.xml"
ROBOTS_PATH = "robots.txt"
XML_TYPE = "application/xml; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
NEWSLETTER_ARCHIVE_PAGE = "newsletter/index.html"
NEWSLETTER_ARCHIVE_FEED = "feeds/newsletter.xml"
HTML_TYPE = "text/html; charset=utf-8"
OPML_TYPE = "text/x-opml; charset=utf-8"


@dataclass(frozen=True)
class Site:
    title: str
    description: str
    lang: str
    base_url: str
    api_url: str
    feed_size: int = 50
    hubs: tuple[str, ...] = ()
    """WebSub hubs every feed declares, and which each run tells of the feeds it changed."""
    id_year: int = 2026
    """The year in ``tag:`` URIs; fixed, because ids must never change."""

    @property
    def authority(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    def entry_id(self, summary_id: str) -> str:
        return f"tag:{self.authority},{self.id_year}:summary/{quote(summary_id, safe='')}"

    def feed_id(self, feed: str) -> str:
        return f"tag:{self.authority},{self.id_year}:feed/{'all' if feed == ALL_FEED else quote(feed)}"

    def feed_path(self, feed: str, kind: str, month: str | None = None) -> str:
        """A feed's file of ``kind``; with ``month`` (``YYYY-MM``), its RFC 5005 archive document of that UTC month."""
        folder = "feeds" if feed == ALL_FEED else f"feeds/tags/{feed}"
        if month is not None:
            folder = f"{folder}/archive/{month}"
        return f"{folder}/{FEED_FILE_NAMES[kind]}"

    def page_path(self, feed: str, month: str | None = None) -> str:
        """A feed's page; with ``month`` (``YYYY-MM``), its page of that UTC month."""
        if month is not None:
            year, number = month.split("-")
            folder = "archive" if feed == ALL_FEED else f"tags/{feed}"
            return f"{folder}/{year}/{number}/index.html"
        return INDEX_PATH if feed == ALL_FEED else f"tags/{feed}/index.html"

    def archive_index_path(self, feed: str) -> str:
        """The page listing a feed's months with their counts."""
        return "archive/index.html" if feed == ALL_FEED else f"tags/{feed}/archive/index.html"

    def url(self, path: str) -> str:
        return self.base_url + path.removesuffix("index.html")

    def feed_url(self, feed: str, kind: str, month: str | None = None) -> str:
        return self.url(self.feed_path(feed, kind, month))

    def page_url(self, feed: str, month: str | None = None) -> str:
        return self.url(self.page_path(feed, month))

    def api(self, endpoint: str) -> str:
        return self.api_url + endpoint
