"""Each summary's entry in every output kind, rendered once, when it enters a feed.

A feed file or page is a frame (``render.Frame``) around the entries of its
newest summaries; later runs cut the entries they keep out of the published
files (see ``state.parts.PublishedFile``), so a run renders only the summaries
it read, never the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from itertools import pairwise

from feedgen.entry import FeedEntry

from digestpub.model import Summary
from digestpub.render.kinds import all_kinds
from digestpub.site import Site

ENTRY_REVISION = 2
"""Raised whenever an entry renderer or ``text`` writes other bytes for the same summary.

Part of the rendering fingerprint (``publish.fingerprint``): a run after the change
renders every feed again instead of keeping entries in the old form beside new ones.
2: authors as dc:creator in RSS; links whose target was refused become text.
"""


class EntryBatch:
    """Summaries rendered together, with what several kinds use computed once.

    One step at a time over the whole batch, not one summary at a time: the
    Markdown parser, the sanitiser, lxml and Jinja each keep their code and
    tables warm in the CPU's caches that way, and a cold run renders its
    entries in about three quarters of the CPU time.
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


class EntryPack:
    """Many entries' bytes, of every kind, in one buffer, with where each entry's texts are.

    A cold run holds the entries of its 18,000 shown summaries while forked
    workers write the feeds. In a few large buffers, the workers read them
    without touching (and so copying) a page per entry, and they cross from the
    process that rendered them as one copy.
    """

    __slots__ = ("_bounds", "_buffer", "_kinds")

    def __init__(self, ids: Sequence[str], texts: Mapping[str, Sequence[bytes]]) -> None:
        self._kinds = tuple(texts)
        rows = list(zip(*(texts[kind] for kind in self._kinds), strict=True)) if texts else []
        self._buffer = b"".join(text for row in rows for text in row)
        self._bounds: dict[str, tuple[int, ...]] = {}
        start = 0
        for summary_id, row in zip(ids, rows, strict=True):
            bounds = [start]
            for text in row:
                start += len(text)
                bounds.append(start)
            self._bounds[summary_id] = tuple(bounds)

    def ids(self) -> Iterable[str]:
        return self._bounds.keys()

    def texts(self, summary_id: str) -> dict[str, memoryview]:
        """The entry's text of each kind, by kind name, as views into the buffer."""
        view = memoryview(self._buffer)
        return {
            kind: view[start:end]
            for kind, (start, end) in zip(self._kinds, pairwise(self._bounds[summary_id]), strict=True)
        }


def render_entries(site: Site, summaries: Sequence[Summary]) -> EntryPack:
    """Each summary's entry of every kind."""
    batch = EntryBatch(site, summaries)
    texts = {kind.name: kind.entries(batch) for kind in all_kinds()}
    return EntryPack([summary.id for summary in summaries], texts)
