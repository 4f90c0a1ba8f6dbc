"""The adapters named by the settings' location strings, opened in this one place.

Each adapter module is imported only when its location is named, so a local run
never imports boto3.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from digestpub.errors import ConfigError
from digestpub.ports import Ledger, Mailer, ObjectStore, SubscriberStore
from digestpub.subscriptions.keyring import KeyHome

_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}\Z")
_SUBSCRIBER_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or dynamodb://table"


def open_store(location: str, *, required_as: str | None = None) -> ObjectStore:
    """``s3://bucket/prefix`` opens S3; anything else is a folder.

    ``required_as`` names a store that must already be there (``"source"``): a folder
    that is missing is then a mistyped setting, not an empty store.
    """
    if location.startswith("s3://"):
        parts = urlsplit(location)
        if not parts.netloc:
            raise ConfigError(f"{location!r} names no bucket: use s3://bucket/prefix")
        from digestpub.adapters.s3_store import S3Store

        return S3Store(parts.netloc, parts.path.lstrip("/"))
    if "://" in location:
        raise ConfigError(f"{location!r}: a store is s3://bucket/prefix or a local folder")
    from digestpub.adapters.folder_store import FolderStore

    folder = FolderStore(location)
    if required_as is not None and not folder.root.is_dir():
        raise ConfigError(f"{required_as} folder {folder.root} does not exist")
    return folder


def open_mailer(location: str) -> Mailer:
    """``outbox:DIR``, ``smtp://user:pass@host:port``, ``smtps://…`` or ``ses://CONFIGURATION-SET``."""
    if location.startswith("outbox:"):
        from digestpub.adapters.outbox_mailer import OutboxMailer

        return OutboxMailer(location.removeprefix("outbox:") or "outbox")
    if location.startswith(("smtp://", "smtps://")):
        from digestpub.adapters.smtp_mailer import SmtpMailer

        return SmtpMailer(location)
    if location.startswith("ses://"):
        from digestpub.adapters.ses_mailer import SesMailer

        return SesMailer(location.removeprefix("ses://").strip("/") or None)
    raise ConfigError(f"mailer {location!r}: use outbox:DIR, smtp://…, smtps://… or ses://CONFIGURATION-SET")


def subscriber_location(location: str) -> tuple[Literal["sqlite", "dynamodb"], str]:
    """The ``subscribers`` setting read once: ``("sqlite", path)`` or ``("dynamodb", table)``.

    ``sqlite:///`` is followed by a relative path, or by ``/`` and an absolute one.
    """
    if location.startswith("sqlite:///"):
        path = location.removeprefix("sqlite:///")
        if not path or path.endswith("/"):
            raise ConfigError(f"{location!r} names no database file: use {_SUBSCRIBER_FORMS}")
        return "sqlite", path
    if location.startswith("dynamodb://"):
        table = location.removeprefix("dynamodb://")
        if not _TABLE_NAME.match(table):
            raise ConfigError(f"{location!r}: a DynamoDB table name is 3-255 letters, digits, '_', '-' or '.'")
        return "dynamodb", table
    raise ConfigError(f"subscribers = {location!r}: use {_SUBSCRIBER_FORMS}")


def open_subscribers(location: str) -> SubscriberStore:
    kind, name = subscriber_location(location)
    if kind == "sqlite":
        from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore

        return SqliteSubscriberStore(name)
    from digestpub.adapters.dynamodb_subscribers import DynamoSubscriberStore

    return DynamoSubscriberStore(name)


def open_ledger(subscribers: str) -> Ledger:
    """The send ledger beside the subscribers: the same SQLite file, or the table named ``<table>-ledger``."""
    kind, name = subscriber_location(subscribers)
    if kind == "sqlite":
        from digestpub.adapters.sqlite_ledger import SqliteLedger

        return SqliteLedger(name)
    from digestpub.adapters.dynamodb_ledger import DynamoLedger

    return DynamoLedger(name + "-ledger")


def open_key_home(subscribers: str, state: ObjectStore) -> KeyHome:
    """Where the token keys are kept: beside a SQLite subscriber store (its folder); with
    DynamoDB, where the cloud has no SSM parameter and no ``token_key`` is set, the publish state."""
    kind, name = subscriber_location(subscribers)
    if kind == "sqlite":
        return KeyHome(open_store(str(Path(name).parent)), state)
    return KeyHome(state, state)
