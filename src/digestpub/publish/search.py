"""The site's search index: one record per summary, kept in the state, and the Pagefind bundles built from them.

Pagefind builds a bundle from all its records at once. So that a run never
reads the history from the source again, what a record needs (title, plain
text, tags, authors, language, date, place in the feed of everything) is kept
in the state, in shards of ``_SHARD_POSITIONS`` consecutive places of that feed:
new summaries join the newest shard, so a run rewrites one or two. Each group
of ``_GROUP_SHARDS`` shards is one bundle, so a run builds again only the
bundles whose shards it changed (``search_bundles``). The search head
remembers what each bundle was built from: one that failed is built by the
next run.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from digestpub.model import Summary
from digestpub.ports import ObjectStore
from digestpub.publish.pagefind import PagefindRecord
from digestpub.site import ALL_FEED, Site
from digestpub.state.parts import checksum
from digestpub.text import plain_text

log = logging.getLogger("digestpub.publish")

SEARCH_HEAD_KEY = "search/head.json"
_SHARD_PREFIX = "search/records/"
_SHARD_POSITIONS = 1_000
"""Places of the feed of everything per shard of records."""
_GROUP_SHARDS = 1
"""Shards per bundle. A run builds the newest bundle again for a few new summaries, and an edit its own:
the smaller a bundle the cheaper that is, while the box merges one more index per bundle in a search."""
SEARCH_EVERY = {"every-run": timedelta(0), "hourly": timedelta(hours=1), "daily": timedelta(days=1)}
"""How often a run with changed records brings the index up to date, by the ``search`` setting."""


@dataclass(frozen=True, slots=True)
class SearchText:
    """What the index holds of one summary, besides where its card is."""

    title: str
    text: str
    lang: str
    date: str
    tags: tuple[str, ...]
    authors: tuple[str, ...]


def search_text(site: Site, summary: Summary) -> SearchText:
    """A summary's words as plain text: its HTML is already sanitised, so no markup reaches the index."""
    return SearchText(
        summary.title,
        plain_text(summary.summary_html),
        summary.lang.split("-")[0].lower() or site.lang,
        site.local(summary.published_at).strftime("%Y-%m-%d"),
        summary.tags,
        summary.authors,
    )


def card_url(site: Site, summary_id: str, page: int) -> str:
    """The summary's card on the web page of its ``page`` in the feed of everything: that URL never moves."""
    return f"{site.path_url(site.page_path(ALL_FEED, page))}#{site.card_anchor(summary_id)}"


def pagefind_record(site: Site, summary_id: str, page: int, text: SearchText) -> PagefindRecord:
    words = [text.title, text.text, " ".join(text.tags), " ".join(text.authors)]
    meta = {"title": text.title, "date": text.date}
    if text.tags:
        meta["tags"] = ", ".join(text.tags)
    return PagefindRecord(card_url(site, summary_id, page), "\n".join(words), text.lang, meta)


@dataclass
class SearchChanges:
    """What a run changes in the index: records added or replaced (their place and text), ids gone."""

    placed: dict[str, tuple[int, SearchText]] = field(default_factory=dict)
    gone: dict[str, int] = field(default_factory=dict)
    """Each deleted id's place in the feed of everything: it names the shard that held it."""
    fresh: bool = False
    """The run reads every summary again (a rebuild, new settings or templates): records start empty."""


