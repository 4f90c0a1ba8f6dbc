"""The SQLite subscriber store on disk, and CSV import and export through it.

The ``check_*`` functions here and in ``tests/subscriber_contract.py`` are the store
behaviour every ``SubscriberStore`` must have; the DynamoDB tests run them too.
"""

from __future__ import annotations

import io
import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.app.locations import open_subscribers
from digestpub.errors import ConfigError
from digestpub.ports import SubscriberStore
from digestpub.subscriptions.subscribers import (
    AddressTaken,
    InvalidAddress,
    InvalidSubscriber,
    export_csv,
    import_csv,
    new_subscriber,
    normalise_email,
)
from tests import subscriber_contract as contract
from tests.subscriber_contract import HEADER, NOW, import_text, make

# Store behaviour shared with the DynamoDB tests


def check_save_get_find(store: SubscriberStore) -> None:
    subscriber = new_subscriber("Reader@Example.COM", ["LLM", "rl", "llm"], "weekly", "ru", now=NOW)
    subscriber = subscriber.model_copy(update={"soft_bounces": 2})
    store.save(subscriber)
    assert store.get(subscriber.id) == subscriber
    assert store.get("no-such-id") is None
    assert store.find("Reader@example.com") == subscriber
    assert store.find("  Reader@EXAMPLE.com ") == subscriber
    assert store.find("other@example.com") is None
    assert store.find("not an address") is None
    assert subscriber.email == "Reader@example.com"
    assert subscriber.tags == ("llm", "rl")


def check_save_replaces_by_id(store: SubscriberStore) -> None:
    first = make("first@example.com")
    store.save(first)
    moved = first.model_copy(
        update={"email": "moved@example.com", "status": "unsubscribed", "updated_at": NOW + timedelta(1)}
    )
    store.save(moved)
    assert store.get(first.id) == moved
    assert store.find("first@example.com") is None
    assert store.find("moved@example.com") == moved
    # The old address is free again.
    again = make("first@example.com")
    store.save(again)
    assert store.find("first@example.com") == again
    assert sorted(s.id for s in store.iter_all()) == sorted([first.id, again.id])


def check_email_is_unique(store: SubscriberStore) -> None:
    original = make("one@example.com")
    store.save(original)
    for spelling in ("one@example.com", "one@EXAMPLE.com", "ONE@example.com"):
        with pytest.raises(AddressTaken):
            store.save(make(spelling))
    assert store.find("one@example.com") == original
    other = make("two@example.com")
    store.save(other)
    with pytest.raises(AddressTaken):
        store.save(other.model_copy(update={"email": "one@example.com"}))
    assert store.get(other.id) == other
    assert [s.id for s in store.iter_all()].count(original.id) == 1
    assert len(list(store.iter_all())) == 2


