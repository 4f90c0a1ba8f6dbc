"""SQLite as the local subscriber store (and, later, the send ledger) in one file.

The file is created with its folder on first use and runs in WAL mode, so a send
reading subscribers and a ``subscribe`` request writing one do not block each
other. Each thread (and process) gets its own connection, kept open between
calls, in autocommit mode: every statement is its own short transaction, so a
store is safe to share between threads.

Iteration is keyset-paginated by ``id`` (``WHERE id > ? ORDER BY id LIMIT n``):
a stable order, and no read transaction held open for the hours a send may take,
which would stop WAL checkpoints and let the WAL file grow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from digestpub.errors import StorageError
from digestpub.model import ConfirmationLimits, StatusChange, Subscriber, SubscriberStatus, sortable_time
from digestpub.private import private_file
from digestpub.subscriptions.subscribers import AddressTaken, InvalidAddress, address_key, normalise_email

log = logging.getLogger("digestpub.subscriptions.subscribers")

PAGE_SIZE = 500
_BUSY_TIMEOUT = 30.0

# Every table of the file, created on first use; each statement is idempotent.
SCHEMA: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS subscribers (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '',
        frequency TEXT NOT NULL,
        lang TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        soft_bounces INTEGER NOT NULL DEFAULT 0,
        email_key TEXT,
        confirm_nonce TEXT,
        confirm_expires TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS subscribers_sending ON subscribers (status, frequency, id)",
    # One row per confirmation email sent, by address hash: the rate limits count them.
    """
    CREATE TABLE IF NOT EXISTS confirmation_emails (
        address_hash TEXT NOT NULL,
        sent_at REAL NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS confirmation_emails_by_address ON confirmation_emails (address_hash, sent_at)",
    "CREATE INDEX IF NOT EXISTS confirmation_emails_by_time ON confirmation_emails (sent_at)",
    "CREATE TABLE IF NOT EXISTS erased (address_hash TEXT PRIMARY KEY, erased_at TEXT NOT NULL) WITHOUT ROWID",
    # Each change of status, recorded by triggers in the statement that makes it, and
    # gone with its subscriber (an erased person leaves no trace here).
    """
    CREATE TABLE IF NOT EXISTS status_changes (
        subscriber_id TEXT NOT NULL,
        status TEXT NOT NULL,
        at TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS status_changes_by_subscriber ON status_changes (subscriber_id)",
    """
    CREATE TRIGGER IF NOT EXISTS record_status_change AFTER UPDATE OF status ON subscribers
    WHEN NEW.status IS NOT OLD.status
    BEGIN
        INSERT INTO status_changes (subscriber_id, status, at) VALUES (NEW.id, NEW.status, NEW.updated_at);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS forget_status_changes AFTER DELETE ON subscribers
    BEGIN
        DELETE FROM status_changes WHERE subscriber_id = OLD.id;
    END
    """,
]

# Files written before addresses were matched whatever their case lack these columns.
_ADDED_COLUMNS = {"email_key": "TEXT", "confirm_nonce": "TEXT", "confirm_expires": "TEXT"}
_KEY_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS subscribers_email_key ON subscribers (email_key)"
_MERGE_ORDER = {"complained": 0, "bounced": 1, "unsubscribed": 2, "confirmed": 3, "pending": 4}
"""Which status survives when two rows turn out to be one address: suppression first."""

_COLUMNS = "id, email, tags, frequency, lang, status, created_at, updated_at, soft_bounces"
_DAY = 86_400.0
_HOUR = 3_600.0


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the file at ``path`` with every table in ``SCHEMA`` present.

    The caller closes it. Errors are raised as ``StorageError``.
    """
    try:
        private_file(path)
        connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT, isolation_level=None)
    except (OSError, sqlite3.Error) as error:
        raise StorageError(f"cannot open {path}: {error}") from error
    try:
        _use_wal(connection)
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as error:
        connection.close()
        raise StorageError(f"cannot open {path}: {error}") from error
    return connection


