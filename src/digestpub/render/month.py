"""A feed's page of one UTC month, and the page listing its months (Jinja2)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from digestpub.model import TagInfo
from digestpub.render import Frame, Output
from digestpub.render.kinds import FeedView, Kind
from digestpub.render.page import cards, page_path
from digestpub.site import HTML_TYPE, Site
from digestpub.templates import environment
from digestpub.words import month_name, words_for

_CARDS = "\x00cards\x00"
"""Where the cards go in a rendered page: NUL never survives into any text it shows."""


def feed_heading(site: Site, tag: TagInfo | None) -> str:
    """What a page of the feed is about: a tag's selection, or every summary."""
    words = words_for(site.lang)
    return words["home"] if tag is None else words["tag_heading"].format(tag=tag.name)


def _frame(view: FeedView) -> Frame:
    site, month = view.site, view.month
    assert month is not None
    words = words_for(site.lang)
    heading = words["in_month"].format(heading=feed_heading(site, view.tag), month=month_name(site.lang, month))
    older, newer = view.neighbours()
    html = (
        environment()
        .get_template("month.html.j2")
        .render(
            site=site,
            words=words,
            feed=view.feed,
            month=month,
            heading=heading,
            title=f"{heading} — {site.title}",
            feed_name=site.title if view.tag is None else feed_heading(site, view.tag),
            cards=None if view.empty else _CARDS,
            older=older,
            newer=newer,
            month_name=partial(month_name, site.lang),
        )
    )
    head, _, tail = html.partition(_CARDS)
    return Frame(head.encode(), tail.encode())


KIND = Kind("page", HTML_TYPE, b"\n", page_path, cards, _frame)
"""A month's page: it shares the tag page's name and cards, so each card is rendered once for both."""


def render_archive_index(site: Site, feed: str, tag: TagInfo | None, counts: Mapping[str, int]) -> Output:
    """The page of a feed's months, newest first, each with its count (``counts``, by month)."""
    words = words_for(site.lang)
    heading = words["archive_heading"].format(heading=feed_heading(site, tag))
    html = (
        environment()
        .get_template("archive.html.j2")
        .render(
            site=site,
            words=words,
            feed=feed,
            heading=heading,
            title=f"{heading} — {site.title}",
            feed_name=site.title if tag is None else feed_heading(site, tag),
            months=[(month, counts[month]) for month in sorted(counts, reverse=True)],
            month_name=partial(month_name, site.lang),
        )
    )
    return Output(site.archive_index_path(feed), html.encode(), HTML_TYPE)
