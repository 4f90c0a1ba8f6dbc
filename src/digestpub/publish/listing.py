"""Which source objects a run reads, and reading them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from digestpub.ingest import summary_key
from digestpub.model import ObjectInfo
from digestpub.ports import ObjectStore
from digestpub.publish.plan import listing_start
from digestpub.state.catalog import Catalog

log = logging.getLogger("digestpub.publish")

Progress = Callable[[str, int, int], None]
"""Called as ``(stage, done, total)`` while a run works, for progress bars."""

_IO_THREADS = 16


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
    listing.changed += [ObjectInfo(key=key, etag="") for key in dict.fromkeys(named) if key not in known]
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


def fetch(
    source: ObjectStore, catalog: Catalog, infos: list[ObjectInfo], progress: Progress
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The bytes of each object still there, and the keys of those that are not.

    From a pool of threads where each read waits on a network; in order from a
    local folder, where a pool made reading 20,000 files eight times slower
    (the GIL and the pool's locks, not the disk).
    """
    fetched: list[tuple[str, bytes]] = []
    missing: list[str] = []
    total = len(infos)
    keys = [info.key for info in infos]
    threads = 1 if getattr(source, "is_local", False) else _IO_THREADS
    with ThreadPoolExecutor(threads, thread_name_prefix="digestpub-read") as pool:
        reads = map(source.read, keys) if threads == 1 else pool.map(source.read, keys)
        for done, (info, found) in enumerate(zip(infos, reads, strict=True), start=1):
            if found is None:  # deleted since it was listed, or named and not there
                missing.append(info.key)
            else:
                # Seen is recorded with the version actually read, so a rewrite between
                # listing and reading is not mistaken for the listed version.
                catalog.mark_seen(info.key[:10], info.key, found[1])
                fetched.append((info.key, found[0]))
            if done % 256 == 0 or done == total:
                progress("reading", done, total)
    return fetched, missing


def fetch_with_copies(
    source: ObjectStore, catalog: Catalog, listing: Listing, progress: Progress
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The bytes of each object ``listing`` names that is still there, and the keys of those gone.

    Another object that held a gone object's ids (a copy, an older version) is
    read too: the newest version left is then published in its place.
    """
    fetched, missing = fetch(source, catalog, listing.changed, progress)
    gone = [*listing.gone, *missing]
    held = {summary_id for key in gone for summary_id in catalog.held(key)}
    copies = catalog.holders(held, {key for key, _ in fetched} | set(gone))
    if not copies:
        return fetched, gone
    more, more_missing = fetch(source, catalog, [ObjectInfo(key=key, etag="") for key in copies], progress)
    return fetched + more, gone + more_missing
