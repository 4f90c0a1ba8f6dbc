"""The DynamoDB subscriber store against moto in server mode (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from digestpub.adapters.dynamodb_subscribers import DynamoSubscriberStore, create_subscribers_table
from digestpub.app.locations import open_subscribers
from digestpub.errors import StorageError
from digestpub.model import Subscriber
from digestpub.ports import SubscriberStore
from digestpub.subscriptions.subscribers import AddressTaken, export_csv
from tests import subscriber_contract as contract
from tests.integration.test_subscribers_sqlite import (
    check_concurrent_saves_of_one_address,
    check_cyrillic_and_idn,
    check_email_is_unique,
    check_iteration,
    check_save_get_find,
    check_save_replaces_by_id,
)
from tests.subscriber_contract import HEADER, NOW, import_text, make


@pytest.fixture
def table(moto_server: str) -> Iterator[str]:
    import boto3
    import requests

    name = f"subscribers-{uuid.uuid4().hex[:12]}"
    create_subscribers_table(boto3.client("dynamodb"), name)
    yield name
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)


@pytest.fixture(scope="module")
def serial_dynamodb(moto_server: str) -> Iterator[Any]:
    """A second moto server that answers one request at a time, for the races.

    moto's threaded server does not make a conditional write atomic against another
    thread's; DynamoDB does, per item. Answering requests one by one gives that
    guarantee and nothing more: the racing clients still interleave their reads and
    conditional writes, which is what the adapter must get right.
    """
    import boto3
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield lambda: boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture
def serial_table(serial_dynamodb: Any) -> str:
    name = f"race-{uuid.uuid4().hex[:12]}"
    create_subscribers_table(serial_dynamodb(), name)
    return name


@pytest.fixture
def store(table: str) -> DynamoSubscriberStore:
    return DynamoSubscriberStore(table, page_size=4)


def _raw_items(table: str) -> list[dict[str, Any]]:
    import boto3

    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return items


def test_save_get_find(store: DynamoSubscriberStore) -> None:
    check_save_get_find(store)


def test_save_replaces_by_id_and_moves_the_address_lock(store: DynamoSubscriberStore, table: str) -> None:
    check_save_replaces_by_id(store)
    locks = sorted(item["id"]["S"] for item in _raw_items(table) if item["id"]["S"].startswith("EMAIL#"))
    assert locks == ["EMAIL#first@example.com", "EMAIL#moved@example.com"]


def test_email_is_unique(store: DynamoSubscriberStore) -> None:
    check_email_is_unique(store)


def test_concurrent_saves_of_one_address(table: str) -> None:
    check_concurrent_saves_of_one_address(lambda: DynamoSubscriberStore(table))


def test_iteration_paginates_and_skips_locks(store: DynamoSubscriberStore) -> None:
    check_iteration(store)


def test_cyrillic_and_idn(store: DynamoSubscriberStore) -> None:
    check_cyrillic_and_idn(store)


def test_lock_ids_are_not_subscribers(store: DynamoSubscriberStore) -> None:
    subscriber = make("locked@example.com")
    store.save(subscriber)
    assert store.get("EMAIL#locked@example.com") is None
    with pytest.raises(StorageError, match="reserved"):
        store.save(make("x@example.com").model_copy(update={"id": "EMAIL#x@example.com"}))


def test_a_stale_lock_is_taken_over(store: DynamoSubscriberStore, table: str) -> None:
    import boto3

    gone = make("stale@example.com")
    store.save(gone)
    # An operator deletes the subscriber by hand and leaves its address lock behind.
    boto3.client("dynamodb").delete_item(TableName=table, Key={"id": {"S": gone.id}})
    assert store.find("stale@example.com") is None
    newcomer = make("stale@example.com")
    store.save(newcomer)
    assert store.find("stale@example.com") == newcomer
    # A lock whose owner still has the address is never taken over.
    with pytest.raises(AddressTaken):
        store.save(make("stale@example.com"))


def test_csv_import_and_export(store: DynamoSubscriberStore) -> None:
    text = HEADER + (
        "Иван@Пример.РФ,llm,weekly,ru,confirmed\n"
        "bad-address,llm,daily,ru,confirmed\n"
        "anna@example.com,,daily,en,pending\n"
    )
    added, updated, unchanged, problems = import_text(store, text)
    assert (added, updated, unchanged) == (2, 0, 0)
    assert [line for line, _ in problems] == [3]
    ids = {s.email: s.id for s in store.iter_all()}
    changed = HEADER + "иван@пример.рф,llm rl,weekly,ru,confirmed\nanna@example.com,,daily,en,pending\n"
    # An address is one subscriber whatever its case: this иван is the Иван above, kept as first typed.
    assert import_text(store, changed)[:3] == (0, 1, 1)
    assert import_text(store, HEADER + "Иван@пример.рф,rl,daily,en,confirmed\n")[:3] == (0, 1, 0)
    everyone = {s.email: s for s in store.iter_all()}
    assert len(everyone) == 2
    assert everyone["Иван@пример.рф"].id == ids["Иван@пример.рф"]
    assert everyone["Иван@пример.рф"].updated_at == NOW
    exported = io.StringIO()
    assert export_csv(store, exported) == 2
    assert "Иван@пример.рф,rl,daily,en,confirmed\n" in exported.getvalue()


def test_factory_opens_dynamodb(table: str) -> None:
    store = open_subscribers(f"dynamodb://{table}")
    assert isinstance(store, DynamoSubscriberStore)
    store.save(make("factory@example.com"))
    assert store.find("factory@example.com") is not None


# The contract of tests/subscriber_contract.py


@pytest.mark.parametrize("check", contract.CHECKS)
def test_contract(store: DynamoSubscriberStore, check: Callable[[SubscriberStore], None]) -> None:
    check(store)


def test_export_escapes_formula_cells(store: DynamoSubscriberStore, moto_server: str) -> None:
    import boto3

    other = f"copy-{uuid.uuid4().hex[:12]}"
    create_subscribers_table(boto3.client("dynamodb"), other)
    contract.check_export_escapes_formula_cells(store, DynamoSubscriberStore(other))


def test_concurrent_confirmation_claims(serial_table: str, serial_dynamodb: Any) -> None:
    contract.check_concurrent_confirmation_claims(lambda: DynamoSubscriberStore(serial_table, serial_dynamodb()))


def test_unsubscribe_wins_races(serial_table: str, serial_dynamodb: Any) -> None:
    contract.check_unsubscribe_wins_races(lambda: DynamoSubscriberStore(serial_table, serial_dynamodb()))


def test_erase_leaves_no_address_in_the_table(store: DynamoSubscriberStore, table: str) -> None:
    store.save(make("Secret.Person@example.com"))
    store.claim_confirmation_email(contract.address_hash("secret.person@example.com"), now=NOW, limits=contract.LIMITS)
    contract.erase_address(store, contract.MemoryLedger(), "SECRET.person@example.com")  # type: ignore[arg-type]
    assert "secret.person" not in str(_raw_items(table)).lower()
    kinds = sorted(item["id"]["S"].rsplit("#", 1)[0] for item in _raw_items(table))
    assert kinds == ["CONFIRM#HOUR", "ERASED", "SCHEMA"], "only the hour's count (of everyone), the hash and a marker"


def _old_item(person: Subscriber, status: str, created: str) -> dict[str, Any]:
    """A subscriber item as written before addresses had keys."""
    return {
        "id": {"S": person.id},
        "email": {"S": person.email},
        "tags": {"L": [{"S": "llm"}]},
        "frequency": {"S": "daily"},
        "lang": {"S": "en"},
        "status": {"S": status},
        "status_frequency": {"S": f"{status}#daily"},
        "created_at": {"S": created},
        "updated_at": {"S": created},
        "soft_bounces": {"N": "0"},
    }


def test_a_table_from_before_case_insensitive_addresses_is_migrated(table: str) -> None:
    """The first lookup migrates: locks named by the key, and two spellings of one address
    become one subscriber, whose suppression holds."""
    import boto3

    client = boto3.client("dynamodb")
    upper, lower, bob = make("Alice@example.org"), make("alice@example.org"), make("Bob@example.org")
    for person, status, created in (
        (upper, "confirmed", "2026-01-01T00:00:00+00:00"),
        (lower, "complained", "2026-02-01T00:00:00+00:00"),
        (bob, "confirmed", "2026-01-01T00:00:00+00:00"),
    ):
        client.put_item(TableName=table, Item=_old_item(person, status, created))
        client.put_item(TableName=table, Item={"id": {"S": f"EMAIL#{person.email}"}, "owner": {"S": person.id}})
    store = DynamoSubscriberStore(table)
    alice = store.find("ALICE@example.org")
    assert alice is not None and alice.status == "complained"
    assert store.find("bob@EXAMPLE.org") is not None
    locks = sorted(item["id"]["S"] for item in _raw_items(table) if item["id"]["S"].startswith("EMAIL#"))
    assert locks == ["EMAIL#alice@example.org", "EMAIL#bob@example.org"]
    assert len(list(store.iter_all())) == 2
    assert contract.import_text(store, HEADER + "ALICE@example.org,llm,daily,en,confirmed\n")[:3] == (0, 0, 0)
    assert DynamoSubscriberStore(table).migrate_address_keys() == 0, "done once"


def test_the_ledger_forgets_a_subscriber_in_every_issue(moto_server: str) -> None:
    import boto3

    from digestpub.adapters.dynamodb_ledger import DynamoLedger, create_ledger_table

    name = f"ledger-{uuid.uuid4().hex[:12]}"
    create_ledger_table(boto3.client("dynamodb"), name)
    contract.check_ledger_forgets_a_subscriber_in_every_issue(DynamoLedger(name))
    rows = boto3.client("dynamodb").scan(TableName=name)["Items"]
    assert len(rows) == 30 and {row["subscriber_id"]["S"] for row in rows} == {"kept"}
    assert "gone@example.com" not in str(rows)


def test_the_ledger_remembers_the_last_issue_of_each_frequency(moto_server: str) -> None:
    import boto3

    from digestpub.adapters.dynamodb_ledger import DynamoLedger, create_ledger_table

    name = f"ledger-{uuid.uuid4().hex[:12]}"
    create_ledger_table(boto3.client("dynamodb"), name)
    contract.check_ledger_remembers_the_last_issue_of_each_frequency(DynamoLedger(name))
    rows = boto3.client("dynamodb").scan(TableName=name)["Items"]
    assert all("expires_at" not in row for row in rows), "what was sent is remembered for good"


def test_the_endpoints_on_dynamodb_let_an_unsubscribe_win(
    serial_table: str, serial_dynamodb: Any, tmp_path: Path
) -> None:
    """20 rounds through the cloud function's endpoints (``web.Endpoints``) on DynamoDB: a
    one-click unsubscribe races a preference save and the confirm link; each ends unsubscribed."""
    import secrets
    from datetime import UTC, datetime, timedelta
    from functools import partial

    from digestpub.adapters.outbox_mailer import OutboxMailer
    from digestpub.model import TagInfo
    from digestpub.settings import Settings
    from digestpub.subscriptions.endpoints import Endpoints, form_token
    from digestpub.subscriptions.tokens import make_token
    from digestpub.subscriptions.use_cases import Subscriptions
    from tests.cloud_support import http_event

    key = b"k" * 32
    site = Settings.load(base_url="https://digest.example/").site()
    known = {tag: TagInfo(slug=tag, name=tag, count=1) for tag in contract.KNOWN_TAGS}

    def endpoints() -> Endpoints:
        store = DynamoSubscriberStore(serial_table, serial_dynamodb())
        mailer = OutboxMailer(tmp_path / "outbox")
        return Endpoints(lambda: Subscriptions(site, store, mailer, key, "D <d@example.com>", tags=lambda: known), site)

    workers = [endpoints() for _ in range(3)]
    store = DynamoSubscriberStore(serial_table, serial_dynamodb())
    for number in range(20):
        person = make(f"cloud-race{number}@example.com", status="pending")
        store.save(person)
        nonce = secrets.token_urlsafe(8)
        now = datetime.now(UTC)
        assert store.request_confirmation(person.id, nonce=nonce, expires_at=now + timedelta(days=7), now=now)
        unsubscribe = f"{site.api_url}unsubscribe?token={make_token(key, person.id, 'unsubscribe')}"
        preferences_token = make_token(key, person.id, "preferences")
        preferences = f"{site.api_url}preferences?token={preferences_token}"
        confirm = f"{site.api_url}confirm?token={make_token(key, person.id, 'confirm', nonce)}"
        save = f"form={form_token(key, preferences_token)}&tag-rl=on&frequency=weekly"
        results = contract.run_together(
            [
                partial(workers[0].handle, http_event("POST", unsubscribe, body="List-Unsubscribe=One-Click")),
                partial(workers[1].handle, http_event("POST", preferences, body=save)),
                partial(workers[2].handle, http_event("GET", confirm)),
            ]
        )
        assert all(isinstance(result, dict) for result in results), results
        answers = [result["statusCode"] for result in results if isinstance(result, dict)]
        assert answers[:2] == [200, 200] and answers[2] in (200, 403), answers
        final = store.get(person.id)
        assert final is not None and final.status == "unsubscribed", f"round {number}: {final}"


def test_twenty_concurrent_flows_for_one_address_end_with_no_error(table: str, tmp_path: Path) -> None:
    """Each flow subscribes (daily or weekly), confirms, saves preferences, unsubscribes and
    opts in again, over and over: every conditional update that loses a race is retried with
    backoff until it holds, so no call fails."""
    from datetime import UTC, datetime, timedelta
    from functools import partial

    from digestpub.adapters.outbox_mailer import OutboxMailer
    from digestpub.model import TagInfo
    from digestpub.settings import Settings
    from digestpub.subscriptions.subscribers import ACTIVE
    from digestpub.subscriptions.use_cases import Subscriptions

    site = Settings.load(base_url="https://digest.example/").site()
    known = {tag: TagInfo(slug=tag, name=tag, count=1) for tag in contract.KNOWN_TAGS}
    address = "Race@Example.com"
    calls: list[str] = []
    store = DynamoSubscriberStore(table)
    person = make(address, status="pending")
    store.save(person)

    def flow(frequency: str, rounds: int) -> list[Exception]:
        store = DynamoSubscriberStore(table)
        use = Subscriptions(
            site,
            store,
            OutboxMailer(tmp_path / "outbox"),
            b"k" * 32,
            "D <d@example.com>",
            tags=lambda: known,
            answer_floor=timedelta(0),
        )
        failures: list[Exception] = []
        for _ in range(rounds):
            now = datetime.now(UTC)
            steps = [
                partial(use.subscribe, address, "", frequency, "ru"),
                partial(store.transition, person.id, "confirmed", only_from=ACTIVE, now=now),
                partial(store.set_preferences, person.id, tags=(), frequency=frequency, lang="en", now=now),
                partial(store.transition, person.id, "unsubscribed", only_from=ACTIVE, now=now),
                partial(store.transition, person.id, "pending", only_from={"unsubscribed"}, now=now),
            ]
            for step in steps:
                calls.append(frequency)
                try:
                    step()
                except Exception as error:
                    failures.append(error)
        return failures

    results = contract.run_together([partial(flow, ("daily", "weekly")[number % 2], 6) for number in range(20)])

    failures = [failure for result in results for failure in (result if isinstance(result, list) else [result])]
    assert failures == [], f"{len(failures)} of {len(calls)} calls failed: {failures[:3]}"
    assert len(calls) == 600
    final = store.find(address)
    assert final is not None and final.id == person.id


class RacedClient:
    """A DynamoDB client before whose first ``races`` updates ``rival`` changes the item."""

    def __init__(self, races: int, rival: Callable[[], object]) -> None:
        import boto3

        self.client = boto3.client("dynamodb")
        self.races = races
        self.rival = rival

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def update_item(self, **arguments: Any) -> Any:
        if self.races > 0:
            self.races -= 1
            self.rival()
        return self.client.update_item(**arguments)


def racing_store(table: str, person: Subscriber, races: int) -> DynamoSubscriberStore:
    """A store whose updates of ``person`` each lose to a rival's change of frequency, ``races`` times."""
    from datetime import UTC, datetime
    from itertools import cycle

    rival = DynamoSubscriberStore(table)
    frequencies = cycle(["weekly", "daily"])

    def change() -> None:
        rival.set_preferences(person.id, tags=(), frequency=next(frequencies), lang="ru", now=datetime.now(UTC))

    return DynamoSubscriberStore(table, RacedClient(races, change))


