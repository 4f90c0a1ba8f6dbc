"""The Lambda handlers in ``functions/`` against moto in server mode, with real event shapes.

Each test loads the handler modules fresh (a cold start), wires them through
``DIGESTPUB_*`` variables exactly as ``serverless.yml`` would, and drives them with
the events AWS hands a function: EventBridge Scheduler input, SQS batches, SNS
notifications carrying SES events, and HTTP API (payload 2.0) requests. What they
do is read back from moto: S3 objects, DynamoDB items, SQS messages and the raw
messages SES accepted. moto is reset after each test (``s3_bucket``).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import feedparser
import pytest
from lxml import etree

from digestpub.adapters.dynamodb_ledger import DynamoLedger, create_ledger_table
from digestpub.adapters.dynamodb_subscribers import DynamoSubscriberStore, create_subscribers_table
from digestpub.adapters.s3_store import S3Store
from digestpub.app import cloud
from digestpub.errors import ConfigError
from digestpub.model import Subscriber
from digestpub.publish.report import load_latest_report
from digestpub.render.feed_formats import FEEDS
from digestpub.state.lock import StateLock
from digestpub.subscriptions.endpoints import form_token
from digestpub.subscriptions.subscribers import new_subscriber
from digestpub.subscriptions.tokens import make_token, verify_token
from tests.cloud_support import (
    FakeLambdaContext,
    http_event,
    load_handler,
    response_body,
    response_headers,
    s3_event_notification,
    s3_object_event_via_eventbridge,
    scheduler_event,
    ses_bounce,
    ses_complaint,
    ses_raw_messages,
    sns_event,
    sqs_event,
    sqs_event_from_messages,
    sqs_record,
)
from tests.conftest import FEED_TYPES, summary
from tests.websub_support import Hub

BASE_URL = "https://digest.example/"
API_URL = "https://api.digest.example/"
FROM_DOMAIN = "digest.example"
FROM_ADDRESS = f"AI Digest <digest@{FROM_DOMAIN}>"
ENV_TOKEN_KEY = "env-token-key-for-cloud-tests-0123456789"
SSM_TOKEN_KEY = "ssm-token-key-for-cloud-tests-9876543210"
FEED_CACHE = "public, max-age=60"
PAGE_CACHE = "public, max-age=600"
FEED_FILE_NAMES = {kind.name: kind.file_name for kind in FEEDS}


@dataclass
class Cloud:
    """One deployment on moto: a bucket, tables, a queue and a verified sending domain."""

    endpoint: str
    bucket: str
    subscribers_table: str
    ledger_table: str
    idempotency_table: str
    queue_url: str
    queue_arn: str
    token_key: bytes

    @property
    def store(self) -> DynamoSubscriberStore:
        return DynamoSubscriberStore(self.subscribers_table)

    @property
    def site(self) -> S3Store:
        return S3Store(self.bucket, "site")

    def put_summary(self, document: dict[str, Any], when: datetime | None = None) -> str:
        """Write one summary where the upstream pipeline would: ``summaries/YYYY/MM/DD/<id>.json``."""
        day = (when or datetime.now(UTC)).astimezone(UTC)
        key = f"summaries/{day:%Y/%m/%d}/{document['id']}.json"
        body = json.dumps(document, ensure_ascii=False).encode()
        boto3.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        return key

    def subscribe(self, address: str, tags: str = "", **fields: str) -> Subscriber:
        status = fields.pop("status", "confirmed")
        person = new_subscriber(
            address, tags, fields.pop("frequency", "daily"), fields.pop("lang", "ru"), status=status
        )
        self.store.save(person)
        return person

    def status(self, person: Subscriber) -> tuple[str, int]:
        found = self.store.get(person.id)
        assert found is not None, person.email
        return found.status, found.soft_bounces

    def receive_all(self) -> list[dict[str, Any]]:
        """Every message on the send queue (each becomes invisible for the visibility timeout)."""
        client = boto3.client("sqs")
        messages: list[dict[str, Any]] = []
        while True:
            response = client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
            )
            found = response.get("Messages", [])
            if not found:
                return messages
            messages.extend(found)

    def sent(self) -> list[tuple[list[str], EmailMessage]]:
        return ses_raw_messages(self.endpoint)


def _news(number: int, tags: list[str], hours_ago: float) -> dict[str, Any]:
    """A summary published ``hours_ago`` hours before now: news for today's daily issue."""
    moment = datetime.now(UTC) - timedelta(hours=hours_ago)
    return summary(number, tags=tags, published_at=moment.isoformat(timespec="seconds"))


@pytest.fixture(autouse=True)
def _powertools_logging() -> Iterator[None]:
    """Powertools' Logger configures the ``digestpub`` logger and filters root handlers: undo it."""
    logger = logging.getLogger("digestpub")
    saved = (list(logger.handlers), logger.level, logger.propagate, dict(logger.__dict__))
    filters = {id(handler): list(handler.filters) for handler in logging.root.handlers}
    try:
        yield
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
        for name in ("init", "powertools_handler", "powertools_buffer_config", "powertools_buffer_cache"):
            if name not in saved[3]:
                logger.__dict__.pop(name, None)
        for handler in logging.root.handlers:
            if id(handler) in filters:
                handler.filters[:] = filters[id(handler)]


def _clear_caches() -> None:
    from aws_lambda_powertools.utilities import parameters

    cloud.settings.cache_clear()
    parameters.clear_caches()
    cloud.newsletter.cache_clear()
    cloud.subscriptions.cache_clear()


