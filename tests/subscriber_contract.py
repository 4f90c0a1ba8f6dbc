"""What every ``SubscriberStore`` must do about suppression, transitions, limits and erasure.

The SQLite tests run these on a file on disk and the DynamoDB tests against moto's
server, so both adapters pass the very same checks. Races use real threads,
each bounded by a barrier timeout and a join timeout.
"""

from __future__ import annotations

import io
import shutil
import threading
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digestpub.adapters.folder_store import FolderStore
from digestpub.model import ConfirmationLimits, StatusChange, Subscriber
from digestpub.ports import Ledger, SubscriberStore
from digestpub.publish import PublishOptions, publish
from digestpub.settings import Settings
from digestpub.subscriptions.subscribers import (
    ACTIVE,
    address_hash,
    erase_address,
    export_csv,
    import_csv,
    new_subscriber,
)
from tests.conftest import EXAMPLES, summary, write_json

NOW = datetime(2026, 11, 20, 9, 5, 15, 123456, tzinfo=UTC)
HEADER = "email,tags,frequency,lang,status\n"
KNOWN_TAGS = frozenset({"llm", "rl", "cv", "nlp", "moe", "rag", "kompiuternoe-zrenie", "line", "multi", "tags"})
LIMITS = ConfirmationLimits(min_interval=timedelta(minutes=10), per_day=3, per_hour=5)
UNSUBSCRIBABLE = frozenset({"pending", "confirmed", "unsubscribed"})
_JOIN = 60.0


def make(email: str, status: str = "confirmed", frequency: str = "daily", tags: str = "llm") -> Subscriber:
    return new_subscriber(email, tags, frequency, "en", status, now=NOW)


def import_text(store: SubscriberStore, text: str) -> tuple[int, int, int, list[tuple[int, str]]]:
    report = import_csv(store, io.StringIO(text, newline=""), known_tags=KNOWN_TAGS, now=NOW)
    return report.added, report.updated, report.unchanged, report.problems


def run_together(jobs: list[Callable[[], object]]) -> list[object]:
    """Start every job at once (a barrier) on its own thread; their results, or the exceptions they raised."""
    barrier = threading.Barrier(len(jobs), timeout=_JOIN)
    results: list[object] = [None] * len(jobs)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = jobs[index]()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(_JOIN)
        assert not thread.is_alive(), "a racing job did not finish"
    return results