def check_concurrent_saves_of_one_address(store_factory: Callable[[], SubscriberStore]) -> None:
    results: list[str] = []
    barrier = threading.Barrier(6)

    def save() -> None:
        store = store_factory()
        barrier.wait()
        try:
            store.save(make("race@example.com"))
            results.append("saved")
        except AddressTaken:
            results.append("taken")

    threads = [threading.Thread(target=save) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["saved"] + ["taken"] * 5
    assert [s.email for s in store_factory().iter_all()] == ["race@example.com"]


def check_iteration(store: SubscriberStore) -> None:
    saved = []
    for number in range(23):
        status = ("confirmed", "pending", "unsubscribed")[number % 3]
        frequency = ("daily", "weekly")[number % 2]
        subscriber = make(f"user{number}@example.com", status=status, frequency=frequency)
        store.save(subscriber)
        saved.append(subscriber)
    everyone = list(store.iter_all())
    assert sorted(everyone, key=lambda s: s.id) == sorted(saved, key=lambda s: s.id)
    assert [s.id for s in store.iter_all()] == [s.id for s in everyone], "a stable order"
    for frequency in ("daily", "weekly"):
        confirmed = list(store.iter_confirmed(frequency))
        expected = sorted(
            (s for s in saved if s.status == "confirmed" and s.frequency == frequency), key=lambda s: s.id
        )
        assert confirmed == expected
        assert store.count_confirmed(frequency) == len(expected) > 0
    assert list(store.iter_confirmed("monthly")) == []
    assert store.count_confirmed("monthly") == 0


def check_cyrillic_and_idn(store: SubscriberStore) -> None:
    cyrillic = new_subscriber("Иван@Пример.РФ", "Компьютерное-зрение LLM", "daily", "ru", now=NOW)
    assert cyrillic.email == "Иван@пример.рф"
    assert cyrillic.tags == ("kompiuternoe-zrenie", "llm")
    store.save(cyrillic)
    assert store.find("Иван@ПРИМЕР.рф") == cyrillic
    idn = make("reader@xn--e1afmkfd.xn--p1ai")
    assert idn.email == "reader@пример.рф"
    store.save(idn)
    assert store.find("reader@пример.рф") == idn
    with pytest.raises(AddressTaken):
        store.save(make("reader@ПРИМЕР.РФ"))
    assert store.get(idn.id) == idn
    with pytest.raises(AddressTaken):
        store.save(make("иван@пример.рф"))


# SQLite


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "folder" / "subscribers.db"


@pytest.fixture
def store(db_path: Path) -> SqliteSubscriberStore:
    return SqliteSubscriberStore(db_path, page_size=4)


def test_save_get_find(store: SqliteSubscriberStore) -> None:
    check_save_get_find(store)


def test_save_replaces_by_id(store: SqliteSubscriberStore) -> None:
    check_save_replaces_by_id(store)


def test_email_is_unique(store: SqliteSubscriberStore) -> None:
    check_email_is_unique(store)


def test_concurrent_saves_of_one_address(db_path: Path) -> None:
    check_concurrent_saves_of_one_address(lambda: SqliteSubscriberStore(db_path))


def test_one_store_shared_by_threads(store: SqliteSubscriberStore) -> None:
    check_concurrent_saves_of_one_address(lambda: store)
    store.close()
    assert store.find("race@example.com") is not None


def test_iteration_across_pages(store: SqliteSubscriberStore) -> None:
    check_iteration(store)


def test_cyrillic_and_idn(store: SqliteSubscriberStore) -> None:
    check_cyrillic_and_idn(store)


def test_file_folder_wal_and_unique_index(store: SqliteSubscriberStore, db_path: Path) -> None:
    assert not db_path.exists()
    assert store.find("nobody@example.com") is None
    assert db_path.is_file()
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = connection.execute("PRAGMA index_list(subscribers)").fetchall()
        unique = {row[1] for row in indexes if row[2]}
        columns = {connection.execute(f"PRAGMA index_info({name})").fetchone()[2] for name in unique}
    assert "email_key" in columns


def test_data_outlives_the_store_object(db_path: Path) -> None:
    subscriber = make("kept@example.com")
    SqliteSubscriberStore(db_path).save(subscriber)
    assert SqliteSubscriberStore(db_path).get(subscriber.id) == subscriber


def test_save_of_a_non_address_is_refused(store: SqliteSubscriberStore) -> None:
    broken = make("ok@example.com").model_copy(update={"email": "not an address"})
    with pytest.raises(InvalidAddress):
        store.save(broken)


# Subscribers and addresses


def test_normalise_email() -> None:
    assert normalise_email(" Ivan@Example.COM\t") == "Ivan@example.com"
    for bad in ("", "no-at-sign", "a@b", "Name <a@example.com>", "a@localhost", "a b@example.com"):
        with pytest.raises(InvalidAddress):
            normalise_email(bad)


def test_new_subscriber() -> None:
    subscriber = new_subscriber("a@example.com", "RL  rl LLM ---", "Weekly", "EN", now=NOW)
    assert (subscriber.tags, subscriber.frequency, subscriber.lang, subscriber.status) == (
        ("llm", "rl"),
        "weekly",
        "en",
        "pending",
    )
    assert len(subscriber.id) == 32
    assert subscriber.created_at == subscriber.updated_at == NOW
    assert new_subscriber("a@example.com", [], "daily", "ru").id != subscriber.id
    for field, args in {
        "frequency": ("monthly", "en", "pending"),
        "language": ("daily", "de", "pending"),
        "status": ("daily", "en", "active"),
    }.items():
        with pytest.raises(InvalidSubscriber, match=field):
            new_subscriber("a@example.com", "", *args)


# CSV import and export


def test_import_reports_bad_rows_by_line_and_imports_the_rest(store: SqliteSubscriberStore) -> None:
    text = (
        HEADER
        + "good1@example.com,llm rl,daily,ru,confirmed\n"  # line 2
        + "not-an-address,llm,daily,ru,confirmed\n"  # 3
        + "\n"  # 4: blank, skipped silently
        + "good2@example.com,,weekly,en,pending\n"  # 5
        + "f@example.com,llm,monthly,ru,confirmed\n"  # 6
        + "l@example.com,llm,daily,de,confirmed\n"  # 7
        + "s@example.com,llm,daily,ru,active\n"  # 8
        + "short@example.com,llm,daily\n"  # 9
        + 'good3@example.com,"multi\nline tags",daily,en,confirmed\n'  # 10-11
        + "long@example.com,llm,daily,ru,confirmed,extra\n"  # 12
        + ",llm,daily,ru,confirmed\n"  # 13
        + "good4@example.com,llm,daily,ru,confirmed"  # 14, no final newline
    )
    added, updated, unchanged, problems = import_text(store, text)
    assert (added, updated, unchanged) == (4, 0, 0)
    lines = [line for line, _ in problems]
    assert lines == [3, 6, 7, 8, 9, 12, 13]
    reasons = dict(problems)
    assert "bad address" in reasons[3] and "not-an-address" in reasons[3]
    assert "frequency" in reasons[6] and "monthly" in reasons[6]
    assert "language" in reasons[7]
    assert "status" in reasons[8]
    assert "missing column" in reasons[9] and "lang" in reasons[9] and "status" in reasons[9]
    assert "6 fields" in reasons[12]
    assert "missing email" in reasons[13]
    assert store.find("good3@example.com") is not None
    assert store.find("good3@example.com").tags == ("line", "multi", "tags")  # type: ignore[union-attr]
    assert sorted(s.email for s in store.iter_all()) == [
        "good1@example.com",
        "good2@example.com",
        "good3@example.com",
        "good4@example.com",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a@example.com,llm,daily,ru,confirmed\n", "missing header"),
        ("", "missing header"),
        ("email,tags,frequency,lang\nb@example.com,llm,daily,ru\n", "missing column status"),
        ("email,tags,frequency,lang,status,name\n", "unknown column 'name'"),
        ("email,email,tags,frequency,lang,status\n", "more than once"),
    ],
)
def test_import_with_a_bad_header_imports_nothing(store: SqliteSubscriberStore, text: str, reason: str) -> None:
    added, updated, unchanged, problems = import_text(store, text)
    assert (added, updated, unchanged) == (0, 0, 0)
    assert len(problems) == 1
    assert problems[0][0] == 1
    assert reason in problems[0][1]
    assert list(store.iter_all()) == []