def _deploy(endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch, *, key_from_ssm: bool) -> Cloud:
    dynamodb = boto3.client("dynamodb")
    suffix = uuid.uuid4().hex[:10]
    subscribers_table = f"subscribers-{suffix}"
    idempotency_table = f"idempotency-{suffix}"
    create_subscribers_table(dynamodb, subscribers_table)
    create_ledger_table(dynamodb, subscribers_table + "-ledger")
    dynamodb.create_table(
        TableName=idempotency_table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("sesv2").create_email_identity(EmailIdentity=FROM_DOMAIN)
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"send-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    variables = {
        "POWERTOOLS_SERVICE_NAME": "digestpub",
        "POWERTOOLS_METRICS_NAMESPACE": "digestpub-test",
        "DIGESTPUB_IDEMPOTENCY_TABLE": idempotency_table,
        "DIGESTPUB_SOURCE": f"s3://{bucket}/summaries",
        "DIGESTPUB_DEST": f"s3://{bucket}/site",
        "DIGESTPUB_STATE": f"s3://{bucket}/state",
        "DIGESTPUB_BASE_URL": BASE_URL,
        "DIGESTPUB_API_URL": API_URL,
        "DIGESTPUB_SUBSCRIBERS": f"dynamodb://{subscribers_table}",
        "DIGESTPUB_MAILER": "ses://",
        "DIGESTPUB_FROM_ADDRESS": FROM_ADDRESS,
        "DIGESTPUB_SEND_QUEUE_URL": queue_url,
        "DIGESTPUB_SEND_RATE": "1000",
        "DIGESTPUB_FEED_CACHE_CONTROL": FEED_CACHE,
        "DIGESTPUB_PAGE_CACHE_CONTROL": PAGE_CACHE,
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    if key_from_ssm:
        parameter = f"/digestpub/test-{suffix}/token-key"
        boto3.client("ssm").put_parameter(Name=parameter, Value=SSM_TOKEN_KEY, Type="SecureString")
        monkeypatch.setenv("DIGESTPUB_TOKEN_KEY_PARAMETER", parameter)
        monkeypatch.delenv("DIGESTPUB_TOKEN_KEY", raising=False)
        key = SSM_TOKEN_KEY
    else:
        monkeypatch.setenv("DIGESTPUB_TOKEN_KEY", ENV_TOKEN_KEY)
        monkeypatch.delenv("DIGESTPUB_TOKEN_KEY_PARAMETER", raising=False)
        key = ENV_TOKEN_KEY
    return Cloud(
        endpoint=endpoint,
        bucket=bucket,
        subscribers_table=subscribers_table,
        ledger_table=subscribers_table + "-ledger",
        idempotency_table=idempotency_table,
        queue_url=queue_url,
        queue_arn=queue_arn,
        token_key=key.encode(),
    )


def _cloud(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, *, key_from_ssm: bool) -> Iterator[Cloud]:
    endpoint = request.getfixturevalue("moto_server")
    bucket = request.getfixturevalue("s3_bucket")  # resets moto after the test
    _clear_caches()
    try:
        yield _deploy(endpoint, bucket, monkeypatch, key_from_ssm=key_from_ssm)
    finally:
        _clear_caches()


@pytest.fixture
def deployed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """A deployment whose token key comes from the DIGESTPUB_TOKEN_KEY variable."""
    yield from _cloud(request, monkeypatch, key_from_ssm=False)


@pytest.fixture
def deployed_with_ssm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """A deployment whose token key is an SSM SecureString named by DIGESTPUB_TOKEN_KEY_PARAMETER."""
    yield from _cloud(request, monkeypatch, key_from_ssm=True)


def _token(url: str) -> str:
    values = parse_qs(urlsplit(url).query)["token"]
    assert len(values) == 1, url
    return values[0]


def _alter(token: str) -> str:
    """The token with one character of its signature changed."""
    position = len(token) - 10
    replacement = "A" if token[position] != "A" else "B"
    return token[:position] + replacement + token[position + 1 :]


def _list_unsubscribe(message: EmailMessage) -> str:
    value = str(message["List-Unsubscribe"]).strip()
    assert value.startswith("<") and value.endswith(">"), value
    return value[1:-1]


def _recipient(message: EmailMessage) -> str:
    return str(message["To"].addresses[0].addr_spec)


# --- publish_feeds -------------------------------------------------------------------------


def test_publish_feeds_on_schedule_and_on_s3_notifications(deployed: Cloud) -> None:
    deployed.put_summary(_news(1, ["mllm", "vqa"], hours_ago=3))
    deployed.put_summary(_news(2, ["MLLM"], hours_ago=2))
    handler = load_handler("publish_feeds").handler

    result = handler(scheduler_event(), FakeLambdaContext("publish-feeds"))

    assert set(result) == {"summary"} and "2 new" in result["summary"], result
    s3 = boto3.client("s3")
    for key, content_type in FEED_TYPES.items():
        head = s3.head_object(Bucket=deployed.bucket, Key=f"site/{key}")
        assert head["ContentType"] == content_type, key
        assert head["CacheControl"] == FEED_CACHE, key
    page = s3.head_object(Bucket=deployed.bucket, Key="site/tags/mllm/index.html")
    assert page["ContentType"] == "text/html; charset=utf-8"
    assert page["CacheControl"] == PAGE_CACHE
    feed = json.loads(deployed.site.read("feeds/feed.json")[0])  # type: ignore[index]
    assert [item["id"] for item in feed["items"]] != []
    assert {item["url"] for item in feed["items"]} == {
        "https://aidigest.example/papers/2611.00001",
        "https://aidigest.example/papers/2611.00002",
    }

    # A new summary arrives; S3 tells the queue, and the queue hands the function a batch.
    key = deployed.put_summary(_news(3, ["moe"], hours_ago=1))
    event = sqs_event(
        [
            sqs_record(s3_object_event_via_eventbridge(deployed.bucket, key), deployed.queue_arn),
            sqs_record(s3_event_notification(deployed.bucket, key), deployed.queue_arn),
        ]
    )
    result = load_handler("publish_feeds").handler(event, FakeLambdaContext("publish-feeds"))

    assert result == {"batchItemFailures": []}
    feed = json.loads(deployed.site.read("feeds/feed.json")[0])  # type: ignore[index]
    assert "https://aidigest.example/papers/2611.00003" in {item["url"] for item in feed["items"]}
    head = s3.head_object(Bucket=deployed.bucket, Key="site/feeds/tags/moe/rss.xml")
    assert (head["ContentType"], head["CacheControl"]) == ("application/rss+xml; charset=utf-8", FEED_CACHE)


def test_publish_feeds_keeps_the_ids_when_the_site_moves_and_refuses_an_id_authority_that_changes_them(
    deployed: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed.put_summary(_news(1, ["mllm"], hours_ago=2))
    load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    entry = "tag:digest.example,2026:summary/2611.00001"
    assert _feed_ids(deployed, "feeds/feed.json") == {entry}

    monkeypatch.setenv("DIGESTPUB_BASE_URL", "https://moved.example/")
    _clear_caches()
    deployed.put_summary(_news(2, ["mllm"], hours_ago=1))
    load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    assert _feed_ids(deployed, "feeds/feed.json") == {entry, "tag:digest.example,2026:summary/2611.00002"}
    feed = json.loads(deployed.site.read("feeds/feed.json")[0])  # type: ignore[index]
    assert feed["home_page_url"] == "https://moved.example/"

    monkeypatch.setenv("DIGESTPUB_ID_AUTHORITY", "moved.example")
    _clear_caches()
    with pytest.raises(ConfigError, match="id_authority"):
        load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))


