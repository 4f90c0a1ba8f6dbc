"""Which source objects a run reads, and reading them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from digestpub.ingest import refused_key, summary_key
from digestpub.model import ObjectInfo, Problem
from digestpub.ports import ObjectStore
from digestpub.publish.plan import listing_start
from digestpub.state.catalog import Catalog

log = logging.getLogger("digestpub.publish")

Progress = Callable[[str, int, int], None]
"""Called as ``(stage, done, total)`` while a run works, for progress bars."""

ReadObjects = Callable[[list[str], list[int]], dict[str, str | None]]
"""``read(keys, sizes)``: reads the objects at ``keys`` (listed as ``sizes`` bytes) and
returns the version read of each, ``None`` for one that is gone."""


def full_scan_due(catalog: Catalog, now: datetime, every: timedelta) -> bool:
    last = catalog.head.last_full_scan
    return catalog.head.cursor is None or last is None or now - last >= every


@dataclass
class Listing:
    """What a run reads, and what it found gone without reading."""

    changed: list[ObjectInfo] = field(default_factory=list)
    """Objects whose version differs from the one seen last, and the keys the run was named."""
    gone: list[str] = field(default_factory=list)
    """Keys the state has seen that the listing no longer holds."""
    refused: list[Problem] = field(default_factory=list)
    """Summary keys not read for their name (not UTF-8, control characters): reported, never kept."""


def list_changed(
    source: ObjectStore,
    catalog: Catalog,
    *,
    full: bool,
    lookback_days: int,
    progress: Progress,
    named: Iterable[str] = (),
) -> Listing:
    """Summary objects whose version differs from the one seen last, and those gone since.

    ``full`` lists the whole source; otherwise the last ``lookback_days`` days
    of it, and only objects of those days can be found gone. ``named`` keys
    (from S3 events or ``--keys``) are read whatever their day; one that is
    missing is found gone when it is read.
    """
    start_after = None if full else listing_start(catalog.head.cursor, lookback_days)
    progress("listing", 0, 0)
    listing = Listing()
    listed: set[str] = set()
    newest_day = catalog.head.cursor
    for info in source.list(start_after=start_after):
        found = summary_key(info.key)
        if found is None:
            continue
        if refused := refused_key(info.key):
            listing.refused.append(refused)
            continue
        listed.add(info.key)
        day = found[0]
        if newest_day is None or day > newest_day:
            newest_day = day
        seen = catalog.seen(day).get(info.key)
        if seen is None or seen[0] != info.etag:
            listing.changed.append(info)
    catalog.set_cursor(newest_day)
    first_month = None if start_after is None else start_after[:7]
    for month in catalog.seen_months():
        if first_month is None or month >= first_month:
            listing.gone += [
                key for key in catalog.seen(month) if key not in listed and (start_after is None or key > start_after)
            ]
    if listing.gone and not listed:
        # Everything gone at once is far likelier a wrong or empty source than an
        # upstream that deleted it all: it would take the whole site down.
        log.warning(
            "%s lists no summary where the state saw %d: none is taken for deleted; "
            "name deleted keys with --keys, or publish --rebuild from the source as it is",
            source.url,
            len(listing.gone),
        )
        listing.gone = []
    # No version to compare: a named key is read, and an unchanged one costs a read.
    known = listed.union(listing.gone)
    for key in dict.fromkeys(named):
        if refused := refused_key(key):
            listing.refused.append(refused)
        elif key not in known:
            listing.changed.append(ObjectInfo(key=key, etag=""))
    return listing


def named_keys(keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """Keys as named (``--keys``, events) split into summary keys and others, each once, in order."""
    unique = list(dict.fromkeys(stripped for key in keys if (stripped := key.strip())))
    found = [key for key in unique if summary_key(key) is not None]
    return found, [key for key in unique if summary_key(key) is None]


def source_keys(located: Iterable[tuple[str, str]], source: str) -> tuple[list[str], list[str]]:
    """The keys, relative to ``source`` (``s3://bucket/prefix``), of objects named as ``(bucket, key)``.

    Returns them and the objects outside the source, as ``s3://bucket/key``.
    """
    parts = urlsplit(source)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    inside: list[str] = []
    outside: list[str] = []
    for where, key in located:
        if source.startswith("s3://") and where == bucket and key.startswith(prefix):
            inside.append(key.removeprefix(prefix))
        else:
            outside.append(f"s3://{where}/{key}")
    return inside, outside


def read_with_copies(read: ReadObjects, catalog: Catalog, listing: Listing) -> tuple[list[str], list[str]]:
    """Read the objects ``listing`` names that are still there; returns their keys, and the keys of those gone.

    Another object that held a gone object's ids (a copy, an older version) is
    read too: the newest version left is then published in its place.
    """
    found, missing = _read_marking_seen(read, catalog, listing.changed)
    gone = [*listing.gone, *missing]
    held = {summary_id for key in gone for summary_id in catalog.held(key)}
    copies = catalog.holders(held, set(found) | set(gone))
    if not copies:
        return found, gone
    more, more_missing = _read_marking_seen(read, catalog, [ObjectInfo(key=key, etag="") for key in copies])
    return found + more, gone + more_missing


def _read_marking_seen(read: ReadObjects, catalog: Catalog, infos: list[ObjectInfo]) -> tuple[list[str], list[str]]:
    versions = read([info.key for info in infos], [info.size for info in infos])
    found: list[str] = []
    missing: list[str] = []  # deleted since it was listed, or named and not there
    for info in infos:
        version = versions[info.key]
        if version is None:
            missing.append(info.key)
        else:
            # Seen is recorded with the version actually read, so a rewrite between
            # listing and reading is not mistaken for the listed version.
            catalog.mark_seen(info.key[:10], info.key, version)
            found.append(info.key)
    return found, missing
