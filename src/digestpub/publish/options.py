"""What a publish run may be asked to do differently: the settings it takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from digestpub.publish.parallel import default_workers
from digestpub.publish.websub import HubPolicy

if TYPE_CHECKING:
    from digestpub.ports import ObjectStore
    from digestpub.render import Output
    from digestpub.site import Site


@dataclass(frozen=True)
class SitePart:
    """Files another capability keeps on the published site, such as the newsletter's archive.

    That capability writes them when they change; a publish run writes them only
    while its state has no record of ``marker``, so a new or rebuilt site has them.
    """

    marker: str
    """The path of one of the files."""
    files: Callable[[Site, ObjectStore], list[Output]]
    """The files, from the site and the state store."""


@dataclass(frozen=True)
class PublishOptions:
    lookback_days: int = 2
    full_scan_every: timedelta = timedelta(hours=24)
    full_scan: bool = False
    rebuild: bool = False
    lock_ttl: timedelta = timedelta(minutes=15)
    lock_wait: timedelta = timedelta(minutes=2)
    max_summary_bytes: int = 65_536
    max_object_bytes: int = 1_048_576
    feed_cache_control: str = "public, max-age=300"
    page_cache_control: str = "public, max-age=300"
    archive_cache_control: str = "public, max-age=604800"
    archive_page_size: int = 50
    """Used at a site's first run only: the state keeps the size its pages were cut with."""
    correction_days: float = 7.0
    workers: int = field(default_factory=default_workers)
    hub_policy: HubPolicy = field(default_factory=HubPolicy)
    site_parts: tuple[SitePart, ...] = ()
    keys: tuple[str, ...] = ()
    """Source keys to read whatever their day (S3 events, ``--keys``): summary keys, relative to the source."""