def _feed_ids(cloud_: Cloud, path: str) -> set[str]:
    """The entry ids of one published feed, parsed as a feed reader parses it."""
    found = cloud_.site.read(path)
    assert found is not None, path
    if path.endswith(".json"):
        return {item["id"] for item in json.loads(found[0])["items"]}
    parsed = feedparser.parse(found[0])
    assert not parsed.bozo, (path, parsed.get("bozo_exception"))
    return {entry.id for entry in parsed.entries}


def test_publish_feeds_reads_and_deletes_the_objects_its_events_name_whatever_their_day(deployed: Cloud) -> None:
    deployed.put_summary(_news(1, ["mllm"], hours_ago=2))
    handler = load_handler("publish_feeds").handler
    handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    late = _news(2, ["mllm", "late"], hours_ago=24 * 14)
    key = deployed.put_summary(late, when=datetime.now(UTC) - timedelta(days=14))
    entry = "tag:digest.example,2026:summary/2611.00002"
    feeds = [f"feeds/{name}" for name in FEED_FILE_NAMES.values()]
    feeds += [f"feeds/tags/{tag}/{name}" for tag in ("mllm", "late") for name in FEED_FILE_NAMES.values()]
    assert "0 new" in handler(scheduler_event(), FakeLambdaContext("publish-feeds"))["summary"]

    created = sqs_record(s3_object_event_via_eventbridge(deployed.bucket, key), deployed.queue_arn)
    assert handler(sqs_event([created]), FakeLambdaContext("publish-feeds")) == {"batchItemFailures": []}
    for path in feeds:
        assert entry in _feed_ids(deployed, path), path
    # The tag's page holds the card of its open archive page until that page fills.
    archive = "tags/late/index.html"
    assert b"2611.00002" in deployed.site.read(archive)[0]  # type: ignore[index]

    boto3.client("s3").delete_object(Bucket=deployed.bucket, Key=key)
    deleted = sqs_record(s3_object_event_via_eventbridge(deployed.bucket, key, deleted=True), deployed.queue_arn)
    assert handler(sqs_event([deleted]), FakeLambdaContext("publish-feeds")) == {"batchItemFailures": []}

    for path in feeds:
        assert entry not in _feed_ids(deployed, path), path
    assert b"2611.00002" not in deployed.site.read(archive)[0], "the tag's page stays, without the card"  # type: ignore[index]
    sitemap = deployed.site.read("sitemap.xml")[0]  # type: ignore[index]
    assert b"/late/" not in sitemap and b"2611.00002" not in deployed.site.read("index.html")[0]  # type: ignore[index]
    report = load_latest_report(S3Store(deployed.bucket, "state"))
    assert report is not None and report.summaries_deleted == 1
    handler(sqs_event([deleted]), FakeLambdaContext("publish-feeds"))
    again = load_latest_report(S3Store(deployed.bucket, "state"))
    assert again is not None and (again.files_written, again.summaries_deleted) == (0, 0)


