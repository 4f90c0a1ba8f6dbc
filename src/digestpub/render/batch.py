"""The summaries whose entries a run renders together, and what several kinds share of them."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from digestpub.model import Summary
from digestpub.site import Site

if TYPE_CHECKING:
    from feedgen.entry import FeedEntry


class EntryBatch:
    """Summaries rendered together, with what several kinds use computed once.

    One step at a time over the whole batch, not one summary at a time: the
    Markdown parser, the sanitiser, lxml and Jinja each keep their code and
    tables warm in the CPU's caches that way, and a cold run renders its
    entries in less CPU time.
    """

    def __init__(self, site: Site, summaries: Sequence[Summary]) -> None:
        self.site = site
        self.summaries = summaries

    @cached_property
    def html(self) -> list[str]:
        return [summary.summary_html for summary in self.summaries]

    @cached_property
    def feedgen_entries(self) -> list[FeedEntry]:
        """feedgen's entries, which the RSS and Atom kinds serialise each their own way."""
        return [
            _feedgen_entry(self.site, summary, html) for summary, html in zip(self.summaries, self.html, strict=True)
        ]


def _feedgen_entry(site: Site, summary: Summary, html: str) -> FeedEntry:
    from feedgen.entry import FeedEntry  # with the first entry: a run with nothing to render never loads feedgen

    entry = FeedEntry()
    # id() and guid() share one field in feedgen: set it once, as a non-permalink guid.
    entry.guid(site.entry_id(summary.id), permalink=False)
    entry.title(summary.title)
    entry.link(href=summary.url)
    entry.published(summary.published_at)
    entry.updated(summary.version)
    entry.content(html, type="html")
    for author in summary.authors:
        entry.author({"name": author})
    for name, slug in zip(summary.tags, summary.tag_slugs, strict=True):
        entry.category(term=slug, label=name, scheme=site.url("tags/"))
    return entry