def test_header_in_any_order_case_and_with_bom(store: SqliteSubscriberStore) -> None:
    text = "\ufeffStatus, Email ,LANG,frequency,tags\r\nconfirmed,x@example.com,en,weekly,llm\r\n"
    assert import_text(store, text) == (1, 0, 0, [])
    found = store.find("x@example.com")
    assert found is not None
    assert (found.status, found.lang, found.frequency, found.tags) == ("confirmed", "en", "weekly", ("llm",))


def test_reimport_updates_without_duplicates(store: SqliteSubscriberStore) -> None:
    text = HEADER + "a@example.com,llm,daily,ru,confirmed\nb@example.com,rl,weekly,en,pending\n"
    assert import_text(store, text) == (2, 0, 0, [])
    ids = {s.email: s.id for s in store.iter_all()}
    assert import_text(store, text) == (0, 0, 2, [])
    changed = HEADER + (
        "a@EXAMPLE.COM,llm cv,weekly,en,confirmed\n"  # a@example.com: same address, new fields
        "b@example.com,rl,weekly,en,pending\n"
        "c@example.com,,daily,ru,confirmed\n"
        "c@Example.com,nlp,daily,ru,confirmed\n"  # the same address again in one file
    )
    assert import_text(store, changed) == (1, 2, 1, [])
    everyone = {s.email: s for s in store.iter_all()}
    assert sorted(everyone) == ["a@example.com", "b@example.com", "c@example.com"]
    assert everyone["a@example.com"].id == ids["a@example.com"]
    assert everyone["a@example.com"].tags == ("cv", "llm")
    assert everyone["a@example.com"].frequency == "weekly"
    assert everyone["a@example.com"].updated_at == NOW
    assert everyone["b@example.com"].id == ids["b@example.com"]
    assert everyone["c@example.com"].tags == ("nlp",)