def test_publish_feeds_logs_and_ignores_events_it_cannot_use(
    deployed: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    key = deployed.put_summary(_news(1, ["mllm"], hours_ago=1))
    bodies = [
        s3_object_event_via_eventbridge(deployed.bucket, "elsewhere/2026/11/20/x.json"),
        s3_object_event_via_eventbridge("another-bucket", key),
        s3_object_event_via_eventbridge(deployed.bucket, "summaries/notes/readme.txt"),
        s3_object_event_via_eventbridge(deployed.bucket, "summaries/2026/13/45/x.json"),
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": deployed.bucket}),
        "not json at all",
        s3_event_notification(deployed.bucket, key),
    ]
    records = [sqs_record(body, deployed.queue_arn) for body in bodies]
    capsys.readouterr()

    result = load_handler("publish_feeds").handler(sqs_event(records), FakeLambdaContext("publish-feeds"))

    assert result == {"batchItemFailures": []}
    assert entry_of(1) in _feed_ids(deployed, "feeds/atom.xml"), "the usable event and the listing still publish"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    ignored = sorted(line["message"] for line in logged if "ignored" in str(line.get("message")))
    assert ignored == sorted(
        [
            f"event ignored: s3://{deployed.bucket}/elsewhere/2026/11/20/x.json is outside the source "
            f"s3://{deployed.bucket}/summaries",
            f"event ignored: s3://another-bucket/{key} is outside the source s3://{deployed.bucket}/summaries",
            "event ignored: notes/readme.txt is not a summary key (YYYY/MM/DD/NAME.json or .jsonl)",
            "event ignored: 2026/13/45/x.json is not a summary key (YYYY/MM/DD/NAME.json or .jsonl)",
            f"message {records[4]['messageId']} ignored: it is not an S3 event",
            f"message {records[5]['messageId']} ignored: it is not an S3 event",
        ]
    )


@pytest.mark.parametrize("shape", ["eventbridge", "classic"])
def test_publish_feeds_decodes_the_keys_events_carry_url_encoded(deployed: Cloud, shape: str) -> None:
    load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    day = datetime.now(UTC) - timedelta(days=10)
    key = f"summaries/{day:%Y/%m/%d}/a paper (v2)+notes.json"
    document = _news(7, ["mllm"], hours_ago=240)
    boto3.client("s3").put_object(Bucket=deployed.bucket, Key=key, Body=json.dumps(document).encode())
    body = (
        s3_object_event_via_eventbridge(deployed.bucket, key)
        if shape == "eventbridge"
        else s3_event_notification(deployed.bucket, key)
    )
    assert "+notes" not in body and "%2Bnotes" in body, "the key travels URL-encoded"

    result = load_handler("publish_feeds").handler(
        sqs_event([sqs_record(body, deployed.queue_arn)]), FakeLambdaContext("publish-feeds")
    )

    assert result == {"batchItemFailures": []}
    assert entry_of(7) in _feed_ids(deployed, "feeds/tags/mllm/atom.xml")


def entry_of(number: int) -> str:
    return f"tag:digest.example,2026:summary/2611.{number:05d}"


def _metrics(stdout: str) -> list[dict[str, Any]]:
    """Powertools' embedded-metric-format lines among the handler's output."""
    return [document for line in stdout.splitlines() if "_aws" in (document := json.loads(line))]


def test_publish_feeds_counts_skipped_and_still_unfixed_inputs_for_the_alarm(
    deployed: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.put_summary(_news(1, ["mllm"], hours_ago=2))
    deployed.put_summary({**_news(2, ["mllm"], hours_ago=1), "title": "\u200b\u200b"})
    handler = load_handler("publish_feeds").handler
    capsys.readouterr()

    handler(scheduler_event(), FakeLambdaContext("digestpub-test-publish-feeds"))
    first = _metrics(capsys.readouterr().out)
    handler(scheduler_event(), FakeLambdaContext("digestpub-test-publish-feeds"))
    second = _metrics(capsys.readouterr().out)

    for emitted in (first, second):
        assert len(emitted) == 1, emitted
        directive = emitted[0]["_aws"]["CloudWatchMetrics"][0]
        # The alarm in infra/alarms.yml watches exactly this namespace and these dimensions.
        assert directive["Namespace"] == "digestpub-test"
        assert set(directive["Dimensions"][0]) == {"service", "function_name"}
        assert emitted[0]["function_name"] == "digestpub-test-publish-feeds"
    # The first run skipped the blank title; the second did not read it again, but it is still unfixed.
    assert (first[0]["SummariesSkipped"], first[0]["InputsUnfixed"]) == ([1.0], [1.0])
    assert (second[0]["SummariesSkipped"], second[0]["InputsUnfixed"]) == ([0.0], [1.0])


def test_publish_feeds_tells_the_websub_hubs_of_the_feeds_it_changed(
    deployed: Cloud, monkeypatch: pytest.MonkeyPatch, hub_server: Callable[[Hub], Hub]
) -> None:
    hub = hub_server(Hub())
    monkeypatch.setenv("DIGESTPUB_HUBS", hub.url)
    deployed.put_summary(_news(1, ["moe"], hours_ago=1))

    result = load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))

    assert "1 new" in result["summary"] and "hub" not in result["summary"]
    folders = ("feeds", "feeds/tags/moe")
    assert hub.told() == {f"{BASE_URL}{folder}/{name}" for folder in folders for name in FEED_FILE_NAMES.values()}
    atom = deployed.site.read("feeds/atom.xml")[0]  # type: ignore[index]
    assert f'<link href="{hub.url}" rel="hub"/>'.encode() in atom


def test_publish_feeds_returns_the_batch_when_another_run_holds_the_state(
    deployed: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGESTPUB_LOCK_TIMEOUT", "0")
    key = deployed.put_summary(_news(1, ["mllm"], hours_ago=1))
    records = [
        sqs_record(s3_object_event_via_eventbridge(deployed.bucket, key), deployed.queue_arn),
        sqs_record(s3_object_event_via_eventbridge(deployed.bucket, key), deployed.queue_arn),
    ]
    handler = load_handler("publish_feeds").handler

    with StateLock(S3Store(deployed.bucket, "state"), ttl=timedelta(minutes=5), wait=timedelta(0)):
        result = handler(sqs_event(records), FakeLambdaContext("publish-feeds"))

    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in records]}
    assert deployed.site.read("feeds/rss.xml") is None, "nothing is published while another run holds the lock"


# --- the whole newsletter flow -------------------------------------------------------------