def _use_wal(connection: sqlite3.Connection) -> None:
    """Switch the file to WAL (it stays so). The switch needs the file to itself and
    answers "locked" at once, without waiting, while others open it: retry a while."""
    if connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def create_schema(connection: sqlite3.Connection) -> None:
    """Run every statement of ``SCHEMA`` and bring older files up to date, in one transaction."""
    with _transaction(connection):
        for statement in SCHEMA:
            connection.execute(statement)
        _add_address_keys(connection)
        connection.execute(_KEY_INDEX)


def _add_address_keys(connection: sqlite3.Connection) -> None:
    """Give rows from before case-insensitive addresses their key, merging rows that share one.

    Two rows that differ only in the case of the address are one person: the oldest
    row keeps its id, with the most restrictive status of the group, so an
    unsubscribe or a complaint under either spelling still holds.
    """
    present = {row[1] for row in connection.execute("PRAGMA table_info(subscribers)")}
    for column, kind in _ADDED_COLUMNS.items():
        if column not in present:
            connection.execute(f"ALTER TABLE subscribers ADD COLUMN {column} {kind}")
    rows = connection.execute(
        "SELECT id, email, status, created_at FROM subscribers WHERE email_key IS NULL"
    ).fetchall()
    if not rows:
        return
    connection.execute("DROP INDEX IF EXISTS subscribers_email")
    for subscriber_id, email, _status, _created in rows:
        connection.execute("UPDATE subscribers SET email_key = ? WHERE id = ?", (_key_of(email), subscriber_id))
    groups = connection.execute("SELECT email_key FROM subscribers GROUP BY email_key HAVING COUNT(*) > 1").fetchall()
    for (key,) in groups:
        members = connection.execute(
            "SELECT id, status FROM subscribers WHERE email_key = ? ORDER BY created_at, id", (key,)
        ).fetchall()
        status = min((member[1] for member in members), key=lambda value: _MERGE_ORDER.get(value, 5))
        connection.execute("UPDATE subscribers SET status = ? WHERE id = ?", (status, members[0][0]))
        for member_id, _ in members[1:]:
            connection.execute("DELETE FROM subscribers WHERE id = ?", (member_id,))
    if groups:
        log.warning("merged %d addresses that differed only in case into one subscriber each", len(groups))


def _key_of(email: str) -> str:
    try:
        return address_key(email)
    except InvalidAddress:
        return email.lower()  # kept as it was stored: still one key per spelling


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _row_to_subscriber(row: tuple[Any, ...]) -> Subscriber:
    subscriber_id, email, tags, frequency, lang, status, created_at, updated_at, soft_bounces = row
    return Subscriber(
        id=subscriber_id,
        email=email,
        tags=tuple(tags.split()),
        frequency=frequency,
        lang=lang,
        status=status,
        created_at=created_at,
        updated_at=updated_at,
        soft_bounces=soft_bounces,
    )


