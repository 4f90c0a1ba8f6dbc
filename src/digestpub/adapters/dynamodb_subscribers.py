"""DynamoDB as the subscriber store in the cloud.

One table, partition key ``id`` (string), holding two kinds of item:

- a subscriber, keyed by its opaque id, with every ``Subscriber`` field plus
  ``status_frequency`` (``confirmed#daily``), the key of the GSI
  ``status-frequency-index`` (sort key ``id``) that a send queries;
- an address lock, keyed ``EMAIL#<address key>`` (``subscribers.address_key``: the
  address lowercased), whose ``owner`` is the id of the subscriber holding that
  address. Locks written before addresses were matched whatever their case were
  named by the address as typed: ``migrate_address_keys`` moves them;
- ``CONFIRM#<address hash>``: the confirmation emails of one address in its
  current day (``window_start``, ``window_count``, ``last_sent``), and
  ``CONFIRM#HOUR#<hour>``: every confirmation email of one hour (``sent``);
  both expire by the table's TTL (``expires_at``);
- ``ERASED#<address hash>``: an erased address, never imported again;
- ``SCHEMA#address-keys``: written once ``migrate_address_keys`` has given every
  older subscriber its key; the first ``find`` of each store object reads it, and
  runs that migration (a scan) if it is missing.

A subscriber's ``status_changes`` list holds a map (``status``, ``at``) for each change
of its status, appended in the same write as the change.

Only subscribers have an ``email`` attribute, so scans filtered on
``attribute_exists(email)`` skip every other kind.

``save`` is one transaction: put the subscriber (only over the version it read),
take the address lock (only if free or already ours) and, when the address
changed, release the old lock. Two ids can never hold one address, with no race.
``find`` reads the lock and then the subscriber, both strongly consistent: unlike
a GSI on ``email`` (eventually consistent), a subscriber just saved is found at once.

Every change of a subscriber is one ``UpdateItem`` with a condition expression.
``status_frequency`` joins two attributes, so a change of either is conditioned on
the other being what was just read, and read again when it lost that race.

``iter_all`` is a paginated, filtered scan: a stable order (DynamoDB's hash order)
while the table is unchanged. ``iter_confirmed`` queries ``status-frequency-index``:
ordered by id, it reads only the subscribers it returns. A GSI is eventually
consistent: someone confirmed a second before a send starts may wait for the next issue.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from typing import Any, Literal, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from digestpub.errors import StorageError, StoreBusy
from digestpub.model import SUPPRESSED, ConfirmationLimits, StatusChange, Subscriber, SubscriberStatus, sortable_time
from digestpub.subscriptions.subscribers import AddressTaken, InvalidAddress, address_key, normalise_email

EMAIL_PREFIX = "EMAIL#"
CONFIRM_PREFIX = "CONFIRM#"
ERASED_PREFIX = "ERASED#"
SENDING_INDEX = "status-frequency-index"
TTL_ATTRIBUTE = "expires_at"
_ATTEMPTS = 12
"""Attempts of a conditional update that loses to racing writes of the same item."""
_BACKOFF_FIRST = 0.05
_BACKOFF_CAP = 2.0
"""Seconds before the second attempt, and at most before any: exponential, with full jitter,
so that writers racing for one item spread out instead of colliding again."""
_sleep = time.sleep
MIGRATED_MARKER = "SCHEMA#address-keys"
"""Present once every subscriber has an ``email_key`` and a lock named by it."""
_RESERVED = (EMAIL_PREFIX, CONFIRM_PREFIX, ERASED_PREFIX, "SCHEMA#")
_STATUS = {"#status": "status"}


def create_subscribers_table(client: Any, name: str) -> None:
    """Create the table as this adapter expects it (on-demand billing) and wait for it.

    For infrastructure as code: ``AttributeDefinitions`` ``id`` S and
    ``status_frequency`` S; ``KeySchema`` ``id`` HASH; one GSI
    ``status-frequency-index`` with ``status_frequency`` HASH, ``id`` RANGE and
    projection ``ALL``; ``BillingMode: PAY_PER_REQUEST``; TTL on ``expires_at``.
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
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