def test_cloud_newsletter_flow_end_to_end(deployed_with_ssm: Cloud) -> None:
    cloud_ = deployed_with_ssm
    # 1. Summaries land in S3 and the scheduled publish turns them into feeds.
    cloud_.put_summary(_news(1, ["mllm", "vqa"], hours_ago=5))
    cloud_.put_summary(_news(2, ["MLLM"], hours_ago=4))
    cloud_.put_summary(_news(3, ["moe"], hours_ago=3))
    published = load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    assert "3 new" in published["summary"], published
    assert cloud_.site.read("feeds/tags/moe/atom.xml") is not None

    # 2. Subscribers: three with something to read, more than one batch of those with nothing.
    alice = cloud_.subscribe("alice@example.com", "mllm")
    bob = cloud_.subscribe("bob@example.com", "", lang="en")
    carol = cloud_.subscribe("carol@example.com", "moe")
    nothing = [cloud_.subscribe(f"robots{number}@example.com", "robotics") for number in range(50)]
    cloud_.subscribe("pending@example.com", "", status="pending")
    cloud_.subscribe("gone@example.com", "", status="unsubscribed")
    cloud_.subscribe("weekly@example.com", "", frequency="weekly")
    wanted = {alice.email, bob.email, carol.email}

    # 3. The daily schedule plans the issue; its batches go to the queue.
    before = datetime.now(UTC).date()
    planned = load_handler("plan_newsletter").handler(scheduler_event(frequency="daily"), FakeLambdaContext("plan"))
    days = {before, datetime.now(UTC).date()}  # the schedule may fire at midnight
    assert planned["issue"] in {f"daily-{day:%Y-%m-%d}" for day in days}
    assert (planned["summaries"], planned["batches"]) == (3, 2)
    messages = cloud_.receive_all()
    assert len(messages) == 2
    queued = [json.loads(message["Body"]) for message in messages]
    assert {batch["issue_id"] for batch in queued} == {planned["issue"]}
    named = [identifier for batch in queued for identifier in batch["subscriber_ids"]]
    assert sorted(named) == sorted([alice.id, bob.id, carol.id] + [person.id for person in nothing])

    event = sqs_event_from_messages(messages, cloud_.queue_arn)
    send = load_handler("send_batch").handler
    assert send(event, FakeLambdaContext("send-batch")) == {"batchItemFailures": []}

    sent = cloud_.sent()
    assert Counter(_recipient(message) for _, message in sent) == dict.fromkeys(sorted(wanted), 1)
    by_address = {_recipient(message): message for _, message in sent}
    for destinations, message in sent:
        assert set(destinations) == {_recipient(message)}  # moto adds the To header to the envelope
        assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        assert str(message["X-Digestpub-Issue"]) == planned["issue"]
        url = _list_unsubscribe(message)
        assert url.startswith(API_URL + "unsubscribe?token=")
    ids = {alice.email: alice.id, bob.email: bob.id, carol.email: carol.id}
    for address, message in by_address.items():
        # The token key came from SSM, not from any variable.
        assert verify_token(cloud_.token_key, _token(_list_unsubscribe(message)), "unsubscribe") == ids[address]
    assert DynamoLedger(cloud_.ledger_table).counts(planned["issue"]) == {"sent": 3}

    # 4. SQS delivers the same batches again (at least once): nothing is sent twice,
    # not by the same container, nor by a new one.
    assert send(event, FakeLambdaContext("send-batch")) == {"batchItemFailures": []}
    assert load_handler("send_batch").handler(event, FakeLambdaContext("send-batch")) == {"batchItemFailures": []}
    assert len(cloud_.sent()) == 3

    # 5. One-click unsubscribe (RFC 8058) from the List-Unsubscribe header.
    endpoints = load_handler("subscriptions").handler
    alice_url = _list_unsubscribe(by_address[alice.email])
    bob_url = _list_unsubscribe(by_address[bob.email])
    one_click = "List-Unsubscribe=One-Click"

    forged = alice_url.replace(_token(alice_url), _alter(_token(alice_url)))
    response = endpoints(http_event("POST", forged, body=one_click), FakeLambdaContext("subscriptions"))
    assert response["statusCode"] == 403
    assert cloud_.status(alice) == ("confirmed", 0)

    other_purpose = f"{API_URL}unsubscribe?token={make_token(cloud_.token_key, alice.id, 'preferences')}"
    response = endpoints(http_event("POST", other_purpose, body=one_click), FakeLambdaContext("subscriptions"))
    assert response["statusCode"] == 403
    assert cloud_.status(alice) == ("confirmed", 0)

    response = endpoints(http_event("GET", bob_url), FakeLambdaContext("subscriptions"))
    assert response["statusCode"] == 200
    page = response_body(response)
    assert '<form class="subscribe" method="post"' in page and "<script" not in page.lower()
    assert bob.email in page
    assert cloud_.status(bob) == ("confirmed", 0), "a GET (a link scanner) changes nothing"

    response = endpoints(http_event("POST", alice_url, body=one_click), FakeLambdaContext("subscriptions"))
    assert response["statusCode"] == 200
    assert "location" not in response_headers(response)
    assert cloud_.status(alice) == ("unsubscribed", 0)

    # 6. SES reports through SNS: a hard bounce suppresses, a soft one is counted, a complaint suppresses.
    events = load_handler("ses_events").handler
    assert events(sns_event(ses_bounce(carol.email)), FakeLambdaContext("ses-events")) == {"changed": 1}
    assert cloud_.status(carol) == ("bounced", 0)
    assert events(sns_event(ses_bounce(bob.email, "Transient")), FakeLambdaContext("ses-events")) == {"changed": 1}
    assert cloud_.status(bob) == ("confirmed", 1)
    assert events(sns_event(ses_complaint(bob.email)), FakeLambdaContext("ses-events")) == {"changed": 1}
    assert cloud_.status(bob) == ("complained", 1)


# --- plan_newsletter idempotency -------------------------------------------------------------


def test_plan_newsletter_retried_does_not_queue_twice(deployed: Cloud) -> None:
    deployed.put_summary(_news(1, ["mllm"], hours_ago=2))
    load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    for number in range(3):
        deployed.subscribe(f"reader{number}@example.com", "")
    plan = load_handler("plan_newsletter").handler
    event = scheduler_event(frequency="daily")

    first = plan(event, FakeLambdaContext("plan"))
    again = plan(event, FakeLambdaContext("plan"))  # Lambda retries an async invocation
    cold = load_handler("plan_newsletter").handler(event, FakeLambdaContext("plan"))  # on a new container

    assert first["batches"] == 1
    assert again == first and cold == first
    messages = deployed.receive_all()
    assert len(messages) == 1, [message["Body"] for message in messages]
    records = boto3.client("dynamodb").scan(TableName=deployed.idempotency_table)["Items"]
    assert [item["status"]["S"] for item in records] == ["COMPLETED"]

    # Planning publishes the web copy of everything and the archive that links it.
    archive = deployed.site.read("newsletter/index.html")
    feed = deployed.site.read("feeds/newsletter.xml")
    assert archive is not None and feed is not None, "plan_newsletter published no archive"
    copy_path = f"newsletter/{first['issue']}/all.ru.html"
    assert deployed.site.read(copy_path) is not None
    assert copy_path.encode() in archive[0] and copy_path.encode() in feed[0]
    assert b"reader0@example.com" not in archive[0] + feed[0]

    # Another frequency is another issue; a bad one is refused.
    weekly = plan(scheduler_event(frequency="weekly"), FakeLambdaContext("plan"))
    assert weekly["batches"] == 0, "nobody reads weekly"
    with pytest.raises(ValueError, match="daily or weekly"):
        plan(scheduler_event(frequency="hourly"), FakeLambdaContext("plan"))


# --- ses_events ------------------------------------------------------------------------------


def test_ses_events_bounces_and_complaints(deployed: Cloud) -> None:
    hard = deployed.subscribe("hard@example.com", "")
    soft = deployed.subscribe("soft@example.com", "")
    angry = deployed.subscribe("angry@example.com", "")
    handler = load_handler("ses_events").handler
    context = FakeLambdaContext("ses-events")

    assert handler(sns_event(ses_bounce("hard@example.com")), context) == {"changed": 1}
    assert handler(sns_event(ses_bounce("soft@example.com", "Transient")), context) == {"changed": 1}
    assert handler(sns_event(ses_complaint("angry@example.com")), context) == {"changed": 1}

    assert deployed.status(hard) == ("bounced", 0)
    assert deployed.status(soft) == ("confirmed", 1)
    assert deployed.status(angry) == ("complained", 0)

    # Unknown addresses, deliveries and non-JSON messages change nothing and do not fail.
    assert handler(sns_event(ses_bounce("stranger@example.com")), context) == {"changed": 0}
    delivery = {"eventType": "Delivery", "mail": ses_bounce("soft@example.com")["mail"], "delivery": {}}
    assert handler(sns_event(delivery), context) == {"changed": 0}
    assert handler(sns_event("not json"), context) == {"changed": 0}
    assert deployed.status(soft) == ("confirmed", 1)


