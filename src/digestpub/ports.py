"""The ports: small Protocols that the core talks to and the adapters implement.

The core never imports an SDK; it receives objects that satisfy these.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Protocol

from digestpub.model import ConfirmationLimits, ObjectInfo, StatusChange, Subscriber, SubscriberStatus


class ObjectStore(Protocol):
    """Keys are ``/``-separated and relative to the store's own root or prefix."""

    @property
    def is_local(self) -> bool:
        """Files on this machine: a call is a system call, not a round trip, so a run
        reads and writes such a store from forked workers rather than from threads."""
        ...

    @property
    def url(self) -> str:
        """Where this store points, for messages: ``s3://bucket/prefix`` or a folder."""
        ...

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` whose key sorts after ``start_after``."""
        ...

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, str] | None:
        """The object's bytes and version tag, or ``None`` when it does not exist.

        Raises ``ObjectTooLarge``, without reading the bytes, for an object over ``max_bytes``.
        """
        ...

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Write the object and return its new version tag.

        ``if_match`` writes only over that version; ``if_none_match`` only where no
        object exists. A lost condition raises ``PreconditionFailed``.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object; removing what is absent is not an error."""
        ...


class SubscriberStore(Protocol):
    """Subscribers, keyed by ``id`` and unique by address, whatever its case.

    An address is stored as typed (normalised by ``digestpub.subscriptions.subscribers.normalise_email``)
    and matched by ``digestpub.subscriptions.subscribers.address_key``. Every change of an existing
    subscriber is one conditional write: a transition returns the subscriber as it
    became, or ``None`` when the subscriber is gone or its condition did not hold
    (then nothing changed). Racing writes therefore never undo each other.
    """

    def get(self, subscriber_id: str) -> Subscriber | None: ...

    def find(self, email: str) -> Subscriber | None:
        """By address, in any case (``ALICE@Example.org`` is ``alice@example.org``)."""
        ...

    def save(self, subscriber: Subscriber) -> None:
        """Insert a whole new record (an imported row); a second id for a known address is refused.

        Replacing a known id rewrites the whole row: meant only for a record that
        nobody else is changing. Status and preference changes use the transitions.
        """
        ...

    def transition(
        self, subscriber_id: str, status: SubscriberStatus, *, only_from: Collection[str], now: datetime
    ) -> Subscriber | None:
        """Set ``status`` where the current status is in ``only_from``; drops any pending
        confirmation, so a confirm link racing this change confirms nothing."""
        ...

    def count_soft_bounce(self, subscriber_id: str, *, limit: int, now: datetime) -> Subscriber | None:
        """One more soft bounce; at ``limit`` a ``pending`` or ``confirmed`` subscriber becomes ``bounced``."""
        ...

    def set_preferences(
        self, subscriber_id: str, *, tags: tuple[str, ...], frequency: str, lang: str, now: datetime
    ) -> Subscriber | None:
        """Tags, frequency and language; never the status."""
        ...

    def request_confirmation(self, subscriber_id: str, *, nonce: str, expires_at: datetime, now: datetime) -> bool:
        """Bind a new confirmation request to the subscriber, replacing any earlier one."""
        ...

    def confirm(self, subscriber_id: str, *, nonce: str, now: datetime) -> Subscriber | None:
        """``confirmed``, if ``nonce`` is the subscriber's current request and has not
        expired; the request is used up."""
        ...

    def claim_confirmation_email(self, address_hash: str, *, now: datetime, limits: ConfirmationLimits) -> bool:
        """Count one confirmation email to the address if ``limits`` allow it now, atomically
        across processes; ``False`` (and nothing counted) when they do not."""
        ...

    def erase(self, address_hash: str, subscriber_id: str | None, *, now: datetime) -> bool:
        """Delete the subscriber (if any) and what is counted about the address, and put its
        hash on the erased list, in one step; ``False`` when there was no such subscriber."""
        ...

    def is_erased(self, address_hash: str) -> bool:
        """Whether an address with this hash was erased (and may not be imported again)."""
        ...

    def iter_all(self) -> Iterator[Subscriber]:
        """Every subscriber, streamed (never all held at once), in a stable order."""
        ...

    def iter_confirmed(self, frequency: str) -> Iterator[Subscriber]:
        """Confirmed subscribers of one frequency, streamed, in a stable order."""
        ...

    def count_confirmed(self, frequency: str) -> int:
        """How many ``iter_confirmed(frequency)`` yields now, counted by the store (none are read)."""
        ...

    def iter_status_changes(self) -> Iterator[StatusChange]:
        """Every change of status (a new value, never the same one again) of the subscribers
        still stored, with its moment, recorded in the same write as the change, in no order."""
        ...


class Mailer(Protocol):
    """Sends one finished RFC 5322 message (CRLF line endings) to one recipient.

    Every failure is one of ``digestpub.errors``' mail classes: ``MailTransient``
    (try later), ``MailUnreachable`` (the service cannot be reached), ``AddressRefused``
    (this address, for good), ``MessageRefused`` (this sender or message) or
    ``MailOutcomeUnknown`` (the whole message went out and no answer came back: it may
    have been delivered, so it must not be sent again by itself).
    """

    def send(self, sender: str, recipient: str, message: bytes) -> str:
        """Hand the message over; returns the service's id for it (or the Message-ID)."""
        ...

    def close(self) -> None: ...


class Ledger(Protocol):
    """The send ledger: one row per (issue, subscriber), so each gets one email per issue.

    A row is ``claimed`` before the message goes out and ``sent`` once the mail
    service accepted it; ``rejected`` when it refused the address for good. A
    claim left behind by a run that stopped between the two is "unknown".
    """

    def claim(self, issue_id: str, subscriber_id: str, run_id: str) -> bool:
        """Record the intent to send; ``False`` when the pair is in the ledger already."""
        ...

    def confirm(self, issue_id: str, subscriber_id: str, message_id: str) -> None: ...

    def reject(self, issue_id: str, subscriber_id: str, reason: str) -> None: ...

    def release(self, issue_id: str, subscriber_id: str) -> None:
        """Forget a claim whose message was certainly not accepted, so a rerun sends it."""
        ...

    def unknown(self, issue_id: str, run_id: str, claimed_before: datetime) -> list[str]:
        """Subscribers claimed by other runs before ``claimed_before`` and never confirmed."""
        ...

    def reclaim(self, issue_id: str, subscriber_id: str, run_id: str) -> bool:
        """Take over an unknown claim (``--resend-unknown``); ``False`` if it changed meanwhile."""
        ...

    def counts(self, issue_id: str) -> dict[str, int]:
        """Rows of an issue by state."""
        ...

    def flush(self) -> None:
        """Make every recorded outcome durable (an adapter may batch confirmations)."""
        ...

    def forget(self, subscriber_id: str) -> int:
        """Delete every row of the subscriber, in every issue (an erased person); returns how many."""
        ...

    def last_issue(self, frequency: str) -> tuple[str, datetime] | None:
        """The newest issue of ``frequency`` built to be sent, and its cut-off (the end of its window).

        Kept with the newsletter's records, not in the publish state: a lost or rebuilt
        state must not make what readers already got news again.
        """
        ...

    def note_issue(self, frequency: str, issue_id: str, cutoff: datetime) -> None:
        """Remember an issue built to be sent; one older than the issue remembered changes nothing."""
        ...


class Queue(Protocol):
    """A work queue (SQS in the cloud): messages are JSON objects."""

    def send_all(self, messages: Iterator[dict[str, object]]) -> int:
        """Enqueue every message; returns how many were sent."""
        ...


class HubNotifier(Protocol):
    """Tells a WebSub hub that topics (feed URLs) changed: one request, no retries (the core retries)."""

    def publish(self, hub: str, topics: list[str], timeout: float) -> None:
        """Raises ``HubError`` unless the hub accepted the notification (any 2xx answer)."""
        ...
