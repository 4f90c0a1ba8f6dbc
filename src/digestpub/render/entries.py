"""Each summary's entry in every output kind, rendered once, when it enters a feed.

A feed file or page is a frame (``render.Frame``) around the entries of its
newest summaries; later runs cut the entries they keep out of the published
files (see ``state.parts.PublishedFile``), so a run renders only the summaries
it read, never the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise

from digestpub.model import Summary
from digestpub.render.batch import EntryBatch
from digestpub.render.registry import all_kinds
from digestpub.site import Site

ENTRY_REVISION = 2
"""Raised whenever an entry renderer or ``text`` writes other bytes for the same summary.

Part of the rendering fingerprint (``publish.fingerprint``): a run after the change
renders every feed again instead of keeping entries in the old form beside new ones.
2: authors as dc:creator in RSS; links whose target was refused become text.
"""


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
    if not summaries:  # a run with nothing new: its renderers (lxml, feedgen) need not load
        return EntryPack([], {})
    batch = EntryBatch(site, summaries)
    texts = {kind.name: kind.entries(batch) for kind in all_kinds()}
    return EntryPack([summary.id for summary in summaries], texts)