# --- subscription endpoints --------------------------------------------------------------------


def test_subscribe_confirm_and_preferences_through_the_http_api(deployed: Cloud) -> None:
    # Subscribers choose among the digest's published tags.
    deployed.put_summary(_news(1, ["mllm", "vqa"], hours_ago=3))
    deployed.put_summary(_news(2, ["moe", "rag"], hours_ago=2))
    load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    handler = load_handler("subscriptions").handler
    context = FakeLambdaContext("subscriptions")
    origin = {"origin": BASE_URL.rstrip("/")}

    response = handler(
        http_event(
            "POST",
            f"{API_URL}subscribe",
            body="email=new%40example.com&tags=mllm+vqa&frequency=daily&lang=ru",
            headers=origin,
        ),
        context,
    )
    assert response["statusCode"] == 200, response_body(response)
    person = deployed.store.find("new@example.com")
    assert person is not None and person.status == "pending" and person.tags == ("mllm", "vqa")

    sent = deployed.sent()
    assert [_recipient(message) for _, message in sent] == ["new@example.com"]
    text = sent[0][1].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    confirm_urls = [word for word in text.split() if word.startswith(f"{API_URL}confirm?token=")]
    assert len(confirm_urls) == 1, text
    assert verify_token(deployed.token_key, _token(confirm_urls[0]), "confirm") == person.id

    # A cross-site form post is refused.
    response = handler(
        http_event(
            "POST", f"{API_URL}subscribe", body="email=evil%40example.com", headers={"origin": "https://evil.example"}
        ),
        context,
    )
    assert response["statusCode"] == 403
    assert deployed.store.find("evil@example.com") is None

    # A mistyped address is refused in the reader's language (email-validator explains
    # in English only), and nobody is stored.
    for lang, wording, foreign in (
        ("ru", "Адрес почты выглядит неверным", "@-sign"),
        ("en", "must have an @-sign", "Адрес"),
    ):
        body = f"email=nobody.example.com&tags=mllm&lang={lang}"
        response = handler(http_event("POST", f"{API_URL}subscribe", body=body, headers=origin), context)
        assert response["statusCode"] == 400
        page = response_body(response)
        assert wording in page and foreign not in page and f'<html lang="{lang}">' in page, page
    assert deployed.store.find("nobody.example.com") is None

    forged = confirm_urls[0].replace(_token(confirm_urls[0]), _alter(_token(confirm_urls[0])))
    assert handler(http_event("GET", forged), context)["statusCode"] == 403
    assert deployed.store.find("new@example.com").status == "pending"  # type: ignore[union-attr]

    # A GET (a mail scanner, a preview) only shows the button; its POST confirms.
    for _scan in range(2):
        page = handler(http_event("GET", confirm_urls[0]), context)
        assert page["statusCode"] == 200 and 'method="post"' in response_body(page)
    assert deployed.store.find("new@example.com").status == "pending"  # type: ignore[union-attr]
    assert handler(http_event("POST", confirm_urls[0]), context)["statusCode"] == 403, "no form field"
    confirm_form = response_body(page).split('name="form" value="')[1].split('"')[0]
    response = handler(http_event("POST", confirm_urls[0], body=f"form={confirm_form}"), context)
    assert response["statusCode"] == 200
    assert deployed.store.find("new@example.com").status == "confirmed"  # type: ignore[union-attr]

    # Preferences: the page's form carries a form token; a post without it is refused.
    preferences = f"{API_URL}preferences?token={make_token(deployed.token_key, person.id, 'preferences')}"
    page = handler(http_event("GET", preferences), context)
    assert page["statusCode"] == 200
    form_token = response_body(page).split('name="form" value="')[1].split('"')[0]
    refused = handler(http_event("POST", preferences, body="tags=moe&frequency=weekly&lang=en"), context)
    assert refused["statusCode"] == 403
    saved = handler(
        http_event("POST", preferences, body=f"form={form_token}&tags=moe+rag&frequency=weekly&lang=en"), context
    )
    assert saved["statusCode"] == 200
    updated = deployed.store.get(person.id)
    assert updated is not None
    assert (updated.tags, updated.frequency, updated.lang, updated.status) == (
        ("moe", "rag"),
        "weekly",
        "en",
        "confirmed",
    )

    # The page offers the digest's tags; a tag it never published is refused in the reader's words.
    page = response_body(handler(http_event("GET", preferences), context))
    assert 'name="tag-vqa"' in page and 'name="tag-moe" value="on" checked' in page
    unknown = handler(http_event("POST", preferences, body=f"form={form_token}&tags=moe+nosuchtag"), context)
    assert unknown["statusCode"] == 400
    assert "The digest has no tag nosuchtag" in response_body(unknown)
    assert deployed.store.get(person.id) == updated

    # A confirm link confirms once; after that it says so, kindly, whatever fetched it before.
    for reused in (
        handler(http_event("GET", confirm_urls[0]), context),
        handler(http_event("POST", confirm_urls[0], body=f"form={confirm_form}"), context),
    ):
        assert reused["statusCode"] == 200
        assert "already confirmed" in response_body(reused), "in the language the reader chose since"
    assert deployed.store.get(person.id) == updated


