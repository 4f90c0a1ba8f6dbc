"""Telling the WebSub hubs of the feeds a run changed, once its state is committed, even if that run was stopped.

The head records what a committing run has to announce (``state.parts.Announcement``);
a run that finds the announcing run's report missing announces in its place.
"""

from __future__ import annotations

import logging

from digestpub.model import PublishReport
from digestpub.ports import HubNotifier, ObjectStore
from digestpub.publish.options import PublishOptions
from digestpub.publish.report import timed
from digestpub.publish.websub import changed_feed_urls, notify_hubs
from digestpub.site import Site
from digestpub.state.catalog import Catalog
from digestpub.state.keys import report_key
from digestpub.state.parts import Announcement

log = logging.getLogger("digestpub.publish")


def unannounced(state: ObjectStore, catalog: Catalog) -> list[str]:
    """The feeds the run that committed the state changed, if it stopped before it told the hubs."""
    announcing = catalog.head.announcing
    if announcing is None or state.read(announcing.report) is not None:
        return []
    log.warning(
        "the run that committed the state stopped before it told the WebSub hubs of %d changed feed(s): "
        "this run tells them",
        len(announcing.topics),
    )
    return announcing.topics


def topics(site: Site, changed_files: list[tuple[str, str]], unannounced: list[str]) -> list[str]:
    """The feeds to tell the hubs of: those whose bytes changed, and any a stopped run left."""
    return sorted({*changed_feed_urls(site, changed_files), *unannounced})


def announcement(topics: list[str], report: PublishReport) -> Announcement:
    """What the head this run commits records of the hubs it has to tell."""
    return Announcement(report=report_key(report.started_at, report.run_id), topics=topics)


def tell_hubs(
    notifier: HubNotifier, site: Site, topics: list[str], options: PublishOptions, report: PublishReport
) -> None:
    """After the commit: a hub told of a feed fetches it, and must find the bytes the state records."""
    with timed(report, "notify_hubs"):
        report.hub_failures = notify_hubs(notifier, site.hubs, topics, options.hub_policy)
    report.feeds_announced = len(topics)
