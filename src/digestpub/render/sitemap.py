"""``sitemap.xml`` (sitemaps.org 0.9) of every page, and the ``robots.txt`` that names it.

Past 50,000 URLs the sitemap becomes an index of files of at most that many.
Each ``lastmod`` is the newest version among the summaries a page shows, so an
unchanged site writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from html import escape

from digestpub.render import Output
from digestpub.site import ALL_FEED, ROBOTS_PATH, SITEMAP_PATH, TEXT_TYPE, XML_TYPE, Site

MAX_URLS = 50_000
"""The most URLs one sitemap file may list (sitemaps.org)."""
SITEMAP_FILES_FOLDER = "sitemaps/"
"""Where the files of a sitemap index go."""
_NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"


def render_sitemaps(site: Site, newest: Mapping[str, Sequence[str]], limit: int = MAX_URLS) -> list[Output]:
    """The sitemap, from the newest version (``sortable_time`` text) of each of each feed's pages in order,
    its open page last, by feed ("" for a page with nothing in it).

    One file when every URL fits in ``limit``; else ``sitemap.xml`` is an index
    of ``sitemaps/sitemap-N.xml``.
    """
    urls = list(_pages(site, newest))
    if len(urls) <= limit:
        return [Output(SITEMAP_PATH, _urlset(urls), XML_TYPE)]
    outputs = []
    for number, start in enumerate(range(0, len(urls), limit), start=1):
        chunk = urls[start : start + limit]
        outputs.append(Output(f"{SITEMAP_FILES_FOLDER}sitemap-{number}.xml", _urlset(chunk), XML_TYPE))
    entries = "".join(f"<sitemap><loc>{escape(site.url(output.path))}</loc></sitemap>" for output in outputs)
    index = f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{_NAMESPACE}">{entries}</sitemapindex>\n'
    return [*outputs, Output(SITEMAP_PATH, index.encode(), XML_TYPE)]


def _pages(site: Site, newest: Mapping[str, Sequence[str]]) -> Iterator[tuple[str, str]]:
    """Every page's URL and ``lastmod``: each feed's page and archive index, then its archive pages."""
    for feed in sorted(newest, key=lambda feed: (feed != ALL_FEED, feed)):
        pages = newest[feed]
        if not any(pages):
            continue  # a tag left with no summary leaves the sitemap
        latest = _w3c(max(pages))
        yield site.page_url(feed), latest
        yield site.url(site.archive_index_path(feed)), latest
        # The open page is on the feed's page until it is complete.
        for number, version in enumerate(pages[:-1], start=1):
            if version:
                yield site.page_url(feed, number), _w3c(version)


def _urlset(urls: list[tuple[str, str]]) -> bytes:
    entries = "".join(f"<url><loc>{escape(loc)}</loc><lastmod>{lastmod}</lastmod></url>\n" for loc, lastmod in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{_NAMESPACE}">\n{entries}</urlset>\n'.encode()


def _w3c(version: str) -> str:
    """``sortable_time`` text to the second, as W3C Datetime: search engines need no microseconds."""
    return version[:19] + "+00:00"


def render_robots(site: Site) -> Output:
    return Output(ROBOTS_PATH, f"User-agent: *\nAllow: /\n\nSitemap: {site.url(SITEMAP_PATH)}\n".encode(), TEXT_TYPE)