class MemoryLedger:
    """Rows of a send ledger, only as far as ``erase_address`` needs them."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], str] = {}

    def forget(self, subscriber_id: str) -> int:
        gone = [key for key in self.rows if key[1] == subscriber_id]
        for key in gone:
            del self.rows[key]
        return len(gone)


# --- addresses whatever their case -------------------------------------------------------------


def check_mixed_case_is_one_subscriber(store: SubscriberStore) -> None:
    alice = make("Alice.Smith@Example.org")
    store.save(alice)
    assert alice.email == "Alice.Smith@example.org", "stored as typed"
    for spelling in ("alice.smith@example.org", "ALICE.SMITH@EXAMPLE.ORG", " aLiCe.SmItH@example.ORG "):
        assert store.find(spelling) == alice
    assert import_text(store, HEADER + "ALICE.SMITH@example.org,llm,daily,en,confirmed\n") == (0, 0, 1, [])
    assert [s.id for s in store.iter_all()] == [alice.id]
    cyrillic = make("Иван@пример.рф")
    store.save(cyrillic)
    assert store.find("иван@ПРИМЕР.РФ") == cyrillic


# --- import keeps suppression --------------------------------------------------------------------


def check_import_keeps_suppressed(store: SubscriberStore) -> None:
    text = HEADER + (
        "gone@example.com,llm,daily,ru,unsubscribed\n"
        "bad@example.com,,daily,ru,bounced\n"
        "angry@example.com,,daily,ru,complained\n"
        "fine@example.com,llm,daily,ru,pending\n"
    )
    assert import_text(store, text)[0] == 4
    before = {s.email: s for s in store.iter_all()}
    again = HEADER + (
        "GONE@example.com,rl,weekly,en,confirmed\n"
        "Bad@Example.com,llm,daily,ru,confirmed\n"
        "angry@example.com,,daily,ru,pending\n"
        "fine@example.com,rl,daily,ru,confirmed\n"
    )
    report = import_csv(store, io.StringIO(again, newline=""), known_tags=KNOWN_TAGS, now=NOW + timedelta(1))
    assert (report.added, report.updated, report.unchanged, report.kept, report.problems) == (0, 1, 0, 3, [])
    assert "3 kept as unsubscribed, bounced or complained" in report.summary_line()
    after = {s.email: s for s in store.iter_all()}
    for address in ("gone@example.com", "bad@example.com", "angry@example.com"):
        assert after[address] == before[address], f"{address} was changed by an import"
    assert (after["fine@example.com"].status, after["fine@example.com"].tags) == ("confirmed", ("rl",))


def check_import_refuses_unknown_tags_and_formulas(store: SubscriberStore) -> None:
    text = HEADER + (
        "ok@example.com,llm,daily,en,confirmed\n"  # 2
        "typo@example.com,llm lmm,daily,en,confirmed\n"  # 3
        "=cmd|'/Ccalc'!A0@example.com,,daily,en,confirmed\n"  # 4
        "+1@example.com,,daily,en,confirmed\n"  # 5
        "-x@example.com,,daily,en,confirmed\n"  # 6
    )
    added, _, _, problems = import_text(store, text)
    assert added == 1
    assert [line for line, _ in problems] == [3, 4, 5, 6]
    assert "unknown tag lmm" in problems[0][1]
    assert all("spreadsheet" in reason for _, reason in problems[1:])
    assert [s.email for s in store.iter_all()] == ["ok@example.com"]


def check_export_escapes_formula_cells(store: SubscriberStore, copy: SubscriberStore) -> None:
    # An address saved before the formula rule (the store itself does not refuse it).
    legacy = make("ok@example.com").model_copy(update={"email": "=cmd@example.com"})
    store.save(legacy)
    store.save(make("plain@example.com"))
    exported = io.StringIO()
    assert export_csv(store, exported) == 2
    lines = exported.getvalue().splitlines()
    assert "'=cmd@example.com,llm,daily,en,confirmed" in lines
    assert not any(line.startswith(("=", "+", "-", "@")) for line in lines)
    # Import reads the escaped cell back as the address it was, and refuses it by the rule.
    added, _, _, problems = import_text(copy, exported.getvalue())
    assert added == 1
    assert len(problems) == 1 and "'=cmd@example.com'" in problems[0][1] and "spreadsheet" in problems[0][1]


# --- transitions ---------------------------------------------------------------------------------


def check_transitions(store: SubscriberStore) -> None:
    person = make("t@example.com", status="pending")
    store.save(person)
    later = NOW + timedelta(hours=1)
    saved = store.set_preferences(person.id, tags=("rl",), frequency="weekly", lang="ru", now=later)
    assert saved is not None
    assert (saved.tags, saved.frequency, saved.lang, saved.status, saved.updated_at) == (
        ("rl",),
        "weekly",
        "ru",
        "pending",
        later,
    )
    assert store.get(person.id) == saved
    assert store.transition(person.id, "confirmed", only_from=("unsubscribed",), now=later) is None
    assert store.get(person.id) == saved, "a transition whose condition fails changes nothing"
    gone = store.transition(person.id, "unsubscribed", only_from=UNSUBSCRIBABLE, now=later)
    assert gone is not None and gone.status == "unsubscribed" and gone.tags == ("rl",)
    # A preference save never changes the status.
    kept = store.set_preferences(person.id, tags=(), frequency="daily", lang="en", now=later)
    assert kept is not None and kept.status == "unsubscribed"
    assert list(store.iter_confirmed("daily")) == []
    for missing in ("no-such-id", "EMAIL#t@example.com", "CONFIRM#x", "ERASED#x"):
        assert store.transition(missing, "bounced", only_from=ACTIVE, now=later) is None
        assert store.set_preferences(missing, tags=(), frequency="daily", lang="en", now=later) is None
        assert store.confirm(missing, nonce="n", now=later) is None
        assert store.count_soft_bounce(missing, limit=5, now=later) is None
        assert not store.request_confirmation(missing, nonce="n", expires_at=later, now=later)


def check_status_changes_are_recorded(store: SubscriberStore) -> None:
    person = make("history@example.com", status="pending")
    old = make("old@example.com", status="confirmed")
    store.save(person)
    store.save(old)
    assert list(store.iter_status_changes()) == [], "a new record is no change"
    hour = timedelta(hours=1)
    assert store.request_confirmation(person.id, nonce="n1", expires_at=NOW + 5 * hour, now=NOW)
    assert store.confirm(person.id, nonce="n1", now=NOW + hour) is not None
    assert store.transition(person.id, "confirmed", only_from=("confirmed",), now=NOW + 2 * hour) is not None
    assert store.transition(person.id, "bounced", only_from=("pending",), now=NOW + 2 * hour) is None
    store.set_preferences(person.id, tags=("rl",), frequency="weekly", lang="ru", now=NOW + 2 * hour)
    assert store.transition(person.id, "unsubscribed", only_from=UNSUBSCRIBABLE, now=NOW + 3 * hour) is not None
    for _ in range(2):
        store.count_soft_bounce(old.id, limit=2, now=NOW + 4 * hour)
    # An import over a known id that changes the status is a change too, and keeps the earlier ones.
    store.save(old.model_copy(update={"status": "complained", "updated_at": NOW + 5 * hour}))
    expected = [
        StatusChange("confirmed", NOW + hour),
        StatusChange("unsubscribed", NOW + 3 * hour),
        StatusChange("bounced", NOW + 4 * hour),
        StatusChange("complained", NOW + 5 * hour),
    ]
    assert sorted(store.iter_status_changes(), key=lambda change: change.at) == expected
    assert {s.status for s in store.iter_all()} == {"unsubscribed", "complained"}
    erase_address(store, MemoryLedger(), person.email, now=NOW)  # type: ignore[arg-type]
    assert sorted(store.iter_status_changes(), key=lambda change: change.at) == expected[2:], "erased with them"


def check_frequency_change_moves_the_sending_list(store: SubscriberStore) -> None:
    person = make("f@example.com", frequency="daily")
    store.save(person)
    store.set_preferences(person.id, tags=(), frequency="weekly", lang="en", now=NOW)
    assert [s.id for s in store.iter_confirmed("weekly")] == [person.id]
    assert list(store.iter_confirmed("daily")) == []
    store.transition(person.id, "bounced", only_from=ACTIVE, now=NOW)
    assert list(store.iter_confirmed("weekly")) == []


def check_soft_bounces(store: SubscriberStore) -> None:
    person = make("soft@example.com")
    store.save(person)
    for count in range(1, 3):
        counted = store.count_soft_bounce(person.id, limit=3, now=NOW)
        assert counted is not None and (counted.soft_bounces, counted.status) == (count, "confirmed")
    counted = store.count_soft_bounce(person.id, limit=3, now=NOW)
    assert counted is not None and (counted.soft_bounces, counted.status) == (3, "bounced")
    angry = make("angry@example.com", status="complained")
    store.save(angry)
    counted = store.count_soft_bounce(angry.id, limit=1, now=NOW)
    assert counted is not None and counted.status == "complained"


def check_confirmation_requests(store: SubscriberStore) -> None:
    person = make("c@example.com", status="pending")
    store.save(person)
    week = timedelta(days=7)
    assert store.confirm(person.id, nonce="never-requested", now=NOW) is None
    assert store.request_confirmation(person.id, nonce="first", expires_at=NOW + week, now=NOW)
    assert store.request_confirmation(person.id, nonce="second", expires_at=NOW + week, now=NOW)
    assert store.confirm(person.id, nonce="first", now=NOW) is None, "replaced by a newer request"
    assert store.confirm(person.id, nonce="second", now=NOW + week) is None, "expired"
    assert store.get(person.id).status == "pending"  # type: ignore[union-attr]
    confirmed = store.confirm(person.id, nonce="second", now=NOW + week - timedelta(seconds=1))
    assert confirmed is not None and confirmed.status == "confirmed"
    assert store.confirm(person.id, nonce="second", now=NOW) is None, "single use"
    # An unsubscribe drops a pending re-subscription: its link then confirms nothing.
    store.transition(person.id, "unsubscribed", only_from=UNSUBSCRIBABLE, now=NOW)
    assert store.request_confirmation(person.id, nonce="again", expires_at=NOW + week, now=NOW)
    assert store.get(person.id).status == "unsubscribed"  # type: ignore[union-attr]
    store.transition(person.id, "unsubscribed", only_from=UNSUBSCRIBABLE, now=NOW)
    assert store.confirm(person.id, nonce="again", now=NOW) is None
    # The person's own opt-in is what makes an unsubscribed subscriber confirmed again.
    assert store.request_confirmation(person.id, nonce="third", expires_at=NOW + week, now=NOW)
    back = store.confirm(person.id, nonce="third", now=NOW)
    assert back is not None and back.status == "confirmed"


# --- confirmation limits -------------------------------------------------------------------------


def check_confirmation_limits(store: SubscriberStore) -> None:
    one = address_hash("one@example.com")
    claims = [store.claim_confirmation_email(one, now=NOW + timedelta(seconds=n), limits=LIMITS) for n in range(20)]
    assert claims == [True] + [False] * 19, "one email per address per 10 minutes"
    assert store.claim_confirmation_email(one, now=NOW + timedelta(minutes=11), limits=LIMITS)
    assert store.claim_confirmation_email(one, now=NOW + timedelta(minutes=22), limits=LIMITS)
    assert not store.claim_confirmation_email(one, now=NOW + timedelta(minutes=33), limits=LIMITS), "3 a day"
    assert not store.claim_confirmation_email(one, now=NOW + timedelta(hours=20), limits=LIMITS)
    assert store.claim_confirmation_email(one, now=NOW + timedelta(hours=25), limits=LIMITS), "a new day"
    # The global ceiling counts every address of one hour (LIMITS: 5), here in a later hour.
    hour = NOW + timedelta(days=3)
    others = [address_hash(f"reader{n}@example.com") for n in range(7)]
    allowed = [store.claim_confirmation_email(each, now=hour, limits=LIMITS) for each in others]
    assert allowed == [True] * 5 + [False] * 2
    assert store.claim_confirmation_email(others[6], now=hour + timedelta(hours=1, minutes=1), limits=LIMITS)


def check_concurrent_confirmation_claims(store_factory: Callable[[], SubscriberStore]) -> None:
    stores = [store_factory() for _ in range(8)]
    target = address_hash("busy@example.com")
    results = run_together(
        [lambda store=store: store.claim_confirmation_email(target, now=NOW, limits=LIMITS) for store in stores]
    )
    assert sorted(map(str, results)) == ["False"] * 7 + ["True"], results


# --- an unsubscribe always wins ------------------------------------------------------------------


def check_unsubscribe_wins_races(store_factory: Callable[[], SubscriberStore], rounds: int = 20) -> None:
    """Each round: a pending subscriber with a live confirm request; an unsubscribe races
    two preference saves and the confirm. Every round ends unsubscribed."""
    stores = [store_factory() for _ in range(4)]
    week = timedelta(days=7)
    for number in range(rounds):
        person = make(f"race{number}@example.com", status="pending")
        stores[0].save(person)
        assert stores[0].request_confirmation(person.id, nonce="live", expires_at=NOW + week, now=NOW)
        target = person.id
        results = run_together(
            [
                lambda: stores[0].transition(target, "unsubscribed", only_from=UNSUBSCRIBABLE, now=NOW),  # noqa: B023
                lambda: stores[1].set_preferences(target, tags=("rl",), frequency="weekly", lang="ru", now=NOW),  # noqa: B023 - joined within the round
                lambda: stores[2].confirm(target, nonce="live", now=NOW),  # noqa: B023
                lambda: stores[3].set_preferences(target, tags=("cv",), frequency="daily", lang="en", now=NOW),  # noqa: B023
            ]
        )
        assert not [result for result in results if isinstance(result, Exception)], results
        final = stores[0].get(person.id)
        assert final is not None and final.status == "unsubscribed", f"round {number}: {final}"
        assert stores[0].confirm(person.id, nonce="live", now=NOW) is None
    for store in stores:
        assert list(store.iter_confirmed("daily")) == list(store.iter_confirmed("weekly")) == []


# --- erasure -------------------------------------------------------------------------------------


def check_erase(store: SubscriberStore) -> None:
    person = make("Erase.Me@example.com")
    other = make("keep@example.com")
    store.save(person)
    store.save(other)
    store.claim_confirmation_email(address_hash(person.email), now=NOW, limits=LIMITS)
    ledger = MemoryLedger()
    ledger.rows = {("daily-2026-11-20", person.id): "sent", ("daily-2026-11-20", other.id): "sent"}
    assert erase_address(store, ledger, "erase.me@EXAMPLE.com", now=NOW)  # type: ignore[arg-type]
    assert store.get(person.id) is None and store.find("erase.me@example.com") is None
    assert list(ledger.rows) == [("daily-2026-11-20", other.id)]
    assert [s.id for s in store.iter_all()] == [other.id]
    assert store.is_erased(address_hash("ERASE.ME@example.com"))
    assert not store.is_erased(address_hash("keep@example.com"))
    # What the limits counted went with it: a new subscription of their own gets its email.
    assert store.claim_confirmation_email(address_hash(person.email), now=NOW, limits=LIMITS)
    _, _, _, problems = import_text(store, HEADER + "erase.me@example.com,llm,daily,en,confirmed\n")
    assert len(problems) == 1 and "erased" in problems[0][1]
    assert store.find("erase.me@example.com") is None
    # Erasing an address nobody has still lists its hash.
    assert not erase_address(store, MemoryLedger(), "never@example.com", now=NOW)  # type: ignore[arg-type]
    assert store.is_erased(address_hash("never@example.com"))


def no_address_in(path: Path, address: str) -> bool:
    """Whether none of the bytes under ``path`` hold the address, in any case."""
    needle = address.lower().encode()
    files = [path] if path.is_file() else [each for each in path.rglob("*") if each.is_file()]
    return not any(needle in each.read_bytes().lower() for each in files)


def publish_tags(root: Path, tags: Collection[str] = KNOWN_TAGS, *, with_examples: bool = False) -> Path:
    """Publish one summary per tag (and the examples) from ``root/source`` into ``root/public``
    and ``root/state``; the state folder, whose head then knows the tags."""
    source, dest, state = root / "source", root / "public", root / "state"
    if with_examples:
        shutil.copytree(EXAMPLES, source, dirs_exist_ok=True)
    for number, tag in enumerate(sorted(tags)):
        write_json(source, f"2026/11/20/tag{number}.json", summary(number, tags=[tag]))
    settings = Settings.load(source=str(source), dest=str(dest), state=str(state))
    publish(FolderStore(source), FolderStore(dest), FolderStore(state), settings.site(), PublishOptions(workers=1))
    return state


def check_ledger_forgets_a_subscriber_in_every_issue(ledger: Ledger) -> None:
    """30 issues, each with a row of the erased subscriber (one quoting the address) and of another."""
    for issue in (f"daily-2026-11-{day:02d}" for day in range(1, 31)):
        for subscriber in ("gone", "kept"):
            assert ledger.claim(issue, subscriber, "run")
        ledger.reject(issue, "gone", "550 5.1.1 <gone@example.com>: user unknown")
    assert ledger.forget("gone") == 30
    assert ledger.forget("gone") == 0
    for day in range(1, 31):
        assert ledger.counts(f"daily-2026-11-{day:02d}") == {"claimed": 1}
    ledger.flush()


def check_ledger_remembers_the_last_issue_of_each_frequency(ledger: Ledger) -> None:
    """Forward only, per frequency, and apart from the issues' rows (which expire and are erased)."""
    assert ledger.last_issue("daily") is None
    first, second = datetime(2026, 11, 20, 7, tzinfo=UTC), datetime(2026, 11, 21, 7, 30, tzinfo=UTC)
    ledger.note_issue("daily", "daily-2026-11-20", first)
    ledger.note_issue("daily", "daily-2026-11-21", second)
    ledger.note_issue("daily", "daily-2026-11-20", first)  # a late retry of the earlier issue
    ledger.note_issue("weekly", "weekly-2026-W47", first)
    assert ledger.last_issue("daily") == ("daily-2026-11-21", second)
    assert ledger.last_issue("weekly") == ("weekly-2026-W47", first)
    assert ledger.counts("daily-2026-11-21") == {}
    assert ledger.forget("daily") == 0


CHECKS = [
    check_mixed_case_is_one_subscriber,
    check_import_keeps_suppressed,
    check_import_refuses_unknown_tags_and_formulas,
    check_transitions,
    check_status_changes_are_recorded,
    check_frequency_change_moves_the_sending_list,
    check_soft_bounces,
    check_confirmation_requests,
    check_confirmation_limits,
    check_erase,
]
"""The checks that take one empty store; the races and the export take a factory or two stores."""
