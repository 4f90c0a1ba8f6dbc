"""Which source objects a run reads, and reading them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from digestpub.model import ObjectInfo, Problem
from digestpub.ports import ObjectStore
from digestpub.publish.ingest import refused_key, summary_key
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
    newest_day: str | None = None
    """The newest day (``YYYY/MM/DD``) of a summary key seen so far: where the next listing starts from."""
    refused: list[Problem] = field(default_factory=list)
    """Summary keys not read for their name (not UTF-8, control characters): reported, never kept."""


@dataclass
class Read:
    """What reading the objects of a listing found."""

    versions: dict[str, str] = field(default_factory=dict)
    """The version read of each object still there, by key: what the state records as seen."""
    gone: list[str] = field(default_factory=list)
    """Keys of objects gone: listed gone, deleted since listed, or named and not there."""


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
    listing.newest_day = catalog.head.cursor
    for info in source.list(start_after=start_after):
        found = summary_key(info.key)
        if found is None:
            continue
        if refused := refused_key(info.key):
            listing.refused.append(refused)
            continue
        listed.add(info.key)
        day = found[0]
        if listing.newest_day is None or day > listing.newest_day:
            listing.newest_day = day
        seen = catalog.seen.objects(day).get(info.key)
        if seen is None or seen[0] != info.etag:
            listing.changed.append(info)
    first_month = None if start_after is None else start_after[:7]
    for month in catalog.seen.months():
        if first_month is None or month >= first_month:
            listing.gone += [
                key
                for key in catalog.seen.objects(month)
                if key not in listed and (start_after is None or key > start_after)
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


def read_with_copies(read: ReadObjects, catalog: Catalog, listing: Listing) -> Read:
    """Read the objects ``listing`` names that are still there.

    Another object that held a gone object's ids (a copy, an older version) is
    read too: the newest version left is then published in its place.
    """
    result = _read(read, listing.changed)
    result.gone[:0] = listing.gone
    held = {summary_id for key in result.gone for summary_id in catalog.seen.held(key)}
    copies = catalog.seen.holders(held, set(result.versions) | set(result.gone))
    if copies:
        more = _read(read, [ObjectInfo(key=key, etag="") for key in copies])
        result.versions |= more.versions
        result.gone += more.gone
    return result


def _read(read: ReadObjects, infos: list[ObjectInfo]) -> Read:
    versions = read([info.key for info in infos], [info.size for info in infos])
    result = Read()
    for info in infos:
        version = versions[info.key]
        if version is None:
            result.gone.append(info.key)  # deleted since it was listed, or named and not there
        else:
            # The version actually read, so a rewrite between listing and reading
            # is not mistaken for the listed version.
            result.versions[info.key] = version
    return result
