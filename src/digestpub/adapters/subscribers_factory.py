"""The subscriber store named by the ``subscribers`` setting."""

from __future__ import annotations

import re

from digestpub.errors import ConfigError
from digestpub.ports import SubscriberStore

_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}\Z")
_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or dynamodb://table"


def open_subscribers(location: str) -> SubscriberStore:
    """``sqlite:///path.db`` (three slashes, then a relative path or ``/`` and an absolute
    one) or ``dynamodb://table``; boto3 is imported only for the latter."""
    if location.startswith("sqlite:///"):
        path = location.removeprefix("sqlite:///")
        if not path or path.endswith("/"):
            raise ConfigError(f"{location!r} names no database file: use {_FORMS}")
        from digestpub.adapters.sqlite import SqliteSubscriberStore

        return SqliteSubscriberStore(path)
    if location.startswith("dynamodb://"):
        table = location.removeprefix("dynamodb://")
        if not _TABLE_NAME.match(table):
            raise ConfigError(f"{location!r}: a DynamoDB table name is 3-255 letters, digits, '_', '-' or '.'")
        from digestpub.adapters.dynamodb import DynamoSubscriberStore

        return DynamoSubscriberStore(table)
    raise ConfigError(f"subscribers = {location!r}: use {_FORMS}")
