"""The public shape of the site: where every feed and page lives, and stable ids."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

ALL_FEED = "_all"
"""The feed of every summary; a slug never starts with ``_``, so it cannot clash."""

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
ID_YEAR = 2026
"""The year in the ``tag:`` ids of a site that did not choose one."""
SEARCH_FOLDER = "pagefind/"
"""Where the search index (a Pagefind bundle per shard of records, and their list) lives in ``dest``."""
SEARCH_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".pagefind": "application/wasm",
}
"""The search bundle's files by suffix; the rest (``.pf_meta``, ``.pf_index``, ``.pf_fragment``) are bytes."""


_AUTHORITY = re.compile(r"(?P<host>[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?:,(?P<year>\d{4}))?\Z")


def parse_authority(text: str) -> str:
    """The setting's ``host`` or ``host,year`` as ``host,year``; ``ValueError`` (a settings error) for anything else."""
    found = _AUTHORITY.match(text.strip().lower())
    if found is None:
        raise ValueError(f"{text!r} is not a host name, optionally with a year: digest.example,2026")
    return f"{found['host']},{found['year'] or ID_YEAR}"


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
    id_authority: str = ""
    """``host,year`` of the ``tag:`` ids, fixed at the site's first run (``identity``);
    empty: the host of ``base_url`` and ``ID_YEAR``."""
    timezone: str = "UTC"
    """The IANA zone of every date a page or an email shows."""
    search: bool = False
    """Whether pages carry the search box and runs keep the search index (the ``search`` setting's default: on)."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo keeps one instance per name

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the site's time zone, as pages show it."""
        return moment.astimezone(self.zone)

    def month_of(self, sortable: str) -> str:
        """The month (``YYYY-MM``) in the site's time zone of ``sortable_time`` text (UTC)."""
        if self.timezone == "UTC":
            return sortable[:7]
        return _local_month(self.zone, sortable[:16])

    @property
    def authority(self) -> str:
        """The host of ``base_url``: where links go, and the domain of message ids."""
        return urlsplit(self.base_url).hostname or "localhost"

    def tag_id(self, specific: str) -> str:
        """A ``tag:`` URI (RFC 4151) under the site's id authority, which moving ``base_url`` never changes."""
        return f"tag:{self.id_authority or f'{self.authority},{ID_YEAR}'}:{specific}"

    def entry_id(self, summary_id: str) -> str:
        return self.tag_id(f"summary/{quote(summary_id, safe='')}")

    def feed_id(self, feed: str) -> str:
        return self.tag_id(f"feed/{'all' if feed == ALL_FEED else quote(feed)}")

    def feed_path(self, feed: str, file_name: str, page: int | None = None) -> str:
        """A feed's file named ``file_name`` (a feed format's, ``render.feed_formats``); with ``page``, its
        RFC 5005 archive document of that page (1 the oldest)."""
        folder = "feeds" if feed == ALL_FEED else f"feeds/tags/{feed}"
        if page is not None:
            folder = f"{folder}/archive/{page}"
        return f"{folder}/{file_name}"

    def page_path(self, feed: str, page: int | None = None) -> str:
        """A feed's web page; with ``page``, its archive page of that number (1 the oldest)."""
        if page is not None:
            folder = "archive" if feed == ALL_FEED else f"tags/{feed}/archive"
            return f"{folder}/{page}/index.html"
        return INDEX_PATH if feed == ALL_FEED else f"tags/{feed}/index.html"

    def archive_index_path(self, feed: str) -> str:
        """The page listing a feed's archive pages by date, grouped by month."""
        return "archive/index.html" if feed == ALL_FEED else f"tags/{feed}/archive/index.html"

    def card_anchor(self, summary_id: str) -> str:
        """The ``id`` of a summary's card on its pages: the same wherever the card is."""
        return "s-" + hashlib.sha256(summary_id.encode()).hexdigest()[:16]

    def path_url(self, path: str) -> str:
        """``url`` without the scheme and host: what pages use for files of their own site, whatever serves it."""
        return urlsplit(self.url(path)).path

    def url(self, path: str) -> str:
        return self.base_url + path.removesuffix("index.html")

    def page_url(self, feed: str, page: int | None = None) -> str:
        return self.url(self.page_path(feed, page))

    def api(self, endpoint: str) -> str:
        return self.api_url + endpoint


@lru_cache(maxsize=65_536)
def _local_month(zone: ZoneInfo, minute: str) -> str:
    # By the minute: a cold run asks for tens of thousands of times, most of them in few minutes' range.
    return datetime.fromisoformat(minute + ":00+00:00").astimezone(zone).strftime("%Y-%m")


def search_content_type(path: str) -> str:
    """The Content-Type of a file of the search bundle, on S3 and from ``digestpub serve`` alike."""
    suffix = "." + path.rsplit(".", 1)[-1]
    return SEARCH_CONTENT_TYPES.get(suffix, "application/octet-stream")