@pytest.fixture
def backoff_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds the DynamoDB store would sleep between attempts (it sleeps none of them)."""
    from digestpub.adapters import dynamodb_subscribers as dynamodb

    waits: list[float] = []
    monkeypatch.setattr(dynamodb, "_sleep", waits.append)
    return waits


def test_an_update_that_loses_races_backs_off_with_jitter_until_it_holds(
    table: str, backoff_waits: list[float]
) -> None:
    from datetime import UTC, datetime

    from digestpub.adapters import dynamodb_subscribers as dynamodb

    person = make("racer@example.com", status="pending")
    DynamoSubscriberStore(table).save(person)

    changed = racing_store(table, person, races=4).transition(
        person.id, "confirmed", only_from={"pending"}, now=datetime.now(UTC)
    )

    assert changed is not None and changed.status == "confirmed"
    assert len(backoff_waits) == 4, backoff_waits
    ceilings = [min(dynamodb._BACKOFF_CAP, dynamodb._BACKOFF_FIRST * 2**number) for number in range(4)]
    waits_and_ceilings = zip(backoff_waits, ceilings, strict=True)
    assert all(0 <= wait <= ceiling for wait, ceiling in waits_and_ceilings), (backoff_waits, ceilings)
    assert ceilings == sorted(ceilings) and ceilings[0] < ceilings[-1]


def test_an_update_that_keeps_losing_is_store_busy_and_the_endpoint_answers_503_with_retry_after(
    table: str, backoff_waits: list[float]
) -> None:
    from datetime import UTC, datetime

    from digestpub.adapters import dynamodb_subscribers as dynamodb
    from digestpub.adapters.outbox_mailer import OutboxMailer
    from digestpub.errors import StoreBusy
    from digestpub.settings import Settings
    from digestpub.subscriptions.endpoints import Endpoints
    from digestpub.subscriptions.tokens import make_token
    from digestpub.subscriptions.use_cases import Subscriptions
    from tests.cloud_support import http_event

    person = make("loser@example.com", status="confirmed")
    DynamoSubscriberStore(table).save(person)

    with pytest.raises(StoreBusy, match="kept changing during"):
        racing_store(table, person, races=1000).transition(
            person.id, "unsubscribed", only_from={"confirmed"}, now=datetime.now(UTC)
        )
    assert len(backoff_waits) == dynamodb._ATTEMPTS - 1

    key = b"k" * 32
    site = Settings.load(base_url="https://digest.example/").site()
    store = racing_store(table, person, races=1000)
    endpoints = Endpoints(
        lambda: Subscriptions(site, store, OutboxMailer(Path("unused")), key, "D <d@example.com>"), site
    )
    unsubscribe = f"{site.api_url}unsubscribe?token={make_token(key, person.id, 'unsubscribe')}"

    answer = endpoints.handle(http_event("POST", unsubscribe, body="List-Unsubscribe=One-Click"))

    assert answer["statusCode"] == 503 and answer["headers"]["Retry-After"] == "2", answer["headers"]
    final = DynamoSubscriberStore(table).get(person.id)
    assert final is not None and final.status == "confirmed"
