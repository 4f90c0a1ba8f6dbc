"""The send ledger in DynamoDB: conditional writes make each claim atomic across workers.

Table: partition key ``issue_id``, sort key ``subscriber_id`` (both strings), TTL
on ``expires_at`` so old issues clean themselves up (see ``infra/``). The last issue
of each frequency is an item of its own (``_LAST_ISSUE``, sort key ``#`` and the
frequency: no subscriber id), which never expires.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from digestpub.errors import StorageError

_KEEP = timedelta(days=90)
_LAST_ISSUE = "#last-issue"
"""The partition of the last issue of each frequency: no issue id starts with ``#``."""


class DynamoLedger:
    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        self.client = client or boto3.client("dynamodb")

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any] | None:
        """The call's response, or ``None`` when its condition did not hold."""
        try:
            response: dict[str, Any] = getattr(self.client, operation)(TableName=self.table, **arguments)
            return response
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise StorageError(f"send ledger {self.table}: {operation}: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"send ledger {self.table}: {operation}: {error}") from error

    @staticmethod
    def _key(issue_id: str, subscriber_id: str) -> dict[str, Any]:
        return {"issue_id": {"S": issue_id}, "subscriber_id": {"S": subscriber_id}}

    def claim(self, issue_id: str, subscriber_id: str, run_id: str) -> bool:
        now = datetime.now(UTC)
        item = {
            **self._key(issue_id, subscriber_id),
            "state": {"S": "claimed"},
            "run_id": {"S": run_id},
            "claimed_at": {"S": now.isoformat()},
            "expires_at": {"N": str(int(time.time() + _KEEP.total_seconds()))},
        }
        return self._call("put_item", Item=item, ConditionExpression="attribute_not_exists(subscriber_id)") is not None

    def _set_state(self, issue_id: str, subscriber_id: str, state: str, field: str, value: str) -> None:
        self._call(
            "update_item",
            Key=self._key(issue_id, subscriber_id),
            UpdateExpression="SET #state = :state, #field = :value",
            ExpressionAttributeNames={"#state": "state", "#field": field},
            ExpressionAttributeValues={":state": {"S": state}, ":value": {"S": value}},
        )

    def confirm(self, issue_id: str, subscriber_id: str, message_id: str) -> None:
        self._set_state(issue_id, subscriber_id, "sent", "message_id", message_id)

    def reject(self, issue_id: str, subscriber_id: str, reason: str) -> None:
        self._set_state(issue_id, subscriber_id, "rejected", "detail", reason)

    def release(self, issue_id: str, subscriber_id: str) -> None:
        self._call(
            "delete_item",
            Key=self._key(issue_id, subscriber_id),
            ConditionExpression="#state = :claimed",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":claimed": {"S": "claimed"}},
        )

    def _items(self, operation: str, **arguments: Any) -> Iterator[dict[str, Any]]:
        """Every item a query or scan returns, page after page."""
        start: dict[str, Any] | None = None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            response = self._call(operation, **arguments, **extra)
            assert response is not None  # queries and scans carry no condition
            yield from response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def _query(self, issue_id: str, **arguments: Any) -> list[dict[str, Any]]:
        return list(self._items("query", KeyConditionExpression="issue_id = :issue", **arguments))

    def unknown(self, issue_id: str, run_id: str, claimed_before: datetime) -> list[str]:
        items = self._query(
            issue_id,
            FilterExpression="#state = :claimed AND run_id <> :run AND claimed_at < :before",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":issue": {"S": issue_id},
                ":claimed": {"S": "claimed"},
                ":run": {"S": run_id},
                ":before": {"S": claimed_before.astimezone(UTC).isoformat()},
            },
        )
        return sorted(item["subscriber_id"]["S"] for item in items)

    def reclaim(self, issue_id: str, subscriber_id: str, run_id: str) -> bool:
        response = self._call(
            "update_item",
            Key=self._key(issue_id, subscriber_id),
            UpdateExpression="SET run_id = :run, claimed_at = :now",
            ConditionExpression="#state = :claimed AND run_id <> :run",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":run": {"S": run_id},
                ":now": {"S": datetime.now(UTC).isoformat()},
                ":claimed": {"S": "claimed"},
            },
        )
        return response is not None

    def counts(self, issue_id: str) -> dict[str, int]:
        items = self._query(
            issue_id,
            ProjectionExpression="#state",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":issue": {"S": issue_id}},
        )
        counts: dict[str, int] = {}
        for item in items:
            state = item["state"]["S"]
            counts[state] = counts.get(state, 0) + 1
        return counts

    def flush(self) -> None:
        return None  # every write is already durable

    def forget(self, subscriber_id: str) -> int:
        """A scan for the subscriber's rows, each deleted: erasing a person is rare, and rows
        expire after 90 days anyway, so no index is kept for it."""
        rows = list(
            self._items(
                "scan",
                FilterExpression="subscriber_id = :subscriber",
                ProjectionExpression="issue_id",
                ExpressionAttributeValues={":subscriber": {"S": subscriber_id}},
            )
        )
        for row in rows:
            self._call("delete_item", Key=self._key(row["issue_id"]["S"], subscriber_id))
        return len(rows)

    def last_issue(self, frequency: str) -> tuple[str, datetime] | None:
        response = self._call("get_item", Key=self._key(_LAST_ISSUE, f"#{frequency}"), ConsistentRead=True)
        item = (response or {}).get("Item")
        if item is None:
            return None
        return item["last_issue"]["S"], datetime.fromisoformat(item["cutoff"]["S"])

    def note_issue(self, frequency: str, issue_id: str, cutoff: datetime) -> None:
        # UTC ISO text, so that text order is time order; a stale write loses its condition, as it should.
        self._call(
            "put_item",
            Item={
                **self._key(_LAST_ISSUE, f"#{frequency}"),
                "last_issue": {"S": issue_id},
                "cutoff": {"S": cutoff.astimezone(UTC).isoformat()},
            },
            ConditionExpression="attribute_not_exists(cutoff) OR cutoff < :cutoff",
            ExpressionAttributeValues={":cutoff": {"S": cutoff.astimezone(UTC).isoformat()}},
        )


def create_ledger_table(client: Any, name: str) -> None:
    """The table as ``infra/`` declares it, for tests and local setups."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "issue_id", "KeyType": "HASH"},
            {"AttributeName": "subscriber_id", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "issue_id", "AttributeType": "S"},
            {"AttributeName": "subscriber_id", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
