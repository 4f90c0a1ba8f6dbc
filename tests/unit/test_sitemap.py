"""The sitemap and robots.txt: every page once, its lastmod from the data, an index past the limit."""

from __future__ import annotations

from lxml import etree

from digestpub.render.sitemap import MAX_URLS, render_robots, render_sitemaps
from digestpub.site import ALL_FEED, Site

SITE = Site(title="Ай Дайджест", description="", lang="ru", base_url="https://aidigest.example/", api_url="")
NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NEWEST = {
    # Complete pages, then the open page: it is on the feed's page until it is complete.
    ALL_FEED: ["2026-10-30T09:00:00.000000+00:00", "2026-11-01T09:00:00.000000+00:00", "2026-11-20T09:00:00.5+00:00"],
    "mllm": ["2026-11-20T09:00:00.500000+00:00", ""],
    "gone": ["", ""],
}


def _urls(body: bytes) -> dict[str, str]:
    root = etree.fromstring(body)
    return {url.findtext(f"{NS}loc"): url.findtext(f"{NS}lastmod") for url in root.iter(f"{NS}url")}


def test_one_sitemap_lists_each_feeds_pages_with_the_newest_version_they_show() -> None:
    (sitemap,) = render_sitemaps(SITE, NEWEST)
    assert sitemap.path == "sitemap.xml" and sitemap.content_type.startswith("application/xml")
    assert _urls(sitemap.body) == {
        "https://aidigest.example/": "2026-11-20T09:00:00+00:00",
        "https://aidigest.example/archive/": "2026-11-20T09:00:00+00:00",
        "https://aidigest.example/archive/1/": "2026-10-30T09:00:00+00:00",
        "https://aidigest.example/archive/2/": "2026-11-01T09:00:00+00:00",
        "https://aidigest.example/tags/mllm/": "2026-11-20T09:00:00+00:00",
        "https://aidigest.example/tags/mllm/archive/": "2026-11-20T09:00:00+00:00",
        "https://aidigest.example/tags/mllm/archive/1/": "2026-11-20T09:00:00+00:00",
    }
    assert render_sitemaps(SITE, NEWEST) == [sitemap], "the same data, the same bytes"


def test_past_the_limit_the_sitemap_is_an_index_of_files_within_it() -> None:
    assert MAX_URLS == 50_000
    outputs = render_sitemaps(SITE, NEWEST, limit=3)
    *parts, index = outputs
    assert [part.path for part in parts] == [
        "sitemaps/sitemap-1.xml",
        "sitemaps/sitemap-2.xml",
        "sitemaps/sitemap-3.xml",
    ]
    assert [len(_urls(part.body)) for part in parts] == [3, 3, 1]
    assert index.path == "sitemap.xml"
    root = etree.fromstring(index.body)
    assert root.tag == f"{NS}sitemapindex"
    assert [loc.text for loc in root.iter(f"{NS}loc")] == [SITE.url(part.path) for part in parts]
    together: dict[str, str] = {}
    for part in parts:
        together |= _urls(part.body)
    assert together == _urls(render_sitemaps(SITE, NEWEST)[0].body)


def test_robots_names_the_sitemap() -> None:
    robots = render_robots(SITE)
    assert robots.path == "robots.txt"
    assert robots.body.decode().splitlines()[-1] == "Sitemap: https://aidigest.example/sitemap.xml"
