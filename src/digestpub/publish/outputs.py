"""The files beside the feeds: OPML, the archive indexes, the sitemap, ``robots.txt`` and the newsletter's archive.

Each is written when its bytes changed (its hash is in the state's head), so a
run with nothing new writes none of them. What was written comes back as the
hashes to record (``None`` for a file deleted): the run records them.
"""

from __future__ import annotations

from digestpub.model import PublishReport
from digestpub.ports import ObjectStore
from digestpub.publish.produce import Producer, digest_of
from digestpub.render.archive_page import render_archive_index, render_page_to_come
from digestpub.render.sitemap import SITEMAP_FILES_FOLDER, render_robots, render_sitemaps
from digestpub.site import ALL_FEED, NEWSLETTER_ARCHIVE_PAGE
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


def newsletter_archive_if_missing(
    producer: Producer, state: ObjectStore, head: Head, report: PublishReport
) -> Recorded:
    """The newsletter's archive, from the state's list of issues, when this state has not written it yet.

    The index page links it, and the newsletter writes it only with an issue: so
    a new site gets it (empty) at once, and a new look or a rebuilt destination
    renders it again as it does every feed.
    """
    if NEWSLETTER_ARCHIVE_PAGE in head.outputs:
        return {}
    # Here once a site: the newsletter's modules (MJML among them) stay out of every other run's start-up.
    from digestpub.newsletter.archive import archive_outputs
    from digestpub.newsletter.archive_index import load_archive

    written = None
    recorded: Recorded = {}
    # Again if an issue was recorded meanwhile: its run may have written the archive before this one did.
    while (issues := load_archive(state)) != written:
        for output in archive_outputs(producer.site, issues):
            producer.put(output)
            recorded[output.path] = digest_of(output.body)
        written = issues
    report.files_written += 2  # the page and the feed
    return recorded
