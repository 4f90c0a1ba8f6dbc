"""A feed's archive pages on the web, and the page that lists them by month (Jinja2).

A page's number and URL never change: page 1 holds the feed's oldest summaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from digestpub.model import TagInfo
from digestpub.render import Frame, Output
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
    words = words_for(site.lang)
    heading = words["page_heading"].format(heading=feed_heading(site, view.tag), page=page)
    span = None
    if view.span is not None:
        first, last = (site.local(moment).strftime("%Y-%m-%d") for moment in view.span)
        span = first if first == last else words["page_span"].format(first=first, last=last)
    html = (
        environment()
        .get_template("archive_page.html.j2")
        .render(
            site=site,
            words=words,
            feed=view.feed,
            tag=view.tag,
            page=page,
            heading=heading,
            span=span,
            title=f"{heading} — {site.title}",
            feed_name=site.title if view.tag is None else feed_heading(site, view.tag),
            cards=None if view.empty else CARDS,
            older=page - 1 if page > 1 else None,
            # The next page's URL is fixed: until it is complete, it shows the way to the feed's page.
            newer=page + 1,
        )
    )
    return split_at_cards(html)


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
    words = words_for(site.lang)
    heading = words["page_heading"].format(heading=feed_heading(site, tag), page=page)
    html = (
        environment()
        .get_template("archive_to_come.html.j2")
        .render(
            site=site,
            words=words,
            feed=feed,
            page=page,
            heading=heading,
            title=f"{heading} — {site.title}",
            feed_name=site.title if tag is None else feed_heading(site, tag),
        )
    )
    return Output(site.page_path(feed, page), html.encode(), HTML_TYPE)


def render_archive_index(site: Site, feed: str, tag: TagInfo | None, pages: Sequence[PageTally]) -> Output:
    """The page of a feed's archive pages: by month, newest first, each month linking to the page it starts on,
    then every page with its date range."""
    words = words_for(site.lang)
    heading = words["archive_heading"].format(heading=feed_heading(site, tag))
    lines = months_of(pages)
    months = [
        (
            month_name(site.lang, line.month),
            words["pages_of_month"].format(count=line.count, papers=papers_word(site.lang, line.count), page=line.page),
            line.page,
        )
        for line in lines
    ]
    listed = [(number, _span(site, page), page.count) for number, page in reversed(list(enumerate(pages, start=1)))]
    chart = bar_chart([(month_name(site.lang, line.month), line.count) for line in reversed(lines)], words["per_month"])
    html = (
        environment()
        .get_template("archive.html.j2")
        .render(
            site=site,
            words=words,
            feed=feed,
            tag=tag,
            heading=heading,
            title=f"{heading} — {site.title}",
            feed_name=site.title if tag is None else feed_heading(site, tag),
            months=months,
            pages=listed,
            chart=chart,
        )
    )
    return Output(site.archive_index_path(feed), html.encode(), HTML_TYPE)


def _span(site: Site, page: PageTally) -> str:
    if not page.count:
        return ""
    first, last = (
        site.local(datetime.fromisoformat(moment)).strftime("%Y-%m-%d") for moment in (page.oldest, page.newest)
    )
    return first if first == last else words_for(site.lang)["page_span"].format(first=first, last=last)
