"""The DynamoDB subscriber store against moto in server mode (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from digestpub.adapters.dynamodb import DynamoSubscriberStore, create_subscribers_table
from digestpub.adapters.subscribers_factory import open_subscribers
from digestpub.errors import StorageError
from digestpub.subscribers import AddressTaken, export_csv
from tests.integration.test_subscribers_sqlite import (
    HEADER,
    NOW,
    check_concurrent_saves_of_one_address,
    check_cyrillic_and_idn,
    check_email_is_unique,
    check_iteration,
    check_save_get_find,
    check_save_replaces_by_id,
    import_text,
    make,
)


@pytest.fixture
def table(moto_server: str) -> Iterator[str]:
    import boto3
    import requests

    name = f"subscribers-{uuid.uuid4().hex[:12]}"
    create_subscribers_table(boto3.client("dynamodb"), name)
    yield name
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)


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
    # The local part keeps its case, so this Иван and иван are different addresses.
    assert import_text(store, changed)[:3] == (1, 0, 1)
    assert import_text(store, HEADER + "Иван@пример.рф,rl,daily,en,confirmed\n")[:3] == (0, 1, 0)
    everyone = {s.email: s for s in store.iter_all()}
    assert len(everyone) == 3
    assert everyone["Иван@пример.рф"].id == ids["Иван@пример.рф"]
    assert everyone["Иван@пример.рф"].updated_at == NOW
    exported = io.StringIO()
    assert export_csv(store, exported) == 3
    assert "Иван@пример.рф,rl,daily,en,confirmed\n" in exported.getvalue()


def test_factory_opens_dynamodb(table: str) -> None:
    store = open_subscribers(f"dynamodb://{table}")
    assert isinstance(store, DynamoSubscriberStore)
    store.save(make("factory@example.com"))
    assert store.find("factory@example.com") is not None
