"""The newsletter on the cloud adapters, against moto in server mode (real HTTP on 127.0.0.1).

SES v2 raw sends are read back from moto's ``/moto-api/data.json``; the send ledger
and the subscribers live in DynamoDB tables. moto is reset after each test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from digestpub.adapters.dynamodb_ledger import DynamoLedger, create_ledger_table
from digestpub.adapters.dynamodb_subscribers import DynamoSubscriberStore, create_subscribers_table
from digestpub.adapters.ses_mailer import SesMailer
from digestpub.newsletter.send import SendOptions
from digestpub.subscriptions.tokens import verify_token
from tests.newsletter_support import (
    TOKEN_KEY,
    Scenario,
    body_parts,
    list_unsubscribe_url,
    paper,
    parse,
    recipients,
    token_of,
)

SENDER_DOMAIN = "digest.example"


@pytest.fixture
def moto(moto_server: str) -> Iterator[str]:
    """The moto server with the sending domain verified; reset afterwards."""
    boto3.client("sesv2").create_email_identity(EmailIdentity=SENDER_DOMAIN)
    try:
        yield moto_server
    finally:
        requests.post(f"{moto_server}/moto-api/reset", timeout=10)


def ses_sent(endpoint: str) -> list[tuple[list[str], bytes, EmailMessage]]:
    """Every raw message moto's SES accepted: (destinations, raw bytes, parsed message)."""
    data = requests.get(f"{endpoint}/moto-api/data.json", timeout=10).json()
    sent = []
    for record in data["ses"]["RawMessage"]:
        raw = record["raw_data"].encode()
        sent.append((list(record["destinations"]), raw, parse(raw)))
    return sent


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    scenario = Scenario.create(tmp_path)
    scenario.publish([paper(1, ["MLLM"]), paper(2, ["vqa", "mllm"]), paper(3, ["moe"])])
    return scenario


def _subscribe_all(scenario: Scenario, store: Any = None) -> set[str]:
    """Four readers with something to read, and four who get nothing."""
    scenario.subscribe("alice@example.com", "mllm", store=store)
    scenario.subscribe("bob@example.com", "moe", lang="en", store=store)
    scenario.subscribe("carol@example.com", "", store=store)
    scenario.subscribe("dasha@example.com", "vqa moe", store=store)
    scenario.subscribe("robots@example.com", "robotics", store=store)
    scenario.subscribe("gone@example.com", "", status="unsubscribed", store=store)
    scenario.subscribe("pending@example.com", "", status="pending", store=store)
    scenario.subscribe("weekly@example.com", "", frequency="weekly", store=store)
    return {"alice@example.com", "bob@example.com", "carol@example.com", "dasha@example.com"}


def test_ses_sends_one_raw_message_per_subscriber_with_headers_intact(moto: str, scenario: Scenario) -> None:
    wanted = _subscribe_all(scenario)

    report = scenario.send(SesMailer())

    assert report.sent == len(wanted)
    sent = ses_sent(moto)
    assert recipients([message for _, _, message in sent]) == dict.fromkeys(sorted(wanted), 1)
    ids = scenario.ids_by_email()
    for destinations, raw, message in sent:
        address = message["To"].addresses[0].addr_spec
        assert address in destinations
        assert message["From"].addresses[0].display_name == "AI Digest"
        assert message["From"].addresses[0].addr_spec == f"digest@{SENDER_DOMAIN}"
        assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        url = list_unsubscribe_url(message)
        assert url.startswith("https://")
        assert verify_token(TOKEN_KEY, token_of(url), "unsubscribe") == ids[address]
        assert message["Message-ID"] and message["Date"] and message["List-Id"]
        assert message.get_content_type() == "multipart/alternative"
        text, html = body_parts(message)
        assert "2611.0000" in text and "2611.0000" in html
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998


class Throttled:
    """Wraps an SES client: the first ``times`` sends answer TooManyRequestsException."""

    def __init__(self, client: Any, times: int) -> None:
        self.client = client
        self.left = times
        self.calls = 0
        self.delivered = 0

    def send_email(self, **arguments: Any) -> Any:
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            raise ClientError(
                {
                    "Error": {"Code": "TooManyRequestsException", "Message": "Maximum sending rate exceeded."},
                    "ResponseMetadata": {"HTTPStatusCode": 429},
                },
                "SendEmail",
            )
        response = self.client.send_email(**arguments)
        self.delivered += 1
        return response


