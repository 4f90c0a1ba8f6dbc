"""Subscription use cases behind the endpoints: subscribe, confirm, unsubscribe, preferences,
and the mail service's bounce and complaint reports.

Links carry HMAC tokens (``tokens``), so every action is checked without a lookup
and a forged or altered token changes nothing. Every change of a subscriber is one
of the store's conditional transitions: an unsubscribe always wins over a racing
confirm or preference save. Log lines name subscribers by a short id, never by address.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Literal

from digestpub.errors import MailError, UnknownSubscriber
from digestpub.model import ConfirmationLimits, Subscriber, SubscriberStatus, TagInfo
from digestpub.ports import Mailer, SubscriberStore
from digestpub.site import Site
from digestpub.subscriptions.subscribers import (
    ACTIVE,
    AddressTaken,
    InvalidSubscriber,
    UnknownTags,
    address_hash,
    as_published,
    checked_preferences,
    new_subscriber,
    normalise_email,
    short_id,
    unknown_tags,
)
from digestpub.subscriptions.tokens import TokenKey, make_token, read_token, verify_token
from digestpub.templates import environment
from digestpub.words import words_for

log = logging.getLogger("digestpub.subscriptions.use_cases")

SOFT_BOUNCE_LIMIT = 5
"""Soft bounces in a row after which an address is treated as bounced."""
CONFIRM_LINK_LIFETIME = timedelta(days=7)
ANSWER_FLOOR = timedelta(milliseconds=40)
"""The least time a subscribe request takes, whatever the address."""
INLINE_SEND_ANSWER_FLOOR = timedelta(milliseconds=300)
"""The same where the email is sent before answering: longer than a send to SES usually takes."""
_UNSUBSCRIBABLE: frozenset[SubscriberStatus] = frozenset({"pending", "confirmed", "unsubscribed"})
"""Unsubscribing an unsubscribed subscriber still drops a pending re-subscription."""
_COMPLAINABLE: frozenset[SubscriberStatus] = frozenset({"pending", "confirmed", "unsubscribed", "bounced"})

Job = Callable[[], None]
_EXPIRY_MARK = "."
"""Between a confirmation nonce and its expiry (Unix seconds): no URL-safe token holds it."""


@dataclass(frozen=True)
class Confirmation:
    """A confirm link's subscriber and where the link stands.

    ``open``: it would confirm; ``confirmed``: it just did; ``already``: the subscriber is
    confirmed; ``expired``: it was used, replaced by a newer one, or is too old.
    """

    subscriber: Subscriber
    state: Literal["open", "confirmed", "already", "expired"]


def _expired(nonce: str, now: datetime) -> bool:
    """A link without a request, or one whose nonce says it expired; links from before expiries
    rode in nonces are open until the store says otherwise."""
    _, mark, expiry = nonce.rpartition(_EXPIRY_MARK)
    return not nonce or (bool(mark) and expiry.isdigit() and int(expiry) <= now.timestamp())


def send_now(job: Job) -> None:
    """Run a send before answering: the cloud function, whose process is frozen after it answers."""
    job()


class SendAfterAnswer:
    """Runs sends on a background thread, so ``digestpub serve`` answers before any mail goes out.

    The answer to ``POST /subscribe`` then takes as long whether or not an email is sent.
    """

    def __init__(self, delay: float = 0.05) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digestpub-confirmation")
        self._delay = delay

    def __call__(self, job: Job) -> None:
        self._pool.submit(self._later, job)

    def _later(self, job: Job) -> None:
        # Rendering the email holds the interpreter for milliseconds: started at once,
        # it would slow the very answer it follows, and tell that one was sent.
        time.sleep(self._delay)
        job()

    def close(self) -> None:
        """Wait for the sends already handed over."""
        self._pool.shutdown(wait=True)


def no_tags() -> Mapping[str, TagInfo]:
    return {}


@dataclass(frozen=True)
class Subscriptions:
    site: Site
    store: SubscriberStore
    mailer: Mailer
    token_key: TokenKey
    from_address: str
    tags: Callable[[], Mapping[str, TagInfo]] = no_tags
    """The digest's published tags by slug (from the publish state): the only tags a subscriber may choose."""
    limits: ConfirmationLimits = field(default_factory=ConfirmationLimits)
    confirm_link_lifetime: timedelta = CONFIRM_LINK_LIFETIME
    dispatch: Callable[[Job], None] = send_now
    """Where confirmation sends run: at once, or after the answer (``SendAfterAnswer``)."""
    answer_floor: timedelta = ANSWER_FLOOR

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _published(self, tags: tuple[str, ...]) -> tuple[str, ...]:
        """``tags`` as the digest published them; ``UnknownTags`` for any it never did."""
        if not tags:
            return tags
        known = self.tags()
        published = as_published(tags, known)
        unknown = unknown_tags(published, known)
        if unknown:
            raise UnknownTags(unknown)
        return published

    def subscribe(self, email: str, tags: str, frequency: str, lang: str) -> None:
        """Double opt-in: a pending subscriber and a confirmation email.

        Does the same work whatever the address's history (look it up, count the
        email against the limits, a write or two), hands the email to ``dispatch``,
        and returns no sooner than ``answer_floor``: neither the answer nor its
        timing tells who subscribes. A confirmed address gets nothing; an
        unsubscribed, bounced or complained one keeps its status until the link
        is followed.
        """
        started = time.monotonic()
        try:
            self._subscribe(email, tags, frequency, lang)
        finally:
            # The store's work differs by a write or two between the cases: a floor
            # that covers it makes the timing the same by construction.
            time.sleep(max(0.0, self.answer_floor.total_seconds() - (time.monotonic() - started)))

    def _subscribe(self, email: str, tags: str, frequency: str, lang: str) -> None:
        now = self._now()
        wanted = new_subscriber(email, tags, frequency, lang, now=now)
        wanted = wanted.model_copy(update={"tags": self._published(wanted.tags)})
        existing = self.store.find(wanted.email)
        allowed = self.store.claim_confirmation_email(address_hash(wanted.email), now=now, limits=self.limits)
        if existing is None:
            if not allowed:
                log.info("subscribe request not stored: the hourly confirmation ceiling is reached")
                return
            try:
                self.store.save(wanted)
            except AddressTaken:  # a concurrent subscribe for the same address won
                return
            subscriber: Subscriber | None = wanted
        elif existing.status == "pending":
            subscriber = self.store.set_preferences(
                existing.id, tags=wanted.tags, frequency=wanted.frequency, lang=wanted.lang, now=now
            )
        else:
            subscriber = existing
        if subscriber is None or subscriber.status == "confirmed":
            return
        if not allowed:
            log.info("confirmation for subscriber %s not sent: rate limit", short_id(subscriber.id))
            return
        self._request_confirmation(subscriber, now)

    def resubscribe(self, token: str) -> Subscriber:
        """The preference page's "subscribe again": a confirmation email, within the same limits."""
        return self._confirm_again(self._subscriber(token, "preferences"))

    def renew_confirmation(self, token: str) -> Subscriber:
        """A new confirmation email for an expired or replaced confirm link, within the same limits."""
        return self._confirm_again(self._subscriber(token, "confirm"))

    def _confirm_again(self, subscriber: Subscriber) -> Subscriber:
        now = self._now()
        if subscriber.status != "confirmed" and self.store.claim_confirmation_email(
            address_hash(subscriber.email), now=now, limits=self.limits
        ):
            self._request_confirmation(subscriber, now)
        else:
            log.info("confirmation for subscriber %s not sent: confirmed or rate limit", short_id(subscriber.id))
        return subscriber

    def _request_confirmation(self, subscriber: Subscriber, now: datetime) -> None:
        expires = now + self.confirm_link_lifetime
        # The link's expiry rides in its signed nonce, so its page tells an expired link without a write.
        nonce = f"{secrets.token_urlsafe(16)}{_EXPIRY_MARK}{int(expires.timestamp())}"
        if not self.store.request_confirmation(subscriber.id, nonce=nonce, expires_at=expires, now=now):
            return  # erased meanwhile
        self.dispatch(lambda: self._send_confirmation(subscriber, nonce))

    def _send_confirmation(self, subscriber: Subscriber, nonce: str) -> None:
        try:
            self.mailer.send(self._sender(), subscriber.email, self._confirmation(subscriber, nonce))
        except MailError as error:
            # The answer was the same for everyone: the person asks again once the service is back.
            log.error("confirmation for subscriber %s not sent: %s", short_id(subscriber.id), type(error).__name__)
            return
        log.info("confirmation sent to subscriber %s", short_id(subscriber.id))

    def _sender(self) -> str:
        message = EmailMessage()
        message["From"] = self.from_address
        return str(message["From"].addresses[0].addr_spec)

    def _confirmation(self, subscriber: Subscriber, nonce: str) -> bytes:
        words = words_for(subscriber.lang)
        token = make_token(self.token_key, subscriber.id, "confirm", nonce)
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
        return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))

    def _subscriber(self, token: str, purpose: str) -> Subscriber:
        subscriber_id = verify_token(self.token_key, token, purpose)
        return self._existing(subscriber_id)

    def _existing(self, subscriber_id: str) -> Subscriber:
        subscriber = self.store.get(subscriber_id)
        if subscriber is None:
            raise UnknownSubscriber("this link belongs to a subscription that no longer exists")
        return subscriber

    def confirmation(self, token: str) -> Confirmation:
        """What a confirm link would do, for its page; changes nothing (mail scanners fetch every link)."""
        subscriber_id, nonce = read_token(self.token_key, token, "confirm")
        subscriber = self._existing(subscriber_id)
        if subscriber.status == "confirmed":
            return Confirmation(subscriber, "already")
        return Confirmation(subscriber, "expired" if _expired(nonce, self._now()) else "open")

    def confirm(self, token: str) -> Confirmation:
        """Confirm the request the link was made for; a used, replaced or expired link confirms nothing.

        A subscriber confirmed already (by this link or another) is told so: ``already``.
        """
        subscriber_id, nonce = read_token(self.token_key, token, "confirm")
        confirmed = self.store.confirm(subscriber_id, nonce=nonce, now=self._now()) if nonce else None
        if confirmed is None:
            subscriber = self._existing(subscriber_id)
            return Confirmation(subscriber, "already" if subscriber.status == "confirmed" else "expired")
        log.info("subscriber %s confirmed", short_id(subscriber_id))
        return Confirmation(confirmed, "confirmed")

    def peek(self, token: str, purpose: str) -> Subscriber:
        """The subscriber a link is for; changes nothing (GET pages)."""
        return self._subscriber(token, purpose)

    def unsubscribe(self, token: str) -> Subscriber:
        subscriber_id = verify_token(self.token_key, token, "unsubscribe")
        changed = self.store.transition(subscriber_id, "unsubscribed", only_from=_UNSUBSCRIBABLE, now=self._now())
        if changed is None:
            return self._existing(subscriber_id)  # bounced or complained: already suppressed
        log.info("subscriber %s unsubscribed", short_id(subscriber_id))
        return changed

    def update_preferences(self, token: str, tags: str, frequency: str, lang: str) -> Subscriber:
        """New tags, frequency and language; never the status."""
        subscriber_id = verify_token(self.token_key, token, "preferences")
        chosen_tags, chosen_frequency, chosen_lang = checked_preferences(tags, frequency, lang)
        chosen_tags = self._published(chosen_tags)
        changed = self.store.set_preferences(
            subscriber_id, tags=chosen_tags, frequency=chosen_frequency, lang=chosen_lang, now=self._now()
        )
        if changed is None:
            raise UnknownSubscriber("this link belongs to a subscription that no longer exists")
        return changed

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
        now = self._now()
        if permanent:
            changed = self.store.transition(subscriber.id, "bounced", only_from=ACTIVE, now=now)
        else:
            changed = self.store.count_soft_bounce(subscriber.id, limit=SOFT_BOUNCE_LIMIT, now=now)
        log.info("%s bounce for subscriber %s", "hard" if permanent else "soft", short_id(subscriber.id))
        return changed or subscriber

    def complained(self, email: str) -> Subscriber | None:
        subscriber = self._find(email)
        if subscriber is None:
            return None
        changed = self.store.transition(subscriber.id, "complained", only_from=_COMPLAINABLE, now=self._now())
        log.info("complaint for subscriber %s", short_id(subscriber.id))
        return changed or subscriber


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