class SqliteSubscriberStore:
    """Subscribers in the ``subscribers`` table of a SQLite file, unique by normalised email."""

    def __init__(self, path: str | Path, page_size: int = PAGE_SIZE) -> None:
        self.path = Path(path)
        self.page_size = page_size
        self._local = threading.local()

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or self._local.pid != os.getpid():
            connection = connect(self.path)
            try:
                create_schema(connection)
            except sqlite3.Error as error:
                connection.close()
                raise StorageError(f"{self.url}: {error}") from error
            self._local.connection, self._local.pid = connection, os.getpid()
        try:
            yield connection
        except sqlite3.Error as error:
            raise StorageError(f"{self.url}: {error}") from error

    def close(self) -> None:
        """Close this thread's connection (others close when their thread's store is collected)."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            self._local.connection = None
            connection.close()

    def get(self, subscriber_id: str) -> Subscriber | None:
        with self._connection() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM subscribers WHERE id = ?",  # noqa: S608 - fixed column list
                (subscriber_id,),
            ).fetchone()
        return None if row is None else _row_to_subscriber(row)

    def find(self, email: str) -> Subscriber | None:
        try:
            key = address_key(email)
        except InvalidAddress:
            return None
        with self._connection() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM subscribers WHERE email_key = ?",  # noqa: S608 - fixed column list
                (key,),
            ).fetchone()
        return None if row is None else _row_to_subscriber(row)

    def save(self, subscriber: Subscriber) -> None:
        """Insert or replace by id; the address is stored normalised, as typed.

        Raises ``AddressTaken`` when another id holds the address (in any case), and
        ``InvalidAddress`` when it is not an address at all.
        """
        address = normalise_email(subscriber.email)
        values = (
            subscriber.id,
            address,
            " ".join(subscriber.tags),
            subscriber.frequency,
            subscriber.lang,
            subscriber.status,
            subscriber.created_at.isoformat(),
            subscriber.updated_at.isoformat(),
            subscriber.soft_bounces,
            address.lower(),
        )
        with self._connection() as connection:
            try:
                connection.execute(
                    f"INSERT INTO subscribers ({_COLUMNS}, email_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
                    "ON CONFLICT (id) DO UPDATE SET email = excluded.email, tags = excluded.tags, "
                    "frequency = excluded.frequency, lang = excluded.lang, status = excluded.status, "
                    "created_at = excluded.created_at, updated_at = excluded.updated_at, "
                    "soft_bounces = excluded.soft_bounces, email_key = excluded.email_key",
                    values,
                )
            except sqlite3.IntegrityError as error:
                raise AddressTaken("the address already belongs to another subscriber") from error

    def _update(
        self, subscriber_id: str, assignments: str, condition: str, parameters: tuple[Any, ...]
    ) -> Subscriber | None:
        """One conditional ``UPDATE … RETURNING``: the row as it became, or ``None``.

        ``parameters`` are those of ``assignments``, then those of ``condition``.
        """
        with self._connection() as connection:
            row = connection.execute(
                f"UPDATE subscribers SET {assignments} WHERE ({condition}) AND id = ? RETURNING {_COLUMNS}",  # noqa: S608
                (*parameters, subscriber_id),
            ).fetchone()
        return None if row is None else _row_to_subscriber(row)

    def transition(
        self, subscriber_id: str, status: SubscriberStatus, *, only_from: Collection[str], now: datetime
    ) -> Subscriber | None:
        if not only_from:
            return None
        marks = ", ".join("?" * len(only_from))
        return self._update(
            subscriber_id,
            "status = ?, updated_at = ?, confirm_nonce = NULL, confirm_expires = NULL",
            f"status IN ({marks})",
            (status, now.isoformat(), *sorted(only_from)),
        )

    def count_soft_bounce(self, subscriber_id: str, *, limit: int, now: datetime) -> Subscriber | None:
        return self._update(
            subscriber_id,
            "soft_bounces = soft_bounces + 1, updated_at = ?, status = CASE "
            "WHEN soft_bounces + 1 >= ? AND status IN ('pending', 'confirmed') THEN 'bounced' ELSE status END",
            "1 = 1",
            (now.isoformat(), limit),
        )

    def set_preferences(
        self, subscriber_id: str, *, tags: tuple[str, ...], frequency: str, lang: str, now: datetime
    ) -> Subscriber | None:
        return self._update(
            subscriber_id,
            "tags = ?, frequency = ?, lang = ?, updated_at = ?",
            "1 = 1",
            (" ".join(tags), frequency, lang, now.isoformat()),
        )

    def request_confirmation(self, subscriber_id: str, *, nonce: str, expires_at: datetime, now: datetime) -> bool:
        found = self._update(
            subscriber_id,
            "confirm_nonce = ?, confirm_expires = ?, updated_at = ?",
            "1 = 1",
            (nonce, sortable_time(expires_at), now.isoformat()),
        )
        return found is not None

    def confirm(self, subscriber_id: str, *, nonce: str, now: datetime) -> Subscriber | None:
        return self._update(
            subscriber_id,
            "status = 'confirmed', soft_bounces = 0, confirm_nonce = NULL, confirm_expires = NULL, updated_at = ?",
            "confirm_nonce = ? AND confirm_expires > ?",
            (now.isoformat(), nonce, sortable_time(now)),
        )

    def claim_confirmation_email(self, address_hash: str, *, now: datetime, limits: ConfirmationLimits) -> bool:
        moment = now.timestamp()
        with self._connection() as connection, _transaction(connection):
            connection.execute("DELETE FROM confirmation_emails WHERE sent_at <= ?", (moment - _DAY,))
            last, today = connection.execute(
                "SELECT MAX(sent_at), COUNT(*) FROM confirmation_emails WHERE address_hash = ?",
                (address_hash,),
            ).fetchone()
            if last is not None and moment - last < limits.min_interval.total_seconds():
                return False
            if today >= limits.per_day:
                return False
            (this_hour,) = connection.execute(
                "SELECT COUNT(*) FROM confirmation_emails WHERE sent_at > ?", (moment - _HOUR,)
            ).fetchone()
            if this_hour >= limits.per_hour:
                return False
            connection.execute(
                "INSERT INTO confirmation_emails (address_hash, sent_at) VALUES (?, ?)", (address_hash, moment)
            )
        return True

    def erase(self, address_hash: str, subscriber_id: str | None, *, now: datetime) -> bool:
        """Deleted rows are overwritten, and the WAL is emptied into the file: the address is
        gone from the bytes on disk, not only from the table."""
        with self._connection() as connection:
            connection.execute("PRAGMA secure_delete = ON")
            with _transaction(connection):
                deleted = 0
                if subscriber_id is not None:
                    deleted = connection.execute("DELETE FROM subscribers WHERE id = ?", (subscriber_id,)).rowcount
                connection.execute("DELETE FROM confirmation_emails WHERE address_hash = ?", (address_hash,))
                connection.execute(
                    "INSERT OR IGNORE INTO erased (address_hash, erased_at) VALUES (?, ?)",
                    (address_hash, now.isoformat()),
                )
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted == 1

    def is_erased(self, address_hash: str) -> bool:
        with self._connection() as connection:
            row = connection.execute("SELECT 1 FROM erased WHERE address_hash = ?", (address_hash,)).fetchone()
        return row is not None

    def _pages(self, where: str, parameters: tuple[Any, ...]) -> Iterator[Subscriber]:
        after = ""
        while True:
            with self._connection() as connection:
                rows = connection.execute(
                    f"SELECT {_COLUMNS} FROM subscribers WHERE {where} AND id > ? "  # noqa: S608
                    "ORDER BY id LIMIT ?",
                    (*parameters, after, self.page_size),
                ).fetchall()
            for row in rows:
                yield _row_to_subscriber(row)
            if len(rows) < self.page_size:
                return
            after = rows[-1][0]

    def iter_all(self) -> Iterator[Subscriber]:
        return self._pages("1 = 1", ())

    def iter_confirmed(self, frequency: str) -> Iterator[Subscriber]:
        return self._pages("status = 'confirmed' AND frequency = ?", (frequency,))

    def count_confirmed(self, frequency: str) -> int:
        with self._connection() as connection:
            row = connection.execute(
                "SELECT COUNT(*) FROM subscribers WHERE status = 'confirmed' AND frequency = ?", (frequency,)
            ).fetchone()
        return int(row[0])

    def iter_status_changes(self) -> Iterator[StatusChange]:
        after = 0
        while True:
            with self._connection() as connection:
                rows = connection.execute(
                    "SELECT rowid, status, at FROM status_changes WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (after, self.page_size),
                ).fetchall()
            for _rowid, status, at in rows:
                yield StatusChange(status, datetime.fromisoformat(at))
            if len(rows) < self.page_size:
                return
            after = rows[-1][0]
