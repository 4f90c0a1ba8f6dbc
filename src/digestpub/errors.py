"""One exception hierarchy: callers catch ``DigestpubError`` or a precise subclass."""

from __future__ import annotations


class DigestpubError(Exception):
    """Base of every error digestpub raises on purpose."""


class ConfigError(DigestpubError):
    """A setting is missing, malformed or names something that does not exist."""


class StorageError(DigestpubError):
    """An object store could not be read or written."""


class PreconditionFailed(StorageError):
    """A conditional write lost: the object changed since it was read."""


class ObjectTooLarge(DigestpubError):
    """An object is larger than a read allowed, so it was not read: its ``size`` and ``version``."""

    def __init__(self, size: int, version: str) -> None:
        super().__init__(f"{size:,} bytes")
        self.size = size
        self.version = version


class StoreBusy(StorageError):
    """A conditional update kept losing to racing writes of the same item, backoff and all:
    nothing is wrong but the moment, so the caller may try again shortly."""


class StateLocked(DigestpubError):
    """Another run holds the state lock and did not release it in time."""


class WorkerFailed(DigestpubError):
    """A worker process died, or its result could not be sent back."""


class TemplateNotFound(ConfigError):
    """The templates folder could not be located."""


class MailError(DigestpubError):
    """A mail service did not take a message. Each adapter sorts every answer into one subclass."""


class MailTransient(MailError):
    """Try later: throttling, a 4xx answer, a timeout, a dropped connection. Never dropped."""


class MailUnreachable(MailTransient):
    """The service cannot be reached at all (connection refused, no such host, outbox not writable).

    Trying the next recipient would fail the same way, so a run stops at once.
    """


class AddressRefused(MailError):
    """This address is refused for good (SMTP 5.1.x on RCPT): a hard bounce of one subscriber.

    The message never names the address, so it can be kept in the ledger.
    """


class MailOutcomeUnknown(MailError):
    """The whole message went out and the connection failed before the service answered.

    The service has probably taken it: sending again could deliver it twice, so the
    claim stays in the ledger as "unknown" and only ``--resend-unknown`` sends it again.
    """


class MessageRefused(MailError):
    """The service refuses this sender or this message (unverified identity, auth, policy).

    Every recipient would be refused alike: a run stops at once and marks nobody.
    The message says what to fix.
    """


class HubError(DigestpubError):
    """A WebSub hub did not take a publish notification; ``status`` is its HTTP answer, ``None`` if none came."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SearchIndexError(DigestpubError):
    """The search index could not be built: the run's feeds stand, and the next run builds it."""


class NewsletterError(DigestpubError):
    """An issue cannot be built as asked (for example, a date before the last issue)."""


class NothingToRead(NewsletterError):
    """A preview or test copy for tags that match nothing in the issue: there is no email to make."""


class InvalidSubscriber(DigestpubError):
    """A subscriber's field has a value digestpub does not know (frequency, language, status)."""


class InvalidAddress(InvalidSubscriber):
    """The text is not a usable email address; the message says why."""


class AddressTaken(DigestpubError):
    """A store refused a second subscriber id for an address it already holds."""


class InvalidToken(DigestpubError):
    """A token that was not made with this key for this purpose (forged, altered or garbled)."""


class UnknownSubscriber(InvalidToken):
    """A valid token for a subscriber who is no longer in the store."""


class BadRequest(DigestpubError):
    """An HTTP request that cannot be served as sent; ``status`` is the 4xx to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
