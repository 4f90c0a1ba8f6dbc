"""The OPML 2.0 list of every tag feed, for a one-step import into a reader."""

from __future__ import annotations

from collections.abc import Iterable
from xml.etree import ElementTree

from digestpub.model import TagInfo
from digestpub.render import Output, feed_formats
from digestpub.render.feeds import feed_title
from digestpub.render.page import listed_tags
from digestpub.site import OPML_PATH, OPML_TYPE, Site


def render_opml(site: Site, tags: Iterable[TagInfo]) -> Output:
    """One outline per tag feed that still has summaries."""
    listed = listed_tags(tags)
    kind = feed_formats.preferred()
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
            type="rss",  # OPML's word for any feed
            text=title,
            title=title,
            xmlUrl=kind.url(site, tag.slug),
            htmlUrl=site.page_url(tag.slug),
            language=site.lang,
        )
    ElementTree.indent(root)
    data = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return Output(OPML_PATH, data + b"\n", OPML_TYPE)
