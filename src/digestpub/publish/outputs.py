"""The files beside the feeds: OPML, the archive indexes, the sitemap, ``robots.txt``, and the parts of the site
other capabilities keep (the newsletter's archive).

Each is written when its bytes changed (its hash is in the state's head), so a
run with nothing new writes none of them. What was written comes back as the
hashes to record (``None`` for a file deleted): the run records them.
"""

from __future__ import annotations

from collections.abc import Iterable

from digestpub.model import PublishReport
from digestpub.ports import ObjectStore
from digestpub.publish.options import SitePart
from digestpub.publish.produce import Producer
from digestpub.render import Output, digest_of
from digestpub.render.archive_page import render_archive_index, render_page_to_come
from digestpub.render.sitemap import SITEMAP_FILES_FOLDER, render_robots, render_sitemaps
from digestpub.site import ALL_FEED
from digestpub.state.parts import Head, Tallies

Recorded = dict[str, str | None]
"""The new hash of each file written, by path; ``None`` for a file deleted."""


def write_outputs(
    producer: Producer, head: Head, tallies: Tallies, report: PublishReport, indexed: set[str], completed: set[str]
) -> Recorded:
    """The files beside the feeds, each written when its bytes changed: OPML, the archive indexes of the feeds
    ``indexed``, the sitemap and ``robots.txt``; and for each feed that ``completed`` pages, the page to come."""
    site = producer.site
    recorded: Recorded = {}
    outputs = [producer.opml()]
    for feed in sorted(indexed):
        tag = None if feed == ALL_FEED else head.tags[feed]
        outputs.append(render_archive_index(site, feed, tag, tallies.get(feed, [])[:-1]))
    for feed in sorted(completed):
        # The page its newest complete page names as the next: on the feed's own page until it is complete.
        tag = None if feed == ALL_FEED else head.tags[feed]
        producer.put(render_page_to_come(site, feed, tag, len(tallies[feed])))
        report.files_written += 1
    newest = {feed: [page.version for page in pages] for feed, pages in tallies.items()}
    outputs += [*render_sitemaps(site, newest), render_robots(site)]
    for output in outputs:
        digest = producer.write_if_changed(output, head.outputs.get)
        if digest is None:
            report.files_unchanged += 1
        else:
            recorded[output.path] = digest
            report.files_written += 1
    # A sitemap index that shrank: its last files would list pages no more.
    written = {output.path for output in outputs}
    for path in sorted(head.outputs):
        if path.startswith(SITEMAP_FILES_FOLDER) and path not in written:
            producer.dest.delete(path)
            recorded[path] = None
    return recorded


def site_parts_if_missing(
    producer: Producer, state: ObjectStore, head: Head, parts: Iterable[SitePart], report: PublishReport
) -> Recorded:
    """The files of each part of the site another capability keeps, when this state has not written them yet.

    That capability writes them when it changes them: so a new site gets them at
    once, and a new look or a rebuilt destination renders them again as it does every feed.
    """
    recorded: Recorded = {}
    for part in parts:
        if part.marker in head.outputs:
            continue
        written: list[Output] | None = None
        # Again if the part changed meanwhile: its own run may have written it before this one did.
        while (files := part.files(producer.site, state)) != written:
            for output in files:
                producer.put(output)
                recorded[output.path] = digest_of(output.body)
            written = files
        report.files_written += len(written)
    return recorded