def test_the_feed_of_several_tags_through_the_http_api(
    deployed: Cloud, monkeypatch: pytest.MonkeyPatch, atom_schema: Any
) -> None:
    monkeypatch.setenv("DIGESTPUB_FEED_SIZE", "2")
    _clear_caches()
    deployed.put_summary(_news(1, ["mllm", "vqa"], hours_ago=4))
    deployed.put_summary(_news(2, ["vqa"], hours_ago=3))
    deployed.put_summary(_news(3, ["rag"], hours_ago=2))
    deployed.put_summary(_news(4, ["MLLM", "vqa"], hours_ago=1))
    load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    handler = load_handler("subscriptions").handler
    context = FakeLambdaContext("subscriptions")

    def get(query: str, **headers: str) -> dict[str, Any]:
        return handler(http_event("GET", f"{API_URL}feed?{query}", headers=headers), context)

    held = _feed_ids(deployed, "feeds/tags/mllm/atom.xml") | _feed_ids(deployed, "feeds/tags/vqa/atom.xml")
    assert held == {entry_of(1), entry_of(2), entry_of(4)}  # a tag feed holds more than feed_size
    newest = [entry_of(4), entry_of(2)]
    for kind in ("atom", "rss", "json"):
        response = get(f"tags=vqa,mllm&format={kind}")
        assert response["statusCode"] == 200, response_body(response)
        headers = response_headers(response)
        assert headers["content-type"] == FEED_TYPES[f"feeds/tags/mllm/{FEED_FILE_NAMES[kind]}"]
        assert headers["cache-control"] == FEED_CACHE and headers["etag"].startswith('"')
        body = response_body(response)
        if kind == "json":
            ids = [item["id"] for item in json.loads(body)["items"]]
        else:
            parsed = feedparser.parse(body)
            assert not parsed.bozo, parsed.get("bozo_exception")
            ids = [entry.id for entry in parsed.entries]
        assert ids == newest, kind
        if kind == "atom":
            assert atom_schema.validate(etree.fromstring(body.encode())), atom_schema.error_log

    atom = get("tags=mllm&tags=vqa&format=atom")
    tag = response_headers(atom)["etag"]
    not_modified = get("tags=vqa,mllm&format=atom", **{"if-none-match": tag})
    assert not_modified["statusCode"] == 304 and response_body(not_modified) == ""
    assert response_headers(not_modified)["cache-control"] == FEED_CACHE

    unknown = get("tags=mllm,nope&format=atom")
    assert unknown["statusCode"] == 400 and "nope" in response_body(unknown)
    assert response_headers(unknown)["cache-control"] == "no-store"
    assert get("tags=mllm&format=xml")["statusCode"] == 400


def test_a_lost_state_prefix_does_not_make_the_history_news_again_in_the_cloud(deployed_with_ssm: Cloud) -> None:
    """The newsletter's memory is in the DynamoDB ledger, not in the state on S3."""
    cloud_ = deployed_with_ssm
    for number in (1, 2, 3):
        cloud_.put_summary(_news(number, ["mllm"], hours_ago=4 - number))
    load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    cloud_.subscribe("reader@example.com", "")
    today = datetime.now(UTC).date()
    plan = load_handler("plan_newsletter").handler
    first = plan(scheduler_event(frequency="daily", date=today.isoformat()), FakeLambdaContext("plan"))
    assert first["summaries"] == 3

    s3 = boto3.client("s3")
    for item in s3.list_objects_v2(Bucket=cloud_.bucket, Prefix="state/").get("Contents", []):
        s3.delete_object(Bucket=cloud_.bucket, Key=item["Key"])
    time.sleep(1.1)  # published_at has whole seconds: this one is after the first issue's cut-off
    cloud_.put_summary(_news(4, ["mllm"], hours_ago=0))
    load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    _clear_caches()
    later = (today + timedelta(days=1)).isoformat()
    second = load_handler("plan_newsletter").handler(
        scheduler_event(frequency="daily", date=later), FakeLambdaContext("plan")
    )

    assert second["summaries"] == 1, "only the summary published after the last issue"


def test_the_ssm_parameter_holds_a_key_ring_newest_first(deployed_with_ssm: Cloud) -> None:
    """Rotated in the parameter: links signed with the older key work until it is taken out."""
    person = deployed_with_ssm.subscribe("ring@example.com", "")
    parameter = os.environ["DIGESTPUB_TOKEN_KEY_PARAMETER"]
    newest = "the-newest-ssm-key-0123456789"
    old_link = f"{API_URL}preferences?token={make_token(deployed_with_ssm.token_key, person.id, 'preferences')}"
    new_link = f"{API_URL}preferences?token={make_token(newest.encode(), person.id, 'preferences')}"
    context = FakeLambdaContext("subscriptions")

    def answer(url: str, value: str) -> int:
        boto3.client("ssm").put_parameter(Name=parameter, Value=value, Type="SecureString", Overwrite=True)
        _clear_caches()
        return int(load_handler("subscriptions").handler(http_event("GET", url), context)["statusCode"])

    assert answer(new_link, SSM_TOKEN_KEY) == 403
    assert answer(old_link, f"{newest}\n{SSM_TOKEN_KEY}") == 200
    assert answer(new_link, f"{newest}, {SSM_TOKEN_KEY}") == 200
    page = load_handler("subscriptions").handler(http_event("GET", new_link), context)
    form = response_body(page).split('name="form" value="')[1].split('"')[0]
    assert form == form_token(newest.encode(), _token(new_link)), "the newest key signs what is made now"
    assert answer(old_link, newest) == 403, "retired"
    assert answer(new_link, newest) == 200


_BOUNDARY = "---FormBoundaryjWmhtjORrn"
ONE_CLICK_BODIES = {
    # What Gmail and most receivers send.
    "form-urlencoded": ("application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"),
    # RFC 8058, Appendix A: the same key/value pair as multipart/form-data.
    "multipart": (
        f"multipart/form-data; boundary={_BOUNDARY}",
        f"--{_BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n'
        "\r\n"
        "One-Click\r\n"
        f"--{_BOUNDARY}--\r\n",
    ),
}


@pytest.mark.parametrize("base64_body", [False, True], ids=["text-body", "base64-body"])
@pytest.mark.parametrize("encoding", sorted(ONE_CLICK_BODIES))
def test_one_click_unsubscribe_accepts_both_rfc8058_encodings(
    deployed: Cloud, encoding: str, base64_body: bool
) -> None:
    """RFC 8058 §3.1: the POST carries ``List-Unsubscribe=One-Click`` as either form encoding;
    API Gateway and Function URLs may hand the body over base64-encoded."""
    person = deployed.subscribe("reader@example.com", "")
    url = f"{API_URL}unsubscribe?token={make_token(deployed.token_key, person.id, 'unsubscribe')}"
    content_type, body = ONE_CLICK_BODIES[encoding]
    event = http_event("POST", url, body=body, headers={"content-type": content_type})
    if base64_body:
        event["body"] = base64.b64encode(body.encode()).decode()
        event["isBase64Encoded"] = True

    response = load_handler("subscriptions").handler(event, FakeLambdaContext("subscriptions"))

    shown = response_body(response).partition("<main>")[2][:200] or response_body(response)[:200]
    assert response["statusCode"] in (200, 202), f"{response['statusCode']}: {shown}"
    assert "location" not in response_headers(response)
    assert deployed.status(person) == ("unsubscribed", 0)


