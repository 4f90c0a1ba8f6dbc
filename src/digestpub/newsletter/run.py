"""The newsletter use case, shared by ``digestpub newsletter`` and the cloud functions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from digestpub.errors import NothingToRead
from digestpub.model import Frequency, Subscriber
from digestpub.newsletter.archive import archive_outputs
from digestpub.newsletter.archive_index import record_issue
from digestpub.newsletter.issues import Issue, prepare_issue, without_deleted
from digestpub.newsletter.message import MessageFactory, personal_html
from digestpub.newsletter.render import IssueRenderer, Segment, web_copy
from digestpub.newsletter.send import Progress, Sender, SendOptions, SendReport
from digestpub.ports import Ledger, Mailer, ObjectStore, SubscriberStore
from digestpub.site import Site
from digestpub.state.keys import SEND_LOCK_KEY
from digestpub.state.lock import StateLock
from digestpub.subscriptions.subscribers import ACTIVE
from digestpub.subscriptions.tokens import TokenKey
from digestpub.text import counted
from digestpub.words import words_for

_LEASE_MARGIN = 600.0
"""Seconds a send's lease lasts beyond its longest run: slow answers of the mail service."""


@dataclass(frozen=True)
class NewsletterContext:
    """Everything an issue run talks to, built from settings by the entry point."""

    site: Site
    state: ObjectStore
    dest: ObjectStore
    subscribers: SubscriberStore
    ledger: Ledger
    mailer: Mailer
    token_key: TokenKey
    """One key, or the ring (newest first) that signs and verifies links."""
    from_address: str
    reply_to: str | None = None
    max_items: int = 30
    page_cache_control: str = "public, max-age=300"


def build_issue(
    context: NewsletterContext, frequency: Frequency, on: date, *, dry_run: bool = False, now: datetime | None = None
) -> tuple[Issue, IssueRenderer, MessageFactory]:
    """The issue for ``on`` (built, or read back if it exists) and what renders its emails.

    Unless a dry run, the issue's web copy of everything and the archive that lists it are published.
    """
    now = now or datetime.now(UTC)
    prepared = prepare_issue(context.state, frequency, on, now, save=not dry_run, memory=context.ledger)
    issue = without_deleted(context.state, prepared, now)
    renderer, factory = issue_tools(context, issue, dry_run=dry_run, now=now)
    if not dry_run:
        publish_archive(context, issue, renderer)
    return issue, renderer, factory


def publish_archive(context: NewsletterContext, issue: Issue, renderer: IssueRenderer) -> None:
    """The web copy of everything in the issue (the archive links it), then the archive page and feed."""
    renderer.segment((), context.site.lang)
    for output in archive_outputs(context.site, record_issue(context.state, issue)):
        context.dest.put(
            output.path, output.body, content_type=output.content_type, cache_control=context.page_cache_control
        )


def issue_tools(
    context: NewsletterContext, issue: Issue, *, dry_run: bool = False, now: datetime | None = None
) -> tuple[IssueRenderer, MessageFactory]:
    """A renderer that publishes each segment's web copy (unless a dry run), and a message factory."""

    def publish(segment: Segment) -> None:
        if not dry_run:
            output = web_copy(segment)
            context.dest.put(
                output.path, output.body, content_type=output.content_type, cache_control=context.page_cache_control
            )

    renderer = IssueRenderer(context.site, issue, context.max_items, on_segment=publish)
    factory = MessageFactory(
        context.site,
        issue.id,
        context.from_address,
        context.token_key,
        reply_to=context.reply_to,
        now=now or datetime.now(UTC),
    )
    return renderer, factory


def send_newsletter(
    context: NewsletterContext,
    frequency: Frequency,
    on: date,
    options: SendOptions,
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> SendReport:
    """Build (or read back) the issue and send it to every confirmed subscriber of ``frequency``."""
    _issue, renderer, factory = build_issue(context, frequency, on, dry_run=options.dry_run, now=now)

    def suppress(subscriber: Subscriber, reason: str) -> None:
        mark_bounced(context.subscribers, subscriber)

    sender = Sender(renderer, factory, context.ledger, context.mailer, options, on_bounced=suppress, progress=progress)
    if options.dry_run:
        return sender.run(context.subscribers.iter_confirmed(frequency))
    total = context.subscribers.count_confirmed(frequency)
    # One whole-issue send at a time, so that two together never pass send_rate. The
    # lease lasts as long as this send may (a killed run's is taken over at once).
    longest = total / options.send_rate + options.outage_limit + options.retry_limit + _LEASE_MARGIN
    lease = StateLock(
        context.state, ttl=timedelta(seconds=longest), wait=options.lock_wait, key=SEND_LOCK_KEY, what="newsletter run"
    )
    with lease:
        return sender.run(context.subscribers.iter_confirmed(frequency), total)


def mark_bounced(subscribers: SubscriberStore, subscriber: Subscriber) -> None:
    """A permanent refusal of the address is a hard bounce: later issues skip it.

    One conditional update, so an unsubscribe or complaint that raced the send stays as it is.
    """
    subscribers.transition(subscriber.id, "bounced", only_from=ACTIVE, now=datetime.now(UTC))


def send_test_copy(
    context: NewsletterContext,
    frequency: Frequency,
    on: date,
    recipient: str,
    tags: tuple[str, ...],
    lang: str,
    *,
    now: datetime | None = None,
) -> str:
    """One copy of the issue as a subscriber with ``tags`` would get it, to ``recipient``.

    Not recorded in the ledger, and the issue is not saved: a test copy changes nothing.
    """
    issue, renderer, factory = build_issue(context, frequency, on, dry_run=True, now=now)
    reader = _sample_reader("test-copy", recipient, tags, frequency, lang)
    segment = _readable_segment(renderer, issue, tags, lang)
    # Said in the subject, so that a copy kept or forwarded is never taken for the issue itself.
    subject = words_for(lang)["test_copy_subject"].format(subject=segment.subject)
    message_id, message = factory.build(replace(segment, subject=subject), reader)
    context.mailer.send(factory.envelope_sender, recipient, message)
    return message_id


def preview_html(context: NewsletterContext, frequency: Frequency, on: date, tags: tuple[str, ...], lang: str) -> str:
    """The HTML part that a subscriber with ``tags`` would get for the issue of ``on``."""
    issue, renderer, factory = build_issue(context, frequency, on, dry_run=True)
    segment = _readable_segment(renderer, issue, tags, lang)
    reader = _sample_reader("preview", "reader@example.com", tags, frequency, lang)
    return personal_html(segment, factory.personal(reader))


def _readable_segment(renderer: IssueRenderer, issue: Issue, tags: tuple[str, ...], lang: str) -> Segment:
    """The segment for ``tags``, refused when it is empty: nobody gets an empty email, a test reader neither."""
    segment = renderer.segment(tags, lang)
    if segment.empty:
        wanted = f"the tags {' '.join(tags)}" if tags else "any tag"
        raise NothingToRead(
            f"{issue.id} holds nothing for {wanted} ({counted(len(issue.summaries), 'summary', 'summaries')} in all): "
            "no email to make; choose other --tags or --date"
        )
    return segment


def _sample_reader(identifier: str, email: str, tags: tuple[str, ...], frequency: Frequency, lang: str) -> Subscriber:
    """A confirmed subscriber who is not in the store: for test copies and previews."""
    moment = datetime.now(UTC)
    return Subscriber(
        id=identifier,
        email=email,
        tags=tags,
        frequency=frequency,
        lang=lang,  # type: ignore[arg-type]
        status="confirmed",
        created_at=moment,
        updated_at=moment,
    )
