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
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from digestpub.errors import StorageError
from digestpub.model import Subscriber
from digestpub.private import private_file
from digestpub.subscribers import AddressTaken, InvalidAddress, normalise_email

PAGE_SIZE = 500
_BUSY_TIMEOUT = 30.0

# Every table of the file, created on first use. The ledger appends its own
# statements here (a ``ledger`` table); each must be idempotent (IF NOT EXISTS).
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
        soft_bounces INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE UNIQUE INDEX IF NOT EXISTS subscribers_email ON subscribers (email)",
    "CREATE INDEX IF NOT EXISTS subscribers_sending ON subscribers (status, frequency, id)",
]

_COLUMNS = "id, email, tags, frequency, lang, status, created_at, updated_at, soft_bounces"


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
    """Run every statement of ``SCHEMA`` in one transaction."""
    with _transaction(connection):
        for statement in SCHEMA:
            connection.execute(statement)


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
            address = normalise_email(email)
        except InvalidAddress:
            return None
        with self._connection() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM subscribers WHERE email = ?",  # noqa: S608 - fixed column list
                (address,),
            ).fetchone()
        return None if row is None else _row_to_subscriber(row)

    def save(self, subscriber: Subscriber) -> None:
        """Insert or replace by id; the address is stored normalised.

        Raises ``AddressTaken`` when another id holds the address, and
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
        )
        with self._connection() as connection:
            try:
                connection.execute(
                    f"INSERT INTO subscribers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
                    "ON CONFLICT (id) DO UPDATE SET email = excluded.email, tags = excluded.tags, "
                    "frequency = excluded.frequency, lang = excluded.lang, status = excluded.status, "
                    "created_at = excluded.created_at, updated_at = excluded.updated_at, "
                    "soft_bounces = excluded.soft_bounces",
                    values,
                )
            except sqlite3.IntegrityError as error:
                raise AddressTaken(f"{address} already belongs to another subscriber") from error

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
