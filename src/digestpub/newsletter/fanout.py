"""The cloud's fan-out: an issue's recipients in batches on a queue, each batch sent alone.

Any number of workers can send batches of one issue at once: the send ledger
keeps it to one email per subscriber, and a redelivered batch sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from digestpub.errors import NewsletterError
from digestpub.newsletter.issues import Issue, load_issue, without_deleted
from digestpub.newsletter.run import NewsletterContext, issue_tools, mark_bounced
from digestpub.newsletter.send import Sender, SendOptions, SendReport
from digestpub.ports import SubscriberStore

BATCH_SIZE = 50


def recipient_batches(
    issue: Issue, subscribers: SubscriberStore, size: int = BATCH_SIZE
) -> Iterator[dict[str, object]]:
    """Queue messages naming ``size`` confirmed subscribers of the issue's frequency each."""
    batch: list[str] = []
    for subscriber in subscribers.iter_confirmed(issue.frequency):
        batch.append(subscriber.id)
        if len(batch) == size:
            yield {"issue_id": issue.id, "subscriber_ids": batch}
            batch = []
    if batch:
        yield {"issue_id": issue.id, "subscriber_ids": batch}


def send_recipient_batch(context: NewsletterContext, message: dict[str, object], options: SendOptions) -> SendReport:
    """Send one queued batch; subscribers who left since planning are skipped.

    A report that ``stopped`` or ``deferred`` someone leaves work for a redelivery of
    the batch: the ledger lets it send exactly that.
    """
    issue_id = str(message["issue_id"])
    issue = load_issue(context.state, issue_id)
    if issue is None:
        raise NewsletterError(f"issue {issue_id} is not in {context.state.url}: was it planned?")
    issue = without_deleted(context.state, issue)
    renderer, factory = issue_tools(context, issue, now=datetime.now(UTC))
    identifiers = message.get("subscriber_ids")
    if not isinstance(identifiers, list):
        raise NewsletterError(f"a batch of {issue_id} names no subscribers")
    found = (context.subscribers.get(str(identifier)) for identifier in identifiers)
    confirmed = (subscriber for subscriber in found if subscriber is not None and subscriber.status == "confirmed")
    sender = Sender(
        renderer,
        factory,
        context.ledger,
        context.mailer,
        options,
        on_bounced=lambda subscriber, _reason: mark_bounced(context.subscribers, subscriber),
    )
    return sender.run(confirmed)