def test_import_does_not_resubscribe_who_withdrew(store: SqliteSubscriberStore) -> None:
    text = HEADER + "gone@example.com,llm,daily,ru,unsubscribed\nangry@example.com,,daily,ru,complained\n"
    assert import_text(store, text)[0] == 2
    again = HEADER + "gone@example.com,llm,daily,ru,confirmed\nangry@example.com,,daily,ru,pending\n"
    report = import_csv(store, io.StringIO(again, newline=""), known_tags=contract.KNOWN_TAGS, now=NOW)
    assert (report.added, report.updated, report.unchanged, report.problems) == (0, 0, 0, [])
    assert report.kept == 2, "reported as kept, not as bad rows"
    assert store.find("gone@example.com").status == "unsubscribed"  # type: ignore[union-attr]
    assert store.find("angry@example.com").status == "complained"  # type: ignore[union-attr]


def test_export_round_trip(store: SqliteSubscriberStore, tmp_path: Path) -> None:
    text = HEADER + (
        "Иван@Пример.РФ,llm компьютерное-зрение,weekly,ru,confirmed\n"
        "anna@example.com,,daily,en,pending\n"
        "o'brien+news@example.com,rl,daily,en,bounced\n"
    )
    assert import_text(store, text)[0] == 3
    exported = io.StringIO()
    assert export_csv(store, exported) == 3
    csv_text = exported.getvalue()
    assert csv_text.startswith(HEADER)
    assert "Иван@пример.рф,kompiuternoe-zrenie llm,weekly,ru,confirmed\n" in csv_text

    copy = SqliteSubscriberStore(tmp_path / "copy.db")
    assert import_text(copy, csv_text) == (3, 0, 0, [])
    fields = lambda s: (s.email, s.tags, s.frequency, s.lang, s.status)  # noqa: E731
    assert sorted(map(fields, copy.iter_all())) == sorted(map(fields, store.iter_all()))
    # Re-importing an export into its own store changes nothing (the bounced row is kept).
    before = sorted(map(fields, store.iter_all()))
    report = import_csv(store, io.StringIO(csv_text, newline=""), known_tags=contract.KNOWN_TAGS, now=NOW)
    assert (report.added, report.updated, report.unchanged, report.kept, report.problems) == (0, 0, 2, 1, [])
    assert sorted(map(fields, store.iter_all())) == before
    again = io.StringIO()
    export_csv(copy, again)
    assert sorted(again.getvalue().splitlines()) == sorted(csv_text.splitlines())


def test_export_of_an_empty_store(store: SqliteSubscriberStore) -> None:
    stream = io.StringIO()
    assert export_csv(store, stream) == 0
    assert stream.getvalue() == HEADER


# The factory