class SearchRecords:
    """The records in the state: a head (each shard's checksum, and what each bundle was last built from)."""

    def __init__(self, state: ObjectStore) -> None:
        self._state = state
        found = state.read(SEARCH_HEAD_KEY)
        head = orjson.loads(found[0]) if found else {}
        self.shards: dict[str, str] = head.get("shards", {})
        self.bundles: dict[str, dict[str, Any]] = head.get("bundles", {})
        """Each group's bundle as last written: the generation of its shards, its files' hashes, its languages."""
        self.built_at: str | None = head.get("built_at")
        self.listed: str | None = head.get("listed")
        """The hash of the list of bundles as last written."""
        self.unmoved: dict[str, str] = head.get("unmoved", head.get("files", {}))
        """The files of an index of one bundle at the top of ``SEARCH_FOLDER``, as sites had it: gone once moved."""
        self._loaded: dict[str, dict[str, list[Any]]] = {}
        """Shards this run read or wrote: the bundles are built from the same records after the commit."""

    def generations(self) -> dict[str, str]:
        """Each group of shards that holds records, by name: the checksum of its shards' checksums."""
        groups: dict[str, dict[str, str]] = {}
        for shard, sums in self.shards.items():
            groups.setdefault(group_of(shard), {})[shard] = sums
        return {group: _checksum(shards) for group, shards in groups.items()}

    def stale(self) -> dict[str, str | None]:
        """The groups whose bundle is not built from their records: each one's generation, None once it has none."""
        current = self.generations()
        changed: dict[str, str | None] = {
            group: generation
            for group, generation in current.items()
            if self.bundles.get(group, {}).get("built") != generation
        }
        changed.update({group: None for group in self.bundles if group not in current})
        return dict(sorted(changed.items()))

    def apply(self, changes: SearchChanges) -> None:
        """Write the shards ``changes`` touch, then the head: before the run's state is committed."""
        touched: dict[str, dict[str, list[Any]]] = {}
        if changes.fresh:
            touched = {shard: {} for shard in self.shards}
        for summary_id, position in changes.gone.items():
            shard = _shard(position)
            records = touched.setdefault(shard, {} if changes.fresh else self._load(shard))
            records.pop(summary_id, None)
        for summary_id, (position, text) in changes.placed.items():
            shard = _shard(position)
            records = touched.setdefault(shard, {} if changes.fresh else self._load(shard))
            records[summary_id] = [position, text.title, text.text, text.lang, text.date, text.tags, text.authors]
        for shard, records in sorted(touched.items()):
            self._loaded[shard] = records
            if not records:
                self._state.delete(_SHARD_PREFIX + shard)
                self.shards.pop(shard, None)
                continue
            data = zlib.compress(orjson.dumps(records), 6)
            self._state.put(_SHARD_PREFIX + shard, data, content_type="application/octet-stream")
            self.shards[shard] = checksum(data)
        if touched:
            self._save()

    def of_group(self, group: str) -> Iterable[tuple[str, int, SearchText]]:
        for shard in sorted(shard for shard in self.shards if group_of(shard) == group):
            for summary_id, (position, title, text, lang, date, tags, authors) in self._load(shard).items():
                yield summary_id, position, SearchText(title, text, lang, date, tuple(tags), tuple(authors))

    def mark_built(self, group: str, bundle: dict[str, Any] | None) -> None:
        """Remember ``group``'s bundle as written (None: deleted), at once: a later group may fail."""
        if bundle is None:
            self.bundles.pop(group, None)
        else:
            self.bundles[group] = bundle
        self._save()

    def mark_done(self, listed: str | None, now: datetime | None) -> None:
        """The list of bundles as written; ``now`` once every bundle is built and the old layout gone."""
        self.listed = listed
        if now is not None:
            self.built_at, self.unmoved = now.isoformat(), {}
        self._save()

    def _load(self, shard: str) -> dict[str, list[Any]]:
        if shard in self._loaded:
            return self._loaded[shard]
        found = self._state.read(_SHARD_PREFIX + shard)
        if found is None:
            if shard in self.shards:
                # Runs go on without them: what the index lost, `publish --rebuild` reads again.
                log.warning("search records %s are gone: their summaries are not found until a --rebuild", shard)
            return {}
        loaded: dict[str, list[Any]] = orjson.loads(zlib.decompress(found[0]))
        self._loaded[shard] = loaded
        return loaded

    def _save(self) -> None:
        head = {
            "shards": self.shards,
            "bundles": self.bundles,
            "built_at": self.built_at,
            "listed": self.listed,
            "unmoved": self.unmoved,
        }
        self._state.put(SEARCH_HEAD_KEY, orjson.dumps(head, option=orjson.OPT_SORT_KEYS))


def group_of(shard: str) -> str:
    """The bundle a shard's records are in: ``_GROUP_SHARDS`` consecutive shards make one."""
    return f"{int(shard) // _GROUP_SHARDS:05d}"


def _checksum(value: object) -> str:
    return checksum(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def _shard(position: int) -> str:
    return f"{position // _SHARD_POSITIONS:05d}"


def due(records: SearchRecords, every: timedelta, now: datetime) -> bool:
    """Whether this run brings the index up to date: records changed since it was built, and it is time."""
    if records.unmoved:
        return True  # the box looks for the bundles where the old layout has none
    if not records.stale():
        return False
    if not every or records.built_at is None:
        return True
    return now - datetime.fromisoformat(records.built_at) >= every
