"""JSON Feed 1.1 (feedgen has none)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import orjson

from digestpub.errors import StorageError
from digestpub.model import Summary
from digestpub.render import Frame, framed
from digestpub.render.feeds import feed_description, feed_title
from digestpub.render.kinds import CombinedView, Combining, FeedView, feed_format
from digestpub.site import Site

if TYPE_CHECKING:
    from digestpub.render.batch import EntryBatch


def _entries(batch: EntryBatch) -> list[bytes]:
    # orjson: much faster than json.dumps(ensure_ascii=False) on items this small.
    return [
        orjson.dumps(_item(batch.site, summary, html))
        for summary, html in zip(batch.summaries, batch.html, strict=True)
    ]


def _item(site: Site, summary: Summary, html: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": site.entry_id(summary.id),
        "url": summary.url,
        "title": summary.title,
        "content_html": html,
        "date_published": summary.published_at.isoformat(),
        "date_modified": summary.version.isoformat(),
        "language": summary.lang,
        "tags": list(summary.tags),
    }
    if summary.authors:
        item["authors"] = [{"name": name} for name in summary.authors]
    if summary.paper_url:
        item["external_url"] = summary.paper_url
    if summary.image_url:
        item["image"] = summary.image_url
    return item


def _frame(view: FeedView) -> Frame:
    site = view.site
    header = json_header(
        site,
        feed_title(site, view.tag),
        site.page_url(view.feed),
        KIND.url(site, view.feed),
        feed_description(site, view.tag),
    )
    if site.hubs:
        header["hubs"] = [{"type": "WebSub", "url": hub} for hub in site.hubs]
    return json_frame(header)


def json_header(site: Site, title: str, home_page_url: str, feed_url: str, description: str) -> dict[str, Any]:
    """A JSON Feed's top-level fields, in the order every feed of the site writes them."""
    return {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": home_page_url,
        "feed_url": feed_url,
        "description": description,
        "language": site.lang,
        "authors": [{"name": site.title, "url": site.base_url}],
    }


def json_frame(header: dict[str, Any]) -> Frame:
    """The document of ``header`` whose items go where the frame is cut."""
    return framed(json.dumps({**header, "items": []}, ensure_ascii=False, separators=(",", ":")), "]}")


def published_items(document: bytes) -> list[dict[str, Any]]:
    """The items of a published JSON Feed, newest first."""
    try:
        items = json.loads(document)["items"]
    except (ValueError, KeyError, TypeError) as error:
        raise StorageError(f"a published tag feed is not a JSON Feed: {error}") from error
    return list(items)


def _combined_entries(document: bytes) -> dict[str, bytes]:
    return {item["id"]: orjson.dumps(item) for item in published_items(document)}


def _combined_frame(view: CombinedView) -> Frame:
    site = view.site
    return json_frame(json_header(site, view.title, site.base_url, view.url, view.description))


KIND = feed_format(
    "json",
    "JSON Feed",
    "application/feed+json; charset=utf-8",
    "feed.json",
    b",",
    _entries,
    _frame,
    archived=False,
    combining=Combining(_combined_entries, _combined_frame),
)
"""A feed's JSON Feed: JSON Feed has no archive standard."""
