"""The search index in ``dest``: one Pagefind bundle per group of record shards, and the list of them.

A run builds again only the bundles whose records changed (new summaries: the
newest group; an edit or a deletion: its summary's group), writes the files
whose bytes changed (the chunks and fragments are named by their content) and
deletes those no longer part of its bundle. The list (``bundles.json``) is
written last, once every bundle it names is there; a group with no records
left loses its bundle after the list stops naming it. The search box loads one
bundle and merges the others, so its results are ranked across them all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from digestpub.errors import SearchIndexError
from digestpub.model import PublishReport
from digestpub.ports import ObjectStore
from digestpub.publish.pagefind import ENTRY_FILE, build_bundle
from digestpub.publish.search import SearchRecords, pagefind_record
from digestpub.render import digest_of
from digestpub.site import SEARCH_FOLDER, Site, search_content_type

log = logging.getLogger("digestpub.publish")

BUNDLES_LIST = "bundles.json"
"""The bundles the box merges, newest first, with each one's languages: under ``SEARCH_FOLDER``."""
_SERVED_FILES = ("pagefind.js", "pagefind-worker.js", ENTRY_FILE)
"""The bundle's own files the search box uses; its stock interfaces (``pagefind-ui.js`` and the like) stay out."""
_SERVED_SUFFIXES = (".pf_meta", ".pf_index", ".pf_fragment", ".pagefind")


@dataclass(frozen=True, slots=True)
class CacheControls:
    bundle: str
    """The bundles' files: their entry file names the chunks of the moment."""
    listing: str
    """The list of bundles: short, like the feeds'."""


def refresh(
    records: SearchRecords,
    dest: ObjectStore,
    site: Site,
    page_of: Callable[[int], int],
    cache: CacheControls,
    report: PublishReport,
) -> None:
    """Build the bundles whose records changed and write what changed; a failure is reported, never raised."""
    stale = records.stale()
    try:
        for group, generation in stale.items():
            if generation is not None:
                records.mark_built(group, _build(records, group, generation, dest, site, page_of, cache, report))
    except SearchIndexError as error:
        report.search_failure = str(error)
        log.error("search index not updated, the next run tries again: %s", error)
    listed = _write_list(records, dest, cache.listing, report)
    for group, generation in stale.items():
        if generation is None:
            _delete(dest, _folder(group), records.bundles[group]["files"])
            records.mark_built(group, None)
    done = report.search_failure is None
    if done:
        # A site of the old layout: its one bundle at the top goes once the groups are all there.
        _delete(dest, SEARCH_FOLDER, records.unmoved)
    records.mark_done(listed, datetime.now(UTC) if done else None)


def _build(
    records: SearchRecords,
    group: str,
    generation: str,
    dest: ObjectStore,
    site: Site,
    page_of: Callable[[int], int],
    cache: CacheControls,
    report: PublishReport,
) -> dict[str, Any]:
    # In the order of the feed of everything: the same records give the same files.
    ordered = sorted(records.of_group(group), key=lambda record: (record[1], record[0]))
    built = build_bundle(
        [pagefind_record(site, summary_id, page_of(place), text) for summary_id, place, text in ordered]
    )
    before = records.bundles.get(group, {}).get("files", {})
    written = write_bundle(dest, _folder(group), built, before, cache.bundle)
    report.search_files_written += written.count
    report.search_bytes_written += written.bytes
    languages = orjson.loads(built[ENTRY_FILE]).get("languages", {}) if ENTRY_FILE in built else {}
    counts = {language: index.get("page_count", 0) for language, index in languages.items()}
    return {"built": generation, "files": written.hashes, "languages": counts}


def _write_list(records: SearchRecords, dest: ObjectStore, cache_control: str, report: PublishReport) -> str | None:
    """``bundles.json``, when the bundles or their languages changed; its hash (None while there is none)."""
    current = records.generations()
    listing = [
        {"name": group, "languages": records.bundles[group]["languages"]}
        for group in sorted(records.bundles, reverse=True)
        if group in current
    ]
    if not listing and records.listed is None:
        return None
    data = orjson.dumps({"bundles": listing}, option=orjson.OPT_SORT_KEYS)
    digest = digest_of(data)
    if digest != records.listed:
        path = SEARCH_FOLDER + BUNDLES_LIST
        dest.put(path, data, content_type=search_content_type(path), cache_control=cache_control)
        report.search_files_written += 1
        report.search_bytes_written += len(data)
    return digest


def _folder(group: str) -> str:
    return f"{SEARCH_FOLDER}{group}/"


def _delete(dest: ObjectStore, folder: str, files: Iterable[str]) -> None:
    for path in sorted(files):
        dest.delete(folder + path)


@dataclass
class BundleWrite:
    hashes: dict[str, str]
    count: int = 0
    bytes: int = 0


def write_bundle(
    dest: ObjectStore, folder: str, built: Mapping[str, bytes], before: Mapping[str, str], cache_control: str
) -> BundleWrite:
    """The bundle's files whose bytes changed, then the deletion of those it no longer has.

    New files first: a page that loaded the old ``pagefind-entry.json`` still finds its chunks meanwhile.
    """
    served = {path: data for path, data in built.items() if path in _SERVED_FILES or path.endswith(_SERVED_SUFFIXES)}
    done = BundleWrite({path: digest_of(data) for path, data in served.items()})
    # The entry file names the current chunks: it goes last, once they are all there.
    for path in sorted(served, key=lambda path: path == ENTRY_FILE):
        if before.get(path) == done.hashes[path]:
            continue
        dest.put(folder + path, served[path], content_type=search_content_type(path), cache_control=cache_control)
        done.count += 1
        done.bytes += len(served[path])
    _delete(dest, folder, set(before) - set(served))
    return done