def _base64_event(method: str, url: str, body: bytes, content_type: str) -> dict[str, Any]:
    event = http_event(method, url, body="x", headers={"content-type": content_type})
    event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


CLOUD_MALFORMED = {
    "json list": (http_event("POST", f"{API_URL}subscribe", body="[1,2,3]"), "application/json", 400),
    "json null": (http_event("POST", f"{API_URL}subscribe", body="null"), "application/json", 400),
    "json nested": (http_event("POST", f"{API_URL}subscribe", body="[" * 30_000), "application/json", 400),
    "body over 64 KB": (http_event("POST", f"{API_URL}subscribe", body="tags=" + "a+" * 40_000), None, 413),
    "not base64": (_base64_event("POST", f"{API_URL}subscribe", b"", "application/json") | {"body": "!!"}, None, 400),
    "not utf-8": (
        _base64_event("POST", f"{API_URL}subscribe", b"email=\xff", "application/x-www-form-urlencoded"),
        None,
        400,
    ),
    "22 tags": (
        http_event(
            "POST", f"{API_URL}subscribe", body="email=many%40example.com&tags=" + "+".join(map(str, range(22)))
        ),
        None,
        400,
    ),
    "query not utf-8": (http_event("GET", f"{API_URL}confirm?token=%ff"), None, 400),
    "path with NUL": (http_event("GET", f"{API_URL}%00"), None, 400),
    "unknown path": (http_event("GET", f"{API_URL}nothing-here"), None, 404),
    "wrong method": (http_event("GET", f"{API_URL}subscribe"), None, 405),
}


@pytest.mark.parametrize("name", list(CLOUD_MALFORMED))
def test_the_cloud_function_refuses_malformed_requests_with_a_page(deployed: Cloud, name: str) -> None:
    event, content_type, expected = CLOUD_MALFORMED[name]
    if content_type:
        event["headers"]["content-type"] = content_type
    response = load_handler("subscriptions").handler(event, FakeLambdaContext("subscriptions"))
    assert response["statusCode"] == expected, response_body(response)[:300]
    assert "<html" in response_body(response)
    assert deployed.store.find("many@example.com") is None


# --- the mail service refusing the sender -----------------------------------------------------


def test_send_batch_returns_every_batch_when_ses_refuses_the_sender(deployed: Cloud) -> None:
    deployed.put_summary(_news(1, ["mllm"], hours_ago=2))
    load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    people = [deployed.subscribe(f"reader{number:02d}@example.com", "") for number in range(60)]
    planned = load_handler("plan_newsletter").handler(scheduler_event(frequency="daily"), FakeLambdaContext("plan"))
    messages = deployed.receive_all()
    assert len(messages) == 2
    event = sqs_event_from_messages(messages, deployed.queue_arn)
    boto3.client("sesv2").delete_email_identity(EmailIdentity=FROM_DOMAIN)

    result = load_handler("send_batch").handler(event, FakeLambdaContext("send-batch"))

    # Both batches go back to the queue: the first stopped at its first message, the second was not tried.
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in event["Records"]]}
    assert deployed.sent() == []
    assert {deployed.status(person) for person in people} == {("confirmed", 0)}, "SES never bounces synchronously"
    assert DynamoLedger(deployed.ledger_table).counts(planned["issue"]) == {}

    # Once the sender is verified, the redelivered batches send everyone exactly once.
    boto3.client("sesv2").create_email_identity(EmailIdentity=FROM_DOMAIN)
    assert load_handler("send_batch").handler(event, FakeLambdaContext("send-batch")) == {"batchItemFailures": []}
    assert Counter(_recipient(message) for _, message in deployed.sent()) == {person.email: 1 for person in people}


def test_the_functions_read_the_toml_file_named_by_digestpub_config(
    deployed: Cloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    config = tmp_path / "digestpub.toml"
    config.write_text('site_title = "From the file"\noutage_limit = 5\nsend_rate = 3\n', encoding="utf-8")
    monkeypatch.setenv("DIGESTPUB_CONFIG", str(config))
    monkeypatch.delenv("DIGESTPUB_SEND_RATE")
    cloud.settings.cache_clear()
    try:
        settings = cloud.settings()
        assert (settings.site_title, settings.outage_limit, settings.send_rate) == ("From the file", 5, 3)
        assert settings.subscribers == f"dynamodb://{deployed.subscribers_table}", "variables still beat the file"
    finally:
        cloud.settings.cache_clear()


def test_subscribe_in_the_cloud_answers_in_about_the_same_time(deployed: Cloud) -> None:
    """The function sends before answering: the answer's floor covers the send, so a new
    address (a send to SES) and a confirmed one (none) take about as long."""
    import statistics
    import time

    deployed.put_summary(_news(1, ["mllm"], hours_ago=1))
    load_handler("publish_feeds").handler(scheduler_event(), FakeLambdaContext("publish-feeds"))
    handler = load_handler("subscriptions").handler
    context = FakeLambdaContext("subscriptions")
    origin = {"origin": BASE_URL.rstrip("/")}
    confirmed = deployed.subscribe("already@example.com", "mllm")
    timings: dict[str, list[float]] = {"new": [], "confirmed": []}
    for number in range(5):
        for case, address in (("new", f"new{number}@example.com"), ("confirmed", confirmed.email)):
            started = time.perf_counter()
            body = f"email={address.replace('@', '%40')}&tags=mllm"
            response = handler(http_event("POST", f"{API_URL}subscribe", body=body, headers=origin), context)
            timings[case].append(time.perf_counter() - started)
            assert response["statusCode"] == 200
    assert len(deployed.sent()) == 5, "one confirmation per new address"
    medians = {case: statistics.median(values) for case, values in timings.items()}
    assert min(medians.values()) >= 0.3, medians
    assert max(medians.values()) <= 1.5 * min(medians.values()), medians