@pytest.mark.parametrize("times", [1, 5])
def test_ses_throttling_is_retried_and_nothing_is_sent_twice(moto: str, scenario: Scenario, times: int) -> None:
    wanted = _subscribe_all(scenario)
    mailer = SesMailer()
    throttled = Throttled(mailer.client, times)
    mailer.client = throttled

    report = scenario.send(mailer, options=SendOptions(send_rate=1000, backoff_first=0.01, backoff_cap=0.05))

    assert (report.sent, report.failed) == (len(wanted), 0)
    assert throttled.calls == len(wanted) + times
    sent = ses_sent(moto)
    assert recipients([message for _, _, message in sent]) == dict.fromkeys(sorted(wanted), 1)
    assert scenario.ledger.counts(report.issue_id) == {"sent": len(wanted)}


@pytest.fixture
def dynamo_tables(moto: str) -> tuple[str, str]:
    """A subscribers table and its ledger table (named as ``open_ledger`` names it)."""
    client = boto3.client("dynamodb")
    name = f"subscribers-{uuid.uuid4().hex[:10]}"
    create_subscribers_table(client, name)
    create_ledger_table(client, name + "-ledger")
    return name, name + "-ledger"


def test_dynamodb_ledger_claim_is_exclusive(dynamo_tables: tuple[str, str]) -> None:
    _subscribers, ledger_table = dynamo_tables
    first, second = DynamoLedger(ledger_table), DynamoLedger(ledger_table)

    assert first.claim("daily-2026-11-20", "s1", "run-a") is True
    assert second.claim("daily-2026-11-20", "s1", "run-b") is False
    assert first.claim("daily-2026-11-20", "s1", "run-a") is False
    assert second.claim("daily-2026-11-21", "s1", "run-b") is True, "another issue is another claim"

    first.confirm("daily-2026-11-20", "s1", "<m1@digest.example>")
    assert second.claim("daily-2026-11-20", "s1", "run-c") is False
    first.release("daily-2026-11-20", "s1")  # only a bare claim is released, never a sent row
    assert second.claim("daily-2026-11-20", "s1", "run-c") is False
    assert first.counts("daily-2026-11-20") == {"sent": 1}

    # A claim left by a run that stopped is "unknown" to other runs, and only one run takes it over.
    assert first.claim("daily-2026-11-20", "s2", "run-a") is True
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert second.unknown("daily-2026-11-20", "run-b", later) == ["s2"]
    assert first.unknown("daily-2026-11-20", "run-a", later) == []
    assert second.reclaim("daily-2026-11-20", "s2", "run-b") is True
    assert second.reclaim("daily-2026-11-20", "s2", "run-b") is False
    second.reject("daily-2026-11-20", "s2", "550 no such user")
    assert first.counts("daily-2026-11-20") == {"sent": 1, "rejected": 1}


def test_dynamodb_subscribers_and_ledger_rerun_sends_nothing(
    moto: str, scenario: Scenario, dynamo_tables: tuple[str, str]
) -> None:
    subscribers_table, ledger_table = dynamo_tables
    store = DynamoSubscriberStore(subscribers_table)
    wanted = _subscribe_all(scenario, store=store)
    ledger = DynamoLedger(ledger_table)
    day = datetime.now(UTC).date()

    first = scenario.send(SesMailer(), on=day, subscribers=store, ledger=ledger)
    rerun = scenario.send(SesMailer(), on=day, subscribers=DynamoSubscriberStore(subscribers_table), ledger=ledger)

    assert first.sent == len(wanted)
    assert (rerun.sent, rerun.already_sent) == (0, len(wanted))
    sent = ses_sent(moto)
    assert recipients([message for _, _, message in sent]) == dict.fromkeys(sorted(wanted), 1)
    assert ledger.counts(first.issue_id) == {"sent": len(wanted)}
