"""DynamoDB as the subscriber store in the cloud.

One table, partition key ``id`` (string), holding two kinds of item:

- a subscriber, keyed by its opaque id, with every ``Subscriber`` field plus
  ``status_frequency`` (``confirmed#daily``), the key of the GSI
  ``status-frequency-index`` (sort key ``id``) that a send queries;
- an address lock, keyed ``EMAIL#<normalised email>``, whose ``owner`` is the id
  of the subscriber holding that address. It has no ``email`` attribute, so
  scans filtered on ``attribute_exists(email)`` skip it.

``save`` is one transaction: put the subscriber (only over the version it read),
take the address lock (only if free or already ours) and, when the address
changed, release the old lock. Two ids can never hold one address, with no race.
``find`` reads the lock and then the subscriber, both strongly consistent: unlike
a GSI on ``email`` (eventually consistent), a subscriber just saved is found at once.

``iter_all`` is a paginated, filtered scan: a stable order (DynamoDB's hash order)
while the table is unchanged. ``iter_confirmed`` queries ``status-frequency-index``:
ordered by id, it reads only the subscribers it returns. A GSI is eventually
consistent: someone confirmed a second before a send starts may wait for the next issue.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from digestpub.errors import StorageError
from digestpub.model import Subscriber
from digestpub.subscribers import AddressTaken, InvalidAddress, normalise_email

EMAIL_PREFIX = "EMAIL#"
SENDING_INDEX = "status-frequency-index"
_ATTEMPTS = 5


def create_subscribers_table(client: Any, name: str) -> None:
    """Create the table as this adapter expects it (on-demand billing) and wait for it.

    For infrastructure as code: ``AttributeDefinitions`` ``id`` S and
    ``status_frequency`` S; ``KeySchema`` ``id`` HASH; one GSI
    ``status-frequency-index`` with ``status_frequency`` HASH, ``id`` RANGE and
    projection ``ALL``; ``BillingMode: PAY_PER_REQUEST``.
    """
    client.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "status_frequency", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": SENDING_INDEX,
                "KeySchema": [
                    {"AttributeName": "status_frequency", "KeyType": "HASH"},
                    {"AttributeName": "id", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name)


def _item(subscriber: Subscriber, address: str) -> dict[str, Any]:
    return {
        "id": {"S": subscriber.id},
        "email": {"S": address},
        "tags": {"L": [{"S": tag} for tag in subscriber.tags]},
        "frequency": {"S": subscriber.frequency},
        "lang": {"S": subscriber.lang},
        "status": {"S": subscriber.status},
        "status_frequency": {"S": f"{subscriber.status}#{subscriber.frequency}"},
        "created_at": {"S": subscriber.created_at.isoformat()},
        "updated_at": {"S": subscriber.updated_at.isoformat()},
        "soft_bounces": {"N": str(subscriber.soft_bounces)},
    }


def _subscriber(item: dict[str, Any]) -> Subscriber:
    return Subscriber(
        id=item["id"]["S"],
        email=item["email"]["S"],
        tags=tuple(tag["S"] for tag in item.get("tags", {}).get("L", [])),
        frequency=item["frequency"]["S"],
        lang=item["lang"]["S"],
        status=item["status"]["S"],
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
        soft_bounces=int(item.get("soft_bounces", {}).get("N", "0")),
    )


def _cancellation_codes(error: ClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons") or []
    return [str(reason.get("Code", "")) for reason in reasons]


class DynamoSubscriberStore:
    """Subscribers in one DynamoDB table; see the module's docstring for its layout."""

    def __init__(self, table_name: str, client: Any = None, page_size: int | None = None) -> None:
        self.table_name = table_name
        self.client: Any = client or boto3.client("dynamodb")
        self.page_size = page_size

    @property
    def url(self) -> str:
        return f"dynamodb://{self.table_name}"

    def _get_item(self, key: str) -> dict[str, Any] | None:
        try:
            response = self.client.get_item(TableName=self.table_name, Key={"id": {"S": key}}, ConsistentRead=True)
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"cannot read {self.url}: {error}") from error
        item: dict[str, Any] | None = response.get("Item")
        return item

    def get(self, subscriber_id: str) -> Subscriber | None:
        if subscriber_id.startswith(EMAIL_PREFIX):
            return None
        item = self._get_item(subscriber_id)
        return None if item is None or "email" not in item else _subscriber(item)

    def find(self, email: str) -> Subscriber | None:
        try:
            address = normalise_email(email)
        except InvalidAddress:
            return None
        lock = self._get_item(EMAIL_PREFIX + address)
        if lock is None:
            return None
        found = self.get(lock["owner"]["S"])
        return found if found is not None and found.email == address else None

    def save(self, subscriber: Subscriber) -> None:
        """Insert or replace by id, in one transaction with the address lock.

        Raises ``AddressTaken`` when another subscriber holds the address. A lock
        whose owner no longer has the address (its item was deleted or edited by
        hand) is taken over, in a transaction that checks the owner once more.
        """
        if subscriber.id.startswith(EMAIL_PREFIX):
            raise StorageError(f"subscriber id {subscriber.id!r} is reserved for address locks")
        address = normalise_email(subscriber.email)
        stale_owner: str | None = None
        for _ in range(_ATTEMPTS):
            outcome = self._write(subscriber, address, self._get_item(subscriber.id), stale_owner)
            if outcome == "saved":
                return
            stale_owner = None
            if outcome == "address taken":
                lock = self._get_item(EMAIL_PREFIX + address)
                owner = lock["owner"]["S"] if lock is not None else None
                if owner is not None and owner != subscriber.id:
                    holder = self._get_item(owner)
                    if holder is not None and holder.get("email", {}).get("S") == address:
                        raise AddressTaken(f"{address} already belongs to another subscriber")
                    stale_owner = owner
        raise StorageError(f"{self.url}: {subscriber.id} kept changing during {_ATTEMPTS} attempts to save")

    def _write(
        self,
        subscriber: Subscriber,
        address: str,
        current: dict[str, Any] | None,
        stale_owner: str | None,
    ) -> Literal["saved", "changed", "address taken"]:
        """One attempt: "changed" when the subscriber changed since ``current`` was read."""
        put: dict[str, Any] = {"TableName": self.table_name, "Item": _item(subscriber, address)}
        if current is None:
            put["ConditionExpression"] = "attribute_not_exists(id)"
        else:
            put["ConditionExpression"] = "updated_at = :seen_updated AND email = :seen_email"
            put["ExpressionAttributeValues"] = {
                ":seen_updated": current["updated_at"],
                ":seen_email": current["email"],
            }
        owner = {"ExpressionAttributeNames": {"#owner": "owner"}}
        lock: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": {"id": {"S": EMAIL_PREFIX + address}, "owner": {"S": subscriber.id}},
            "ConditionExpression": "attribute_not_exists(id) OR #owner = :me",
            "ExpressionAttributeValues": {":me": {"S": subscriber.id}},
            **owner,
        }
        actions: list[dict[str, Any]] = [{"Put": put}, {"Put": lock}]
        old_address = current["email"]["S"] if current is not None else None
        if old_address is not None and old_address != address:
            actions.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": {"id": {"S": EMAIL_PREFIX + old_address}},
                        "ConditionExpression": "attribute_not_exists(id) OR #owner = :me",
                        "ExpressionAttributeValues": {":me": {"S": subscriber.id}},
                        **owner,
                    }
                }
            )
        if stale_owner is not None:
            lock["ConditionExpression"] = "#owner = :stale"
            lock["ExpressionAttributeValues"] = {":stale": {"S": stale_owner}}
            actions.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table_name,
                        "Key": {"id": {"S": stale_owner}},
                        "ConditionExpression": "attribute_not_exists(id) OR email <> :address",
                        "ExpressionAttributeValues": {":address": {"S": address}},
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            codes = _cancellation_codes(error)
            if not codes:
                raise StorageError(f"cannot save to {self.url}: {error}") from error
            if codes[0] == "ConditionalCheckFailed" or "TransactionConflict" in codes:
                return "changed"
            if "ConditionalCheckFailed" in codes:
                return "address taken"
            raise StorageError(f"cannot save to {self.url}: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"cannot save to {self.url}: {error}") from error
        return "saved"

    def _paginate(self, operation: str, arguments: dict[str, Any]) -> Iterator[Subscriber]:
        if self.page_size:
            arguments["PaginationConfig"] = {"PageSize": self.page_size}
        try:
            for page in self.client.get_paginator(operation).paginate(**arguments):
                for item in page.get("Items", []):
                    yield _subscriber(item)
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"cannot read {self.url}: {error}") from error

    def iter_all(self) -> Iterator[Subscriber]:
        """Every subscriber, by a paginated scan that skips the address locks."""
        return self._paginate(
            "scan",
            {"TableName": self.table_name, "FilterExpression": "attribute_exists(email)"},
        )

    def iter_confirmed(self, frequency: str) -> Iterator[Subscriber]:
        """Confirmed subscribers of one frequency, by id, from ``status-frequency-index``."""
        return self._paginate(
            "query",
            {
                "TableName": self.table_name,
                "IndexName": SENDING_INDEX,
                "KeyConditionExpression": "status_frequency = :key",
                "ExpressionAttributeValues": {":key": {"S": f"confirmed#{frequency}"}},
            },
        )
