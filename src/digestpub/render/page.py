"""The HTML page of a feed: the index for every summary, a tag's page for its own (Jinja2)."""

from __future__ import annotations

from collections.abc import Iterable

from jinja2 import Template

from digestpub.model import TagInfo
from digestpub.render import Frame, feed_formats
from digestpub.render.batch import EntryBatch
from digestpub.render.charts import bar_chart
from digestpub.render.kinds import FeedView, Kind
from digestpub.site import HTML_TYPE, Site
from digestpub.templates import environment
from digestpub.words import month_name, words_for

CARDS = "\x00cards\x00"
"""Where the cards go in a rendered page: NUL never survives into any text it shows."""


def listed_tags(tags: Iterable[TagInfo]) -> list[TagInfo]:
    """Tags that still have summaries, the most used first."""
    return sorted((tag for tag in tags if tag.count > 0), key=lambda tag: (-tag.count, tag.slug))


def page_template() -> Template:
    """The page template, compiled on first use and cached by the environment."""
    return environment().get_template("page.html.j2")


def page_path(site: Site, feed: str, page: int | None) -> str:
    return site.page_path(feed, page)


def split_at_cards(html: str) -> Frame:
    """A rendered page cut where its cards go (the template prints ``cards`` there)."""
    head, _, tail = html.partition(CARDS)
    return Frame(head.encode(), tail.encode())


def cards(batch: EntryBatch) -> list[bytes]:
    """Each summary's card: the entries of a page, and of a month page."""
    card_template = environment().get_template("_summary.html.j2")
    words = words_for(batch.site.lang)
    return [
        card_template.render(item=summary, site=batch.site, words=words).strip().encode() for summary in batch.summaries
    ]


def _frame(view: FeedView) -> Frame:
    site, tag = view.site, view.tag
    words = words_for(site.lang)
    heading = words["new_papers"] if tag is None else words["tag_heading"].format(tag=tag.name)
    html = page_template().render(
        site=site,
        words=words,
        feed=view.feed,
        tag=tag,
        heading=heading,
        title=site.title if tag is None else f"{heading} — {site.title}",
        cards=None if view.empty else CARDS,
        tags=listed_tags(view.all_tags.values()) if tag is None else [],
        is_index=view.is_everything,
        feeds=feed_formats.FEEDS,
        choices=feed_formats.offered(),
        archive_url=site.url(site.archive_index_path(view.feed)) if not view.empty else None,
        trend=bar_chart(
            [(month_name(site.lang, month), count) for month, count in view.recent_months], words["per_month"]
        )
        if tag is not None
        else "",
    )
    return split_at_cards(html)


KIND = Kind("page", HTML_TYPE, b"\n", page_path, cards, _frame)
