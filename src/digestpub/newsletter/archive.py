"""The newsletter's archive: a page and an Atom feed listing every issue, newest first.

Both link each issue's web copy of everything (``all.<lang>``), which carries no
personal data; dates come from the issues, so an unchanged archive is byte-identical.
"""

from __future__ import annotations

from feedgen.feed import FeedGenerator

from digestpub.newsletter.archive_index import ArchivedIssue, load_archive
from digestpub.newsletter.render import subject_line, web_copy_path
from digestpub.ports import ObjectStore
from digestpub.render import Output
from digestpub.render import atom as atom_kind
from digestpub.render.feeds import EPOCH, GENERATOR_URI
from digestpub.site import HTML_TYPE, NEWSLETTER_ARCHIVE_FEED, NEWSLETTER_ARCHIVE_PAGE, Site
from digestpub.templates import environment
from digestpub.version import __version__
from digestpub.words import long_date, papers_word, words_for


def everything_url(site: Site, issue_id: str) -> str:
    """The issue's web copy holding every summary, in the site's language."""
    return site.url(web_copy_path(issue_id, (), site.lang))


def archive_outputs(site: Site, issues: list[ArchivedIssue]) -> list[Output]:
    return [
        Output(NEWSLETTER_ARCHIVE_PAGE, archive_page(site, issues).encode(), HTML_TYPE),
        Output(NEWSLETTER_ARCHIVE_FEED, archive_feed(site, issues), atom_kind.KIND.content_type),
    ]


def site_part(site: Site, state: ObjectStore) -> list[Output]:
    """The archive as ``state`` records it: the newsletter's part of the published site."""
    return archive_outputs(site, load_archive(state))


def archive_page(site: Site, issues: list[ArchivedIssue]) -> str:
    words = words_for(site.lang)
    rows = [
        {
            "date": long_date(site.lang, issue.issue_date),
            "iso_date": issue.issue_date.isoformat(),
            "frequency": words[issue.frequency],
            "count": f"{issue.count} {papers_word(site.lang, issue.count)}",
            "url": everything_url(site, issue.id),
        }
        for issue in issues
    ]
    return (
        environment()
        .get_template("newsletter/archive.html.j2")
        .render(
            site=site,
            words=words,
            title=f"{words['newsletter_archive']} — {site.title}",
            feed_url=site.url(NEWSLETTER_ARCHIVE_FEED),
            rows=rows,
        )
    )


def archive_feed(site: Site, issues: list[ArchivedIssue]) -> bytes:
    words = words_for(site.lang)
    generator = FeedGenerator()
    generator.id(site.tag_id("newsletter"))
    generator.title(f"{site.title}: {words['newsletter_archive']}")
    generator.subtitle(site.description)
    generator.language(site.lang)
    generator.author({"name": site.title})
    generator.updated(max((issue.built_at for issue in issues), default=EPOCH))
    generator.generator("digestpub", __version__, GENERATOR_URI)
    generator.link(
        [
            {"href": site.url(NEWSLETTER_ARCHIVE_FEED), "rel": "self", "type": "application/atom+xml"},
            {"href": site.url(NEWSLETTER_ARCHIVE_PAGE), "rel": "alternate", "type": "text/html"},
        ],
        replace=True,
    )
    for issue in issues:
        entry = generator.add_entry(order="append")
        entry.id(site.tag_id(f"newsletter/{issue.id}"))
        entry.title(subject_line(site, site.lang, issue.frequency, issue.issue_date, issue.count))
        entry.link({"href": everything_url(site, issue.id), "rel": "alternate", "type": "text/html"})
        entry.updated(issue.built_at)
        entry.published(issue.built_at)
        entry.summary(f"{words[issue.frequency]} · {issue.count} {papers_word(site.lang, issue.count)}")
    return bytes(generator.atom_str(pretty=True))
