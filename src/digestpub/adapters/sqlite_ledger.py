"""The send ledger in SQLite: a primary key on (issue, subscriber) makes a claim atomic."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from digestpub.errors import StorageError
from digestpub.private import private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    issue_id TEXT NOT NULL,
    subscriber_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('claimed', 'sent', 'rejected')),
    run_id TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    message_id TEXT,
    detail TEXT,
    PRIMARY KEY (issue_id, subscriber_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ledger_state ON ledger (issue_id, state);
CREATE TABLE IF NOT EXISTS last_issue (
    frequency TEXT PRIMARY KEY,
    issue_id TEXT NOT NULL,
    cutoff TEXT NOT NULL
) WITHOUT ROWID;
"""


class SqliteLedger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            private_file(self.path)
            # Autocommit: each claim and confirmation is its own transaction. WAL
            # with synchronous=NORMAL survives a crash of the process without an
            # fsync per email.
            self._connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise StorageError(f"cannot open the send ledger {self.path}: {error}") from error
        self._lock = threading.Lock()
        self._deferred = False

    def _execute(self, sql: str, parameters: tuple[object, ...], *, defer: bool = False) -> sqlite3.Cursor:
        """Run one statement; commits at once unless ``defer`` (see ``confirm``)."""
        try:
            with self._lock:
                if defer and not self._deferred:
                    self._connection.execute("BEGIN IMMEDIATE")
                    self._deferred = True
                cursor = self._connection.execute(sql, parameters)
                if self._deferred and not defer:
                    self._connection.execute("COMMIT")
                    self._deferred = False
                return cursor
        except sqlite3.Error as error:
            raise StorageError(f"send ledger {self.path}: {error}") from error

    def flush(self) -> None:
        """Commit a deferred confirmation."""
        try:
            with self._lock:
                if self._deferred:
                    self._connection.execute("COMMIT")
                    self._deferred = False
        except sqlite3.Error as error:
            raise StorageError(f"send ledger {self.path}: {error}") from error

    def claim(self, issue_id: str, subscriber_id: str, run_id: str) -> bool:
        cursor = self._execute(
            "INSERT OR IGNORE INTO ledger (issue_id, subscriber_id, state, run_id, claimed_at) "
            "VALUES (?, ?, 'claimed', ?, ?)",
            (issue_id, subscriber_id, run_id, datetime.now(UTC).isoformat()),
        )
        return cursor.rowcount == 1

    def confirm(self, issue_id: str, subscriber_id: str, message_id: str) -> None:
        # Committed with the next claim (or flush): one commit per email instead of
        # two. No transaction is open while a message is sent, and a crash still
        # leaves at most the one message in flight as "unknown".
        self._execute(
            "UPDATE ledger SET state = 'sent', message_id = ? WHERE issue_id = ? AND subscriber_id = ?",
            (message_id, issue_id, subscriber_id),
            defer=True,
        )

    def reject(self, issue_id: str, subscriber_id: str, reason: str) -> None:
        self._execute(
            "UPDATE ledger SET state = 'rejected', detail = ? WHERE issue_id = ? AND subscriber_id = ?",
            (reason, issue_id, subscriber_id),
        )

    def release(self, issue_id: str, subscriber_id: str) -> None:
        self._execute(
            "DELETE FROM ledger WHERE issue_id = ? AND subscriber_id = ? AND state = 'claimed'",
            (issue_id, subscriber_id),
        )

    def unknown(self, issue_id: str, run_id: str, claimed_before: datetime) -> list[str]:
        rows = self._execute(
            "SELECT subscriber_id FROM ledger WHERE issue_id = ? AND state = 'claimed' "
            "AND run_id != ? AND claimed_at < ? ORDER BY subscriber_id",
            (issue_id, run_id, claimed_before.astimezone(UTC).isoformat()),
        ).fetchall()
        return [row[0] for row in rows]

    def reclaim(self, issue_id: str, subscriber_id: str, run_id: str) -> bool:
        cursor = self._execute(
            "UPDATE ledger SET run_id = ?, claimed_at = ? "
            "WHERE issue_id = ? AND subscriber_id = ? AND state = 'claimed' AND run_id != ?",
            (run_id, datetime.now(UTC).isoformat(), issue_id, subscriber_id, run_id),
        )
        return cursor.rowcount == 1

    def counts(self, issue_id: str) -> dict[str, int]:
        rows = self._execute(
            "SELECT state, COUNT(*) FROM ledger WHERE issue_id = ? GROUP BY state", (issue_id,)
        ).fetchall()
        return dict(rows)

    def forget(self, subscriber_id: str) -> int:
        # A full scan: the key starts with the issue, and erasing a person is rare. Deleted
        # rows are overwritten (a refusal's detail may quote the address).
        self._execute("PRAGMA secure_delete = ON", ())
        return self._execute("DELETE FROM ledger WHERE subscriber_id = ?", (subscriber_id,)).rowcount

    def last_issue(self, frequency: str) -> tuple[str, datetime] | None:
        row = self._execute("SELECT issue_id, cutoff FROM last_issue WHERE frequency = ?", (frequency,)).fetchone()
        return None if row is None else (row[0], datetime.fromisoformat(row[1]))

    def note_issue(self, frequency: str, issue_id: str, cutoff: datetime) -> None:
        # UTC ISO text, so that text order is time order.
        self._execute(
            "INSERT INTO last_issue (frequency, issue_id, cutoff) VALUES (?, ?, ?) ON CONFLICT (frequency) "
            "DO UPDATE SET issue_id = excluded.issue_id, cutoff = excluded.cutoff WHERE excluded.cutoff > cutoff",
            (frequency, issue_id, cutoff.astimezone(UTC).isoformat()),
        )

    def close(self) -> None:
        self.flush()
        self._connection.close()
