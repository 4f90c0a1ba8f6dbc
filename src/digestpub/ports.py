"""The ports: small Protocols that the core talks to and the adapters implement.

The core never imports an SDK; it receives objects that satisfy these.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from digestpub.model import ObjectInfo, Subscriber


class ObjectStore(Protocol):
    """Keys are ``/``-separated and relative to the store's own root or prefix."""

    @property
    def url(self) -> str:
        """Where this store points, for messages: ``s3://bucket/prefix`` or a folder."""
        ...

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` whose key sorts after ``start_after``."""
        ...

    def read(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and version tag, or ``None`` when it does not exist."""
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
    """Subscribers, keyed by ``id`` and unique by (normalised) ``email``."""

    def get(self, subscriber_id: str) -> Subscriber | None: ...

    def find(self, email: str) -> Subscriber | None:
        """By address, compared as normalised by ``digestpub.subscribers.normalise_email``."""
        ...

    def save(self, subscriber: Subscriber) -> None:
        """Insert or replace, by ``id``; a second id for a known address is refused."""
        ...

    def iter_all(self) -> Iterator[Subscriber]:
        """Every subscriber, streamed (never all held at once), in a stable order."""
        ...

    def iter_confirmed(self, frequency: str) -> Iterator[Subscriber]:
        """Confirmed subscribers of one frequency, streamed, in a stable order."""
        ...


class Mailer(Protocol):
    """Sends one finished RFC 5322 message (CRLF line endings) to one recipient.

    Raises ``MailTransient`` for what may work later (throttling, a dropped
    connection) and ``MailRejected`` when the service refuses this address for good.
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
