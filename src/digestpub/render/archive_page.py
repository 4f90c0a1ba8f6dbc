"""A feed's archive pages on the web, and the page that lists them by month (Jinja2).

A page's number and URL never change: page 1 holds the feed's oldest summaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from digestpub.model import TagInfo
from digestpub.render import Frame, Output, feed_formats
from digestpub.render.charts import bar_chart
from digestpub.render.kinds import FeedView, Kind
from digestpub.render.page import CARDS, cards, split_at_cards
from digestpub.site import HTML_TYPE, Site
from digestpub.state.parts import PageTally
from digestpub.templates import environment
from digestpub.words import month_name, papers_word, words_for


def feed_heading(site: Site, tag: TagInfo | None) -> str:
    """What a page of the feed is about: a tag's selection, or every summary."""
    words = words_for(site.lang)
    return words["home"] if tag is None else words["tag_heading"].format(tag=tag.name)


def _path(site: Site, feed: str, page: int | None) -> str:
    return site.page_path(feed, page)


def _frame(view: FeedView) -> Frame:
    site, page = view.site, view.page
    assert page is not None
    html = _render(
        "archive_page.html.j2",
        site,
        view.feed,
        view.tag,
        words_for(site.lang)["page_heading"].format(heading=feed_heading(site, view.tag), page=page),
        page=page,
        span=None if view.span is None else _date_span(site, *view.span),
        cards=None if view.empty else CARDS,
        older=page - 1 if page > 1 else None,
        # The next page's URL is fixed: until it is complete, it shows the way to the feed's page.
        newer=page + 1,
    )
    return split_at_cards(html)


def _render(template: str, site: Site, feed: str, tag: TagInfo | None, heading: str, **context: object) -> str:
    """One of a feed's history pages, with what every one of them shows."""
    return (
        environment()
        .get_template(template)
        .render(
            site=site,
            words=words_for(site.lang),
            feed=feed,
            tag=tag,
            heading=heading,
            title=f"{heading} — {site.title}",
            feed_name=site.title if tag is None else feed_heading(site, tag),
            feeds=feed_formats.FEEDS,
            **context,
        )
    )


def _date_span(site: Site, oldest: datetime, newest: datetime) -> str:
    """The days a page's summaries were published on, in the site's time zone."""
    first, last = (site.local(moment).strftime("%Y-%m-%d") for moment in (oldest, newest))
    return first if first == last else words_for(site.lang)["page_span"].format(first=first, last=last)


KIND = Kind("page", HTML_TYPE, b"\n", _path, cards, _frame)
"""An archive page: it shares the tag page's name and cards, so each card is rendered once for both."""


@dataclass(frozen=True)
class MonthLine:
    """One month of a feed's archive index: how many summaries, and the first page that holds one of them."""

    month: str
    count: int
    page: int


def months_of(pages: Sequence[PageTally]) -> list[MonthLine]:
    """Each month (newest first) with its count and the first page it starts on."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for number, page in enumerate(pages, start=1):
        for month, count in page.months.items():
            counts[month] = counts.get(month, 0) + count
            first.setdefault(month, number)
    return [MonthLine(month, counts[month], first[month]) for month in sorted(counts, reverse=True)]


def render_page_to_come(site: Site, feed: str, tag: TagInfo | None, page: int) -> Output:
    """The page after a feed's newest complete one, until it is complete: its summaries are on the feed's page."""
    heading = words_for(site.lang)["page_heading"].format(heading=feed_heading(site, tag), page=page)
    html = _render("archive_to_come.html.j2", site, feed, tag, heading, page=page)
    return Output(site.page_path(feed, page), html.encode(), HTML_TYPE)


def render_archive_index(site: Site, feed: str, tag: TagInfo | None, pages: Sequence[PageTally]) -> Output:
    """The page of a feed's archive pages: by month, newest first, each month linking to the page it starts on,
    then every page with its date range."""
    words = words_for(site.lang)
    lines = months_of(pages)
    months = [
        (
            month_name(site.lang, line.month),
            words["pages_of_month"].format(count=line.count, papers=papers_word(site.lang, line.count), page=line.page),
            line.page,
        )
        for line in lines
    ]
    listed = [
        (number, _date_span(site, *map(datetime.fromisoformat, (page.oldest, page.newest))) if page.count else "",
         page.count)
        for number, page in reversed(list(enumerate(pages, start=1)))
    ]  # fmt: skip
    chart = bar_chart([(month_name(site.lang, line.month), line.count) for line in reversed(lines)], words["per_month"])
    heading = words["archive_heading"].format(heading=feed_heading(site, tag))
    html = _render("archive.html.j2", site, feed, tag, heading, months=months, pages=listed, chart=chart)
    return Output(site.archive_index_path(feed), html.encode(), HTML_TYPE)