def test_open_subscribers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_subscribers("sqlite:///data/s.db")
    assert isinstance(relative, SqliteSubscriberStore)
    assert relative.path == Path("data/s.db")
    absolute = open_subscribers(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(absolute, SqliteSubscriberStore)
    assert absolute.path == tmp_path / "abs.db"
    relative.save(make("r@example.com"))
    assert (tmp_path / "data" / "s.db").is_file()
    for bad in ("sqlite://s.db", "sqlite:///", "postgres://x", "s.db", "dynamodb://", "dynamodb://a/b"):
        with pytest.raises(ConfigError):
            open_subscribers(bad)


# The contract of tests/subscriber_contract.py


@pytest.mark.parametrize("check", contract.CHECKS)
def test_contract(store: SqliteSubscriberStore, check: Callable[[SubscriberStore], None]) -> None:
    check(store)


def test_export_escapes_formula_cells(store: SqliteSubscriberStore, tmp_path: Path) -> None:
    contract.check_export_escapes_formula_cells(store, SqliteSubscriberStore(tmp_path / "copy.db"))


def test_concurrent_confirmation_claims(db_path: Path) -> None:
    contract.check_concurrent_confirmation_claims(lambda: SqliteSubscriberStore(db_path))


def test_unsubscribe_wins_races(db_path: Path) -> None:
    contract.check_unsubscribe_wins_races(lambda: SqliteSubscriberStore(db_path))


def test_erase_leaves_no_address_in_the_file(db_path: Path) -> None:
    store = SqliteSubscriberStore(db_path)
    store.save(make("Secret.Person@example.com"))
    contract.erase_address(store, contract.MemoryLedger(), "secret.person@example.com")  # type: ignore[arg-type]
    store.close()
    with sqlite3.connect(db_path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("VACUUM")
    assert contract.no_address_in(db_path.parent, "secret.person@example.com")


_OLD_SCHEMA = """
CREATE TABLE subscribers (
    id TEXT PRIMARY KEY, email TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '', frequency TEXT NOT NULL,
    lang TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    soft_bounces INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX subscribers_email ON subscribers (email);
"""


def test_a_file_from_before_case_insensitive_addresses_is_migrated(db_path: Path) -> None:
    """Rows that differ only in case become one subscriber: the oldest id, and a
    suppression under either spelling wins."""
    db_path.parent.mkdir(parents=True)
    rows = [
        ("old", "Alice@example.org", "confirmed", "2026-01-01T00:00:00+00:00"),
        ("new", "alice@example.org", "complained", "2026-02-01T00:00:00+00:00"),
        ("bob", "bob@example.org", "confirmed", "2026-01-01T00:00:00+00:00"),
    ]
    with sqlite3.connect(db_path) as connection:
        connection.executescript(_OLD_SCHEMA)
        for row_id, email, status, created in rows:
            connection.execute(
                "INSERT INTO subscribers VALUES (?, ?, 'llm', 'daily', 'en', ?, ?, ?, 0)",
                (row_id, email, status, created, created),
            )
    store = SqliteSubscriberStore(db_path)
    alice = store.find("ALICE@example.org")
    assert alice is not None and (alice.id, alice.email, alice.status) == ("old", "Alice@example.org", "complained")
    assert sorted(s.id for s in store.iter_all()) == ["bob", "old"]
    with pytest.raises(AddressTaken):
        store.save(make("alice@EXAMPLE.org"))
    assert SqliteSubscriberStore(db_path).find("bob@example.org") is not None, "a second open changes nothing"


def test_the_ledger_forgets_a_subscriber_in_every_issue(db_path: Path) -> None:
    from digestpub.adapters.sqlite_ledger import SqliteLedger

    ledger = SqliteLedger(db_path)
    contract.check_ledger_forgets_a_subscriber_in_every_issue(ledger)
    ledger.close()
    assert contract.no_address_in(db_path.parent, "gone@example.com")


def test_the_ledger_remembers_the_last_issue_of_each_frequency(db_path: Path) -> None:
    from digestpub.adapters.sqlite_ledger import SqliteLedger

    contract.check_ledger_remembers_the_last_issue_of_each_frequency(SqliteLedger(db_path))
    reopened = SqliteLedger(db_path)
    assert reopened.last_issue("daily") is not None, "kept on disk"
    reopened.close()
