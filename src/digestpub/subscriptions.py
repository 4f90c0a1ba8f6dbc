"""Subscription use cases behind the endpoints: subscribe, confirm, unsubscribe, preferences,
and the mail service's bounce and complaint reports.

Links carry HMAC tokens (``tokens``), so every action is checked without a lookup
and a forged or altered token changes nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from digestpub.errors import UnknownSubscriber
from digestpub.model import Subscriber
from digestpub.ports import Mailer, SubscriberStore
from digestpub.site import Site
from digestpub.subscribers import AddressTaken, InvalidSubscriber, new_subscriber, normalise_email, normalise_tags
from digestpub.templates import environment
from digestpub.tokens import make_token, verify_token
from digestpub.words import words_for

log = logging.getLogger("digestpub.subscriptions")

SOFT_BOUNCE_LIMIT = 5
"""Soft bounces in a row after which an address is treated as bounced."""


@dataclass(frozen=True)
class Subscriptions:
    site: Site
    store: SubscriberStore
    mailer: Mailer
    token_key: bytes
    from_address: str

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def subscribe(self, email: str, tags: str, frequency: str, lang: str) -> None:
        """Double opt-in: a pending subscriber and a confirmation email.

        Answers the same whatever the address's history, so the endpoint tells
        nobody who subscribes; a suppressed (bounced, complained) address gets nothing.
        """
        wanted = new_subscriber(email, tags, frequency, lang, now=self._now())
        existing = self.store.find(wanted.email)
        if existing is None:
            subscriber = wanted
        elif existing.status in ("bounced", "complained"):
            log.info("subscribe request for a suppressed address ignored")
            return
        elif existing.status == "confirmed":
            return
        else:
            subscriber = existing.model_copy(
                update={
                    "tags": wanted.tags,
                    "frequency": wanted.frequency,
                    "lang": wanted.lang,
                    "status": "pending",
                    "updated_at": self._now(),
                }
            )
        try:
            self.store.save(subscriber)
        except AddressTaken:  # a concurrent subscribe for the same address won
            return
        self._send_confirmation(subscriber)

    def _send_confirmation(self, subscriber: Subscriber) -> None:
        words = words_for(subscriber.lang)
        token = make_token(self.token_key, subscriber.id, "confirm")
        context = {
            "site": self.site,
            "words": words,
            "confirm_url": self.site.api(f"confirm?token={token}"),
            "tags": subscriber.tags,
        }
        env = environment()
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = subscriber.email
        message["Subject"] = words["confirm_subject"].format(site=self.site.title)
        message["Date"] = format_datetime(self._now())
        message["Message-ID"] = make_msgid(domain=self.site.authority)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(env.get_template("email/confirm.txt.j2").render(context))
        message.add_alternative(env.get_template("email/confirm.html.j2").render(context), subtype="html")
        sender = message["From"].addresses[0].addr_spec
        self.mailer.send(sender, subscriber.email, message.as_bytes(policy=message.policy.clone(linesep="\r\n")))

    def _subscriber(self, token: str, purpose: str) -> Subscriber:
        subscriber_id = verify_token(self.token_key, token, purpose)
        subscriber = self.store.get(subscriber_id)
        if subscriber is None:
            raise UnknownSubscriber("this link belongs to a subscription that no longer exists")
        return subscriber

    def _set(self, subscriber: Subscriber, **changes: object) -> Subscriber:
        updated = subscriber.model_copy(update={**changes, "updated_at": self._now()})
        self.store.save(updated)
        return updated

    def confirm(self, token: str) -> Subscriber:
        subscriber = self._subscriber(token, "confirm")
        if subscriber.status == "pending":
            return self._set(subscriber, status="confirmed")
        return subscriber

    def peek(self, token: str, purpose: str) -> Subscriber:
        """The subscriber a link is for; changes nothing (GET pages)."""
        return self._subscriber(token, purpose)

    def unsubscribe(self, token: str) -> Subscriber:
        subscriber = self._subscriber(token, "unsubscribe")
        if subscriber.status in ("confirmed", "pending"):
            return self._set(subscriber, status="unsubscribed")
        return subscriber

    def update_preferences(self, token: str, tags: str, frequency: str, lang: str) -> Subscriber:
        subscriber = self._subscriber(token, "preferences")
        checked = new_subscriber(subscriber.email, tags, frequency, lang)
        return self._set(subscriber, tags=normalise_tags(tags), frequency=checked.frequency, lang=checked.lang)

    def _find(self, email: str) -> Subscriber | None:
        try:
            return self.store.find(normalise_email(email))
        except InvalidSubscriber:
            return None

    def bounced(self, email: str, *, permanent: bool) -> Subscriber | None:
        """A bounce report: a hard bounce suppresses at once, soft bounces are counted."""
        subscriber = self._find(email)
        if subscriber is None:
            return None
        if permanent:
            return self._set(subscriber, status="bounced")
        count = subscriber.soft_bounces + 1
        status = "bounced" if count >= SOFT_BOUNCE_LIMIT else subscriber.status
        return self._set(subscriber, soft_bounces=count, status=status)

    def complained(self, email: str) -> Subscriber | None:
        subscriber = self._find(email)
        if subscriber is None:
            return None
        return self._set(subscriber, status="complained")


def apply_ses_notification(subscriptions: Subscriptions, message: str) -> dict[str, int]:
    """Apply one SES event (configuration-set event or identity notification, as JSON).

    Returns counts by outcome, for metrics: ``HardBounces``, ``SoftBounces``, ``Complaints``.
    """
    try:
        event = json.loads(message)
    except ValueError:
        log.warning("SES notification is not JSON; ignored")
        return {}
    kind = event.get("eventType") or event.get("notificationType") or ""
    counts: dict[str, int] = {}
    if kind == "Bounce":
        bounce = event.get("bounce") or {}
        permanent = bounce.get("bounceType") == "Permanent"
        for recipient in bounce.get("bouncedRecipients") or []:
            if subscriptions.bounced(str(recipient.get("emailAddress", "")), permanent=permanent):
                name = "HardBounces" if permanent else "SoftBounces"
                counts[name] = counts.get(name, 0) + 1
    elif kind == "Complaint":
        for recipient in (event.get("complaint") or {}).get("complainedRecipients") or []:
            if subscriptions.complained(str(recipient.get("emailAddress", ""))):
                counts["Complaints"] = counts.get("Complaints", 0) + 1
    else:
        log.info("SES event %r needs no action", kind)
    return counts
