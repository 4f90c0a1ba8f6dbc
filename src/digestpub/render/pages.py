"""The HTML pages (Jinja2) and the OPML list of tag feeds."""

from __future__ import annotations

from collections.abc import Iterable
from xml.etree import ElementTree

from jinja2 import Template

from digestpub.catalog import ALL_FEED
from digestpub.model import TagInfo
from digestpub.render import SEPARATORS, Frame, Output
from digestpub.render.feeds import feed_title
from digestpub.site import HTML_TYPE, OPML_PATH, OPML_TYPE, Site
from digestpub.templates import environment
from digestpub.words import words_for


def listed_tags(tags: Iterable[TagInfo]) -> list[TagInfo]:
    """Tags that still have summaries, the most used first."""
    return sorted((tag for tag in tags if tag.count > 0), key=lambda tag: (-tag.count, tag.slug))


_CARDS = "\x00cards\x00"
"""Where the cards go in a rendered page: NUL never survives into any text it shows."""


def page_template() -> Template:
    """The page template, compiled on first use and cached by the environment."""
    return environment().get_template("page.html.j2")


def page_frame(site: Site, feed: str, tag: TagInfo | None, all_tags: dict[str, TagInfo], *, empty: bool) -> Frame:
    """The frame of the index (``ALL_FEED``) or of one tag's page; its entries are cards."""
    words = words_for(site.lang)
    heading = words["new_papers"] if tag is None else words["tag_heading"].format(tag=tag.name)
    html = page_template().render(
        site=site,
        words=words,
        feed=feed,
        tag=tag,
        heading=heading,
        title=site.title if tag is None else f"{heading} — {site.title}",
        cards=None if empty else _CARDS,
        tags=listed_tags(all_tags.values()) if tag is None else [],
        is_index=feed == ALL_FEED,
    )
    head, _, tail = html.partition(_CARDS)
    return Frame(site.page_path(feed), HTML_TYPE, head.encode(), tail.encode(), SEPARATORS["page"])


def render_opml(site: Site, tags: Iterable[TagInfo]) -> Output:
    """OPML 2.0 with one outline per tag feed, for a one-step import into a reader."""
    listed = listed_tags(tags)
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = site.title
    # No dateModified: it would change the file with every newer summary, and the
    # list only changes when the tag set does.
    body = ElementTree.SubElement(root, "body")
    # A folder in the reader: a text only, as a typeless outline should have.
    group = ElementTree.SubElement(body, "outline", text=site.title)
    for tag in sorted(listed, key=lambda tag: tag.slug):
        title = feed_title(site, tag)
        ElementTree.SubElement(
            group,
            "outline",
            type="rss",
            text=title,
            title=title,
            xmlUrl=site.feed_url(tag.slug, "atom"),
            htmlUrl=site.page_url(tag.slug),
            language=site.lang,
        )
    ElementTree.indent(root)
    data = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return Output(OPML_PATH, data + b"\n", OPML_TYPE)
