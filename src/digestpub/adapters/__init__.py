"""Adapters for the ports, chosen from a location string in one place."""

from __future__ import annotations

from urllib.parse import urlsplit

from digestpub.errors import ConfigError
from digestpub.ports import Ledger, Mailer, ObjectStore


def open_store(location: str, *, required_as: str | None = None) -> ObjectStore:
    """``s3://bucket/prefix`` opens S3 (boto3 imported only then); anything else is a folder.

    ``required_as`` names a store that must already be there (``"source"``): a folder
    that is missing is then a mistyped setting, not an empty store.
    """
    if location.startswith("s3://"):
        parts = urlsplit(location)
        if not parts.netloc:
            raise ConfigError(f"{location!r} names no bucket: use s3://bucket/prefix")
        from digestpub.adapters.s3 import S3Store

        return S3Store(parts.netloc, parts.path.lstrip("/"))
    if "://" in location:
        raise ConfigError(f"{location!r}: a store is s3://bucket/prefix or a local folder")
    from digestpub.adapters.folder import FolderStore

    folder = FolderStore(location)
    if required_as is not None and not folder.root.is_dir():
        raise ConfigError(f"{required_as} folder {folder.root} does not exist")
    return folder


def open_mailer(location: str) -> Mailer:
    """``outbox:DIR``, ``smtp://user:pass@host:port``, ``smtps://…`` or ``ses://CONFIGURATION-SET``."""
    if location.startswith("outbox:"):
        from digestpub.adapters.outbox import OutboxMailer

        return OutboxMailer(location.removeprefix("outbox:") or "outbox")
    if location.startswith(("smtp://", "smtps://")):
        from digestpub.adapters.smtp import SmtpMailer

        return SmtpMailer(location)
    if location.startswith("ses://"):
        from digestpub.adapters.ses import SesMailer

        return SesMailer(location.removeprefix("ses://").strip("/") or None)
    raise ConfigError(f"mailer {location!r}: use outbox:DIR, smtp://…, smtps://… or ses://CONFIGURATION-SET")


def open_ledger(subscribers: str) -> Ledger:
    """The send ledger beside the subscribers: the same SQLite file, or a DynamoDB table."""
    if subscribers.startswith("sqlite:///"):
        from digestpub.adapters.ledger_sqlite import SqliteLedger

        return SqliteLedger(subscribers.removeprefix("sqlite:///"))
    if subscribers.startswith("dynamodb://"):
        from digestpub.adapters.ledger_dynamodb import DynamoLedger

        return DynamoLedger(subscribers.removeprefix("dynamodb://").strip("/") + "-ledger")
    raise ConfigError(f"subscribers {subscribers!r}: use sqlite:///path.db or dynamodb://table")
