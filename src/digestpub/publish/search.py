"""The site's search index: one record per summary, kept in the state, and the Pagefind bundle built from them.

Pagefind builds an index from all its records at once. So that a run never
reads the history from the source again, what a record needs (title, plain
text, tags, authors, language, date, place in the feed of everything) is kept
in the state, in shards of ``_SHARD_POSITIONS`` consecutive places of that feed:
new summaries join the newest shard, so a run rewrites one or two. After the
state is committed a run that changed records builds the bundle again and
writes the files whose bytes changed (the chunks and fragments are named by
their content), then deletes those no longer part of it. A bundle that failed
is built by the next run: the search head remembers the records it was built from.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from digestpub.errors import SearchIndexError
from digestpub.model import PublishReport, Summary
from digestpub.ports import ObjectStore
from digestpub.publish.pagefind import PagefindRecord, build_bundle
from digestpub.site import ALL_FEED, SEARCH_FOLDER, Site, search_content_type
from digestpub.text import plain_text

log = logging.getLogger("digestpub.publish")

SEARCH_HEAD_KEY = "search/head.json"
_SHARD_PREFIX = "search/records/"
_SHARD_POSITIONS = 1_000
"""Places of the feed of everything per shard of records."""
_SERVED_FILES = ("pagefind.js", "pagefind-worker.js", "pagefind-entry.json")
"""The bundle's own files the search box uses; its stock interfaces (``pagefind-ui.js`` and the like) stay out."""
_SERVED_SUFFIXES = (".pf_meta", ".pf_index", ".pf_fragment", ".pagefind")
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
    """The records in the state: a head (each shard's checksum, and those the bundle was last built from)."""

    def __init__(self, state: ObjectStore) -> None:
        self._state = state
        found = state.read(SEARCH_HEAD_KEY)
        head = orjson.loads(found[0]) if found else {}
        self.shards: dict[str, str] = head.get("shards", {})
        self.built: str | None = head.get("built")
        self.built_at: str | None = head.get("built_at")
        self.files: dict[str, str] = head.get("files", {})
        """Each file of the bundle as last written, by path under ``SEARCH_FOLDER``: its hash."""

    @property
    def generation(self) -> str:
        return hashlib.sha256(orjson.dumps(self.shards, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]

    @property
    def stale(self) -> bool:
        return self.built != self.generation

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
            if not records:
                self._state.delete(_SHARD_PREFIX + shard)
                self.shards.pop(shard, None)
                continue
            data = zlib.compress(orjson.dumps(records), 6)
            self._state.put(_SHARD_PREFIX + shard, data, content_type="application/octet-stream")
            self.shards[shard] = hashlib.sha256(data).hexdigest()[:32]
        if touched:
            self._save()

    def all(self) -> Iterable[tuple[str, int, SearchText]]:
        for shard in sorted(self.shards):
            for summary_id, (position, title, text, lang, date, tags, authors) in self._load(shard).items():
                yield summary_id, position, SearchText(title, text, lang, date, tuple(tags), tuple(authors))

    def mark_built(self, generation: str, files: dict[str, str], now: datetime) -> None:
        self.built, self.built_at, self.files = generation, now.isoformat(), files
        self._save()

    def _load(self, shard: str) -> dict[str, list[Any]]:
        found = self._state.read(_SHARD_PREFIX + shard)
        if found is None:
            if shard in self.shards:
                # Runs go on without them: what the index lost, `publish --rebuild` reads again.
                log.warning("search records %s are gone: their summaries are not found until a --rebuild", shard)
            return {}
        loaded: dict[str, list[Any]] = orjson.loads(zlib.decompress(found[0]))
        return loaded

    def _save(self) -> None:
        head = {"shards": self.shards, "built": self.built, "built_at": self.built_at, "files": self.files}
        self._state.put(SEARCH_HEAD_KEY, orjson.dumps(head, option=orjson.OPT_SORT_KEYS))


def _shard(position: int) -> str:
    return f"{position // _SHARD_POSITIONS:05d}"


def due(records: SearchRecords, every: timedelta, now: datetime) -> bool:
    """Whether this run brings the index up to date: records changed since it was built, and it is time."""
    if not records.stale:
        return False
    if not every or records.built_at is None:
        return True
    return now - datetime.fromisoformat(records.built_at) >= every


def refresh(
    records: SearchRecords,
    dest: ObjectStore,
    site: Site,
    page_of: Callable[[int], int],
    cache_control: str,
    report: PublishReport,
) -> None:
    """Build the bundle from every record and write what changed; a failure is reported, never raised."""
    generation = records.generation
    # In the order of the feed of everything: the same records give the same files.
    ordered = sorted(records.all(), key=lambda record: (record[1], record[0]))
    try:
        built = build_bundle(
            [pagefind_record(site, summary_id, page_of(place), text) for summary_id, place, text in ordered]
        )
        written = write_bundle(dest, built, records.files, cache_control)
    except SearchIndexError as error:
        report.search_failure = str(error)
        log.error("search index not updated, the next run tries again: %s", error)
        return
    report.search_files_written = written.count
    report.search_bytes_written = written.bytes
    records.mark_built(generation, written.hashes, datetime.now(UTC))


@dataclass
class BundleWrite:
    hashes: dict[str, str]
    count: int = 0
    bytes: int = 0


def write_bundle(
    dest: ObjectStore, built: Mapping[str, bytes], before: Mapping[str, str], cache_control: str
) -> BundleWrite:
    """The bundle's files whose bytes changed, then the deletion of those it no longer has.

    New files first: a page that loaded the old ``pagefind-entry.json`` still finds its chunks meanwhile.
    """
    served = {path: data for path, data in built.items() if path in _SERVED_FILES or path.endswith(_SERVED_SUFFIXES)}
    done = BundleWrite({path: hashlib.sha256(data).hexdigest()[:32] for path, data in served.items()})
    # The entry file names the current chunks: it goes last, once they are all there.
    for path in sorted(served, key=lambda path: path == "pagefind-entry.json"):
        if before.get(path) == done.hashes[path]:
            continue
        dest.put(
            SEARCH_FOLDER + path, served[path], content_type=search_content_type(path), cache_control=cache_control
        )
        done.count += 1
        done.bytes += len(served[path])
    for path in sorted(set(before) - set(served)):
        dest.delete(SEARCH_FOLDER + path)
    return done