def _item(subscriber: Subscriber, address: str) -> dict[str, Any]:
    return {
        "id": {"S": subscriber.id},
        "email": {"S": address},
        "email_key": {"S": address.lower()},
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


def _status_change(status: str, now: datetime) -> dict[str, Any]:
    return {"M": {"status": {"S": status}, "at": {"S": now.isoformat()}}}


def _recording(arguments: dict[str, Any], current: dict[str, Any], status: str, now: datetime) -> dict[str, Any]:
    """``arguments`` of an update that sets ``status``, appending the change when it is one."""
    if current["status"]["S"] == status:
        return arguments
    arguments["UpdateExpression"] = (
        "SET status_changes = list_append(if_not_exists(status_changes, :no_changes), :change), "
        + arguments["UpdateExpression"].removeprefix("SET ")
    )
    arguments["ExpressionAttributeValues"] |= {
        ":no_changes": {"L": []},
        ":change": {"L": [_status_change(status, now)]},
    }
    return arguments


def _lock_of(item: dict[str, Any]) -> str:
    """The address lock a stored subscriber holds (by the key, or by the address in older items)."""
    return EMAIL_PREFIX + str((item.get("email_key") or item["email"])["S"])


class _Again(enum.Enum):
    """An attempt lost to a racing write: read again, and try again."""

    AGAIN = enum.auto()


_AGAIN = _Again.AGAIN
_T = TypeVar("_T")


def _until_it_holds(attempt: Callable[[], _T | _Again], what: str) -> _T:
    """``attempt``'s outcome, retried with backoff and jitter while it answers ``_AGAIN``."""
    for number in range(_ATTEMPTS):
        outcome = attempt()
        if outcome is not _AGAIN:
            return outcome
        if number + 1 < _ATTEMPTS:
            _sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_FIRST * 2**number)))
    raise StoreBusy(f"{what} kept changing during {_ATTEMPTS} attempts")


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _cancellation_codes(error: ClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons") or []
    return [str(reason.get("Code", "")) for reason in reasons]


class DynamoSubscriberStore:
    """Subscribers in one DynamoDB table; see the module's docstring for its layout."""

    def __init__(self, table_name: str, client: Any = None, page_size: int | None = None) -> None:
        self.table_name = table_name
        self.client: Any = client or boto3.client("dynamodb")
        self.page_size = page_size
        self._keyed = False

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
        if subscriber_id.startswith(_RESERVED):
            return None
        item = self._get_item(subscriber_id)
        return None if item is None or "email" not in item else _subscriber(item)

    def find(self, email: str) -> Subscriber | None:
        try:
            key = address_key(email)
        except InvalidAddress:
            return None
        self._ensure_address_keys()
        lock = self._get_item(EMAIL_PREFIX + key)
        if lock is None:
            return None
        found = self.get(lock["owner"]["S"])
        return found if found is not None and found.email.lower() == key else None

    def _ensure_address_keys(self) -> None:
        """Once per store object, one read: is the table's migration to address keys done?"""
        if self._keyed:
            return
        if self._get_item(MIGRATED_MARKER) is None:
            self.migrate_address_keys()
            self._put_marker()
        self._keyed = True

    def _put_marker(self) -> None:
        try:
            self.client.put_item(TableName=self.table_name, Item={"id": {"S": MIGRATED_MARKER}})
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"cannot write to {self.url}: {error}") from error

    def migrate_address_keys(self) -> int:
        """Give subscribers saved before addresses matched whatever their case their key and a
        key-named lock; returns how many it changed. Idempotent, and safe beside live traffic.

        Two subscribers whose addresses differ only in case are one person: the one
        holding the key keeps its id, takes the other's status if that is a suppression
        it lacks, and the other is deleted.
        """
        changed = 0
        scan = {
            "TableName": self.table_name,
            "FilterExpression": "attribute_exists(email) AND attribute_not_exists(email_key)",
        }
        try:
            for page in self.client.get_paginator("scan").paginate(**scan):
                for item in page.get("Items", []):
                    changed += self._give_key(item)
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"cannot migrate {self.url}: {error}") from error
        return changed

    def _give_key(self, item: dict[str, Any]) -> int:
        subscriber_id, key = item["id"]["S"], item["email"]["S"].lower()
        lock = self._get_item(EMAIL_PREFIX + key)
        holder = lock["owner"]["S"] if lock is not None else subscriber_id
        if holder != subscriber_id and (other := self.get(holder)) is not None and other.email.lower() == key:
            status = item["status"]["S"]
            if status in SUPPRESSED and other.status not in SUPPRESSED:
                self.transition(holder, status, only_from=(other.status,), now=other.updated_at)
            actions: list[dict[str, Any]] = [
                {"Delete": {"TableName": self.table_name, "Key": {"id": {"S": subscriber_id}}}},
            ]
        else:
            actions = [
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"id": {"S": subscriber_id}},
                        "UpdateExpression": "SET email_key = :key",
                        "ConditionExpression": "email = :email",
                        "ExpressionAttributeValues": {":key": {"S": key}, ":email": item["email"]},
                    }
                },
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {"id": {"S": EMAIL_PREFIX + key}, "owner": {"S": subscriber_id}},
                    }
                },
            ]
        if _lock_of(item) != EMAIL_PREFIX + key:
            actions.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": {"id": {"S": _lock_of(item)}},
                        "ConditionExpression": "attribute_not_exists(id) OR #owner = :me",
                        "ExpressionAttributeNames": {"#owner": "owner"},
                        "ExpressionAttributeValues": {":me": {"S": subscriber_id}},
                    }
                }
            )
        self.client.transact_write_items(TransactItems=actions)
        return 1

    def save(self, subscriber: Subscriber) -> None:
        """Insert or replace by id, in one transaction with the address lock.

        Raises ``AddressTaken`` when another subscriber holds the address. A lock
        whose owner no longer has the address (its item was deleted or edited by
        hand) is taken over, in a transaction that checks the owner once more.
        """
        if subscriber.id.startswith(_RESERVED):
            raise StorageError(f"subscriber id {subscriber.id!r} is reserved for other items")
        address = normalise_email(subscriber.email)
        self._ensure_address_keys()
        stale_owner: str | None = None

        def attempt() -> _Again | None:
            nonlocal stale_owner
            outcome = self._write(subscriber, address, self._get_item(subscriber.id), stale_owner)
            if outcome == "saved":
                return None
            stale_owner = None
            if outcome == "address taken":
                lock = self._get_item(EMAIL_PREFIX + address.lower())
                owner = lock["owner"]["S"] if lock is not None else None
                if owner is not None and owner != subscriber.id:
                    holder = self._get_item(owner)
                    if holder is not None and holder.get("email", {}).get("S", "").lower() == address.lower():
                        raise AddressTaken("the address already belongs to another subscriber")
                    stale_owner = owner
            return _AGAIN

        _until_it_holds(attempt, f"{self.url}: {subscriber.id} (saving)")

    def _write(
        self,
        subscriber: Subscriber,
        address: str,
        current: dict[str, Any] | None,
        stale_owner: str | None,
    ) -> Literal["saved", "changed", "address taken"]:
        """One attempt: "changed" when the subscriber changed since ``current`` was read."""
        put: dict[str, Any] = {"TableName": self.table_name, "Item": _item(subscriber, address)}
        if current is not None:
            changes = list(current.get("status_changes", {}).get("L", []))
            if current.get("status", {}).get("S") != subscriber.status:
                changes.append(_status_change(subscriber.status, subscriber.updated_at))
            if changes:
                put["Item"]["status_changes"] = {"L": changes}
        if current is None:
            put["ConditionExpression"] = "attribute_not_exists(id)"
        else:
            put["ConditionExpression"] = "updated_at = :seen_updated AND email = :seen_email"
            put["ExpressionAttributeValues"] = {
                ":seen_updated": current["updated_at"],
                ":seen_email": current["email"],
            }
        owner = {"ExpressionAttributeNames": {"#owner": "owner"}}
        lock_name = EMAIL_PREFIX + address.lower()
        lock: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": {"id": {"S": lock_name}, "owner": {"S": subscriber.id}},
            "ConditionExpression": "attribute_not_exists(id) OR #owner = :me",
            "ExpressionAttributeValues": {":me": {"S": subscriber.id}},
            **owner,
        }
        actions: list[dict[str, Any]] = [{"Put": put}, {"Put": lock}]
        old_lock = _lock_of(current) if current is not None and "email" in current else None
        if old_lock is not None and old_lock != lock_name:
            actions.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": {"id": {"S": old_lock}},
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
                        "ConditionExpression": "attribute_not_exists(id) OR email_key <> :key",
                        "ExpressionAttributeValues": {":key": {"S": address.lower()}},
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

    def _update(self, key: str, **arguments: Any) -> dict[str, Any] | None:
        """One conditional ``UpdateItem``: the item as it became, or ``None`` when the condition failed."""
        try:
            response = self.client.update_item(
                TableName=self.table_name, Key={"id": {"S": key}}, ReturnValues="ALL_NEW", **arguments
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return None
            raise StorageError(f"cannot update {self.url}: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"cannot update {self.url}: {error}") from error
        item: dict[str, Any] = response.get("Attributes") or {}
        return item

    def _change(
        self,
        subscriber_id: str,
        allowed: Callable[[dict[str, Any]], bool],
        arguments: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        reads_frequency: bool = True,
    ) -> Subscriber | None:
        """A change conditioned on the item as read: retried (read again) when a racing
        change moved ``status`` (or, if the change is built from it, ``frequency``) on, given
        up when ``allowed`` no longer holds."""
        if subscriber_id.startswith(_RESERVED):
            return None

        def attempt() -> Subscriber | _Again | None:
            current = self._get_item(subscriber_id)
            if current is None or "email" not in current or not allowed(current):
                return None
            changed = arguments(current)
            guard = "#status = :seen_status"
            seen = {":seen_status": current["status"]}
            if reads_frequency:
                guard += " AND frequency = :seen_frequency"
                seen[":seen_frequency"] = current["frequency"]
            changed["ConditionExpression"] = (
                f"{changed['ConditionExpression']} AND {guard}" if "ConditionExpression" in changed else guard
            )
            changed["ExpressionAttributeNames"] = {**_STATUS, **changed.get("ExpressionAttributeNames", {})}
            changed["ExpressionAttributeValues"] = {**seen, **changed.get("ExpressionAttributeValues", {})}
            item = self._update(subscriber_id, **changed)
            return _AGAIN if item is None else _subscriber(item)

        return _until_it_holds(attempt, f"{self.url}: {subscriber_id} (updating)")

    def transition(
        self, subscriber_id: str, status: SubscriberStatus, *, only_from: Collection[str], now: datetime
    ) -> Subscriber | None:
        def arguments(current: dict[str, Any]) -> dict[str, Any]:
            change = {
                "UpdateExpression": "SET #status = :status, status_frequency = :sending, updated_at = :now "
                "REMOVE confirm_nonce, confirm_expires",
                "ExpressionAttributeValues": {
                    ":status": {"S": status},
                    ":sending": {"S": f"{status}#{current['frequency']['S']}"},
                    ":now": {"S": now.isoformat()},
                },
            }
            return _recording(change, current, status, now)

        return self._change(subscriber_id, lambda current: current["status"]["S"] in only_from, arguments)

    def count_soft_bounce(self, subscriber_id: str, *, limit: int, now: datetime) -> Subscriber | None:
        if subscriber_id.startswith(_RESERVED):
            return None
        item = self._update(
            subscriber_id,
            UpdateExpression="ADD soft_bounces :one SET updated_at = :now",
            ConditionExpression="attribute_exists(email)",
            ExpressionAttributeValues={":one": {"N": "1"}, ":now": {"S": now.isoformat()}},
        )
        if item is None:
            return None
        counted = _subscriber(item)
        if counted.soft_bounces < limit:
            return counted
        return self.transition(subscriber_id, "bounced", only_from=("pending", "confirmed"), now=now) or counted

    def set_preferences(
        self, subscriber_id: str, *, tags: tuple[str, ...], frequency: str, lang: str, now: datetime
    ) -> Subscriber | None:
        def arguments(current: dict[str, Any]) -> dict[str, Any]:
            return {
                "UpdateExpression": "SET tags = :tags, frequency = :frequency, lang = :lang, "
                "status_frequency = :sending, updated_at = :now",
                "ExpressionAttributeValues": {
                    ":tags": {"L": [{"S": tag} for tag in tags]},
                    ":frequency": {"S": frequency},
                    ":lang": {"S": lang},
                    ":sending": {"S": f"{current['status']['S']}#{frequency}"},
                    ":now": {"S": now.isoformat()},
                },
            }

        # The new frequency replaces whatever a racing save wrote: only the status is read.
        return self._change(subscriber_id, lambda current: True, arguments, reads_frequency=False)

    def request_confirmation(self, subscriber_id: str, *, nonce: str, expires_at: datetime, now: datetime) -> bool:
        if subscriber_id.startswith(_RESERVED):
            return False
        item = self._update(
            subscriber_id,
            UpdateExpression="SET confirm_nonce = :nonce, confirm_expires = :expires, updated_at = :now",
            ConditionExpression="attribute_exists(email)",
            ExpressionAttributeValues={
                ":nonce": {"S": nonce},
                ":expires": {"S": sortable_time(expires_at)},
                ":now": {"S": now.isoformat()},
            },
        )
        return item is not None

    def confirm(self, subscriber_id: str, *, nonce: str, now: datetime) -> Subscriber | None:
        def arguments(current: dict[str, Any]) -> dict[str, Any]:
            change = {
                "UpdateExpression": "SET #status = :confirmed, status_frequency = :sending, soft_bounces = :zero, "
                "updated_at = :now REMOVE confirm_nonce, confirm_expires",
                "ConditionExpression": "confirm_nonce = :nonce AND confirm_expires > :moment",
                "ExpressionAttributeValues": {
                    ":confirmed": {"S": "confirmed"},
                    ":sending": {"S": f"confirmed#{current['frequency']['S']}"},
                    ":zero": {"N": "0"},
                    ":now": {"S": now.isoformat()},
                    ":nonce": {"S": nonce},
                    ":moment": {"S": sortable_time(now)},
                },
            }
            return _recording(change, current, "confirmed", now)

        def allowed(current: dict[str, Any]) -> bool:
            expires = str(current.get("confirm_expires", {}).get("S", ""))
            return bool(current.get("confirm_nonce", {}).get("S") == nonce and expires > sortable_time(now))

        return self._change(subscriber_id, allowed, arguments)

    def claim_confirmation_email(self, address_hash: str, *, now: datetime, limits: ConfirmationLimits) -> bool:
        """Two conditional updates in one transaction: the address's day and the global hour.

        The address's day starts with its first email and lasts 24 hours; the
        global count is per clock hour. Either refusing leaves both unchanged.
        """
        moment = int(now.timestamp())
        hour = moment - moment % 3600
        expires = {"N": str(moment + 2 * 86_400)}
        within_day: dict[str, Any] = {
            "UpdateExpression": "SET last_sent = :now, expires_at = :expires ADD window_count :one",
            "ConditionExpression": "last_sent <= :quiet_since AND window_start > :day_ago AND window_count < :per_day",
        }
        new_day: dict[str, Any] = {
            "UpdateExpression": "SET last_sent = :now, window_start = :now, window_count = :one, expires_at = :expires",
            "ConditionExpression": "attribute_not_exists(last_sent) OR "
            "(last_sent <= :quiet_since AND window_start <= :day_ago)",
        }
        now_value, one = {"N": str(moment)}, {"N": "1"}
        quiet_since = {"N": str(moment - int(limits.min_interval.total_seconds()))}
        day_ago = {"N": str(moment - 86_400)}
        within_day["ExpressionAttributeValues"] = {
            ":now": now_value,
            ":one": one,
            ":expires": expires,
            ":quiet_since": quiet_since,
            ":day_ago": day_ago,
            ":per_day": {"N": str(limits.per_day)},
        }
        new_day["ExpressionAttributeValues"] = {
            ":now": now_value,
            ":one": one,
            ":expires": expires,
            ":quiet_since": quiet_since,
            ":day_ago": day_ago,
        }
        global_hour = {
            "Update": {
                "TableName": self.table_name,
                "Key": {"id": {"S": f"{CONFIRM_PREFIX}HOUR#{hour}"}},
                "UpdateExpression": "SET expires_at = :expires ADD sent :one",
                "ConditionExpression": "attribute_not_exists(sent) OR sent < :per_hour",
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":expires": expires,
                    ":per_hour": {"N": str(limits.per_hour)},
                },
            }
        }
        return _until_it_holds(
            lambda: self._count_email(address_hash, (within_day, new_day), global_hour),
            f"{self.url}: confirmation counts",
        )

    def _count_email(
        self, address_hash: str, address_updates: tuple[dict[str, Any], ...], global_hour: dict[str, Any]
    ) -> bool | _Again:
        """``_AGAIN`` when another transaction on the same counters got in the way."""
        for address_update in address_updates:
            actions = [
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"id": {"S": CONFIRM_PREFIX + address_hash}},
                        **address_update,
                    }
                },
                global_hour,
            ]
            try:
                self.client.transact_write_items(TransactItems=actions)
            except ClientError as error:
                codes = _cancellation_codes(error)
                if "TransactionConflict" in codes:
                    return _AGAIN
                if not codes:
                    raise StorageError(f"cannot count a confirmation email in {self.url}: {error}") from error
                if codes[1] == "ConditionalCheckFailed":
                    return False  # the hour's ceiling
                continue
            except BotoCoreError as error:
                raise StorageError(f"cannot count a confirmation email in {self.url}: {error}") from error
            return True
        return False

    def erase(self, address_hash: str, subscriber_id: str | None, *, now: datetime) -> bool:
        return _until_it_holds(
            lambda: self._erase_once(address_hash, subscriber_id, now), f"{self.url}: {subscriber_id} (erasing)"
        )

    def _erase_once(self, address_hash: str, subscriber_id: str | None, now: datetime) -> bool | _Again:
        """One transaction; ``_AGAIN`` when the subscriber changed since it was read."""
        current = None
        if subscriber_id is not None and not subscriber_id.startswith(_RESERVED):
            current = self._get_item(subscriber_id)
        if current is not None and "email" not in current:
            current = None
        actions: list[dict[str, Any]] = [
            {"Delete": {"TableName": self.table_name, "Key": {"id": {"S": CONFIRM_PREFIX + address_hash}}}},
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {"id": {"S": ERASED_PREFIX + address_hash}, "erased_at": {"S": now.isoformat()}},
                }
            },
        ]
        if current is not None:
            actions.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": {"id": {"S": current["id"]["S"]}},
                        "ConditionExpression": "updated_at = :seen",
                        "ExpressionAttributeValues": {":seen": current["updated_at"]},
                    }
                }
            )
            actions.append({"Delete": {"TableName": self.table_name, "Key": {"id": {"S": _lock_of(current)}}}})
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            codes = _cancellation_codes(error)
            if "ConditionalCheckFailed" in codes or "TransactionConflict" in codes:
                return _AGAIN
            raise StorageError(f"cannot erase from {self.url}: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"cannot erase from {self.url}: {error}") from error
        return current is not None

    def is_erased(self, address_hash: str) -> bool:
        return self._get_item(ERASED_PREFIX + address_hash) is not None

    def _items(self, operation: str, arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if self.page_size:
            arguments["PaginationConfig"] = {"PageSize": self.page_size}
        try:
            for page in self.client.get_paginator(operation).paginate(**arguments):
                yield from page.get("Items", [])
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"cannot read {self.url}: {error}") from error

    def _paginate(self, operation: str, arguments: dict[str, Any]) -> Iterator[Subscriber]:
        return map(_subscriber, self._items(operation, arguments))

    def iter_all(self) -> Iterator[Subscriber]:
        """Every subscriber, by a paginated scan that skips the address locks."""
        return self._paginate(
            "scan",
            {"TableName": self.table_name, "FilterExpression": "attribute_exists(email)"},
        )

    def iter_status_changes(self) -> Iterator[StatusChange]:
        """Every subscriber's ``status_changes``, by a paginated scan that reads only them."""
        scan = {
            "TableName": self.table_name,
            "FilterExpression": "attribute_exists(status_changes)",
            "ProjectionExpression": "status_changes",
        }
        for item in self._items("scan", scan):
            for change in item["status_changes"]["L"]:
                fields = change["M"]
                yield StatusChange(fields["status"]["S"], datetime.fromisoformat(fields["at"]["S"]))

    def iter_confirmed(self, frequency: str) -> Iterator[Subscriber]:
        """Confirmed subscribers of one frequency, by id, from ``status-frequency-index``."""
        return self._paginate("query", self._confirmed_query(frequency))

    def count_confirmed(self, frequency: str) -> int:
        """Counted by the index query itself (``Select=COUNT``): no item crosses the network."""
        try:
            pages = self.client.get_paginator("query").paginate(**self._confirmed_query(frequency), Select="COUNT")
            return sum(int(page.get("Count", 0)) for page in pages)
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"cannot read {self.url}: {error}") from error

    def _confirmed_query(self, frequency: str) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "IndexName": SENDING_INDEX,
            "KeyConditionExpression": "status_frequency = :key",
            "ExpressionAttributeValues": {":key": {"S": f"confirmed#{frequency}"}},
        }
