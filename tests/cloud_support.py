"""Building blocks of the cloud handler tests: Lambda contexts, AWS event shapes, handler loading.

Events are built as AWS documents them, so a handler sees what Lambda would hand it:

- EventBridge Scheduler invokes the function with the ``input`` configured on the schedule;
- an SQS event source hands a ``Records`` list of SQS messages;
- SNS hands ``Records`` whose ``Sns.Message`` is the published text (here an SES
  configuration-set event, as JSON);
- an HTTP API (payload format 2.0) hands one request.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import importlib.util
import json
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import requests

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "functions"
REGION = "us-east-1"
ACCOUNT = "123456789012"


class FakeLambdaContext:
    """What powertools reads from a Lambda context object."""

    def __init__(self, function_name: str = "digestpub-test") -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/11/25/[$LATEST]" + uuid.uuid4().hex
        self._deadline = time.monotonic() + 300

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(name: str) -> ModuleType:
    """A fresh instance of ``functions/<name>.py``, as a cold start would import it.

    The module is named ``functions.<name>`` (powertools' idempotency keys use it) but
    is not put into ``sys.modules``: each call is a new container.
    """
    path = FUNCTIONS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"functions.{name}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- EventBridge Scheduler -------------------------------------------------------------


def scheduler_event(**configured_input: Any) -> dict[str, Any]:
    """EventBridge Scheduler's universal Lambda target passes the schedule's ``input`` as the event."""
    return dict(configured_input)


# --- SQS -----------------------------------------------------------------------------------


def _iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def sqs_record(body: str, queue_arn: str, *, message_id: str | None = None, receive_count: int = 1) -> dict[str, Any]:
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": base64.b64encode(uuid.uuid4().bytes * 3).decode(),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


def sqs_event_from_messages(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS poller builds from messages that ``receive_message`` returned."""
    records = []
    for message in messages:
        record = sqs_record(message["Body"], queue_arn, message_id=message["MessageId"])
        record["receiptHandle"] = message["ReceiptHandle"]
        record["md5OfBody"] = message["MD5OfBody"]
        record["attributes"].update(message.get("Attributes") or {})
        records.append(record)
    return sqs_event(records)


def s3_object_event_via_eventbridge(bucket: str, key: str, size: int = 512, *, deleted: bool = False) -> str:
    """The body SQS holds for an S3 "Object Created" (or "Object Deleted") event routed through EventBridge.

    The key is URL-encoded, as in S3's other notifications (Powertools decodes it).
    """
    if deleted:
        detail_type, reason = "Object Deleted", "DeleteObject"
        found: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": "0062E99A88DC407461"}
        extra = {"deletion-type": "Permanently Deleted"}
    else:
        detail_type, reason = "Object Created", "PutObject"
        found = {
            "key": quote_plus(key, safe="/"),
            "size": size,
            "etag": uuid.uuid4().hex,
            "sequencer": "0062E99A88DC407460",
        }
        extra = {}
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": ACCOUNT,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket},
                "object": found,
                "request-id": uuid.uuid4().hex[:16].upper(),
                "requester": ACCOUNT,
                "source-ip-address": "198.51.100.7",
                "reason": reason,
                **extra,
            },
        }
    )


def s3_event_notification(bucket: str, key: str, size: int = 512) -> str:
    """The body SQS holds for a classic S3 event notification (``s3:ObjectCreated:Put``); the key URL-encoded."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": REGION,
                    "eventTime": _iso(),
                    "eventName": "ObjectCreated:Put",
                    "userIdentity": {"principalId": "AWS:AIDAINPONIXQXHT3IKHL2"},
                    "requestParameters": {"sourceIPAddress": "198.51.100.7"},
                    "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xR"},
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "summaries",
                        "bucket": {
                            "name": bucket,
                            "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                            "arn": f"arn:aws:s3:::{bucket}",
                        },
                        "object": {
                            "key": quote_plus(key, safe="/"),
                            "size": size,
                            "eTag": uuid.uuid4().hex,
                            "sequencer": "0A1B2C3D4E5F678901",
                        },
                    },
                }
            ]
        }
    )


# --- SNS and SES events ---------------------------------------------------------------------


def sns_event(message: dict[str, Any] | str, topic: str = "digestpub-ses-events") -> dict[str, Any]:
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic}"
    text = message if isinstance(message, str) else json.dumps(message)
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic_arn,
                    "Subject": None,
                    "Message": text,
                    "Timestamp": _iso(),
                    "SignatureVersion": "1",
                    "Signature": base64.b64encode(b"not-a-real-signature" * 8).decode(),
                    "SigningCertUrl": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-example.pem",
                    "UnsubscribeUrl": (
                        f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic_arn}:x"
                    ),
                    "MessageAttributes": {},
                },
            }
        ]
    }


def _ses_mail(recipient: str, sender: str) -> dict[str, Any]:
    message_id = f"0100018c{uuid.uuid4().hex}-000000"
    return {
        "timestamp": _iso(),
        "source": sender,
        "sourceArn": f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{sender.rpartition('@')[2]}",
        "sendingAccountId": ACCOUNT,
        "messageId": message_id,
        "destination": [recipient],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": sender},
            {"name": "To", "value": recipient},
            {"name": "Subject", "value": "Digest"},
        ],
        "commonHeaders": {"from": [sender], "to": [recipient], "messageId": message_id, "subject": "Digest"},
        "tags": {"ses:configuration-set": ["digestpub"], "ses:source-ip": ["198.51.100.7"]},
    }


def ses_bounce(recipient: str, bounce_type: str = "Permanent", sender: str = "digest@digest.example") -> dict[str, Any]:
    """An SES configuration-set "Bounce" event."""
    sub_type = "General" if bounce_type == "Permanent" else "MailboxFull"
    status = "5.1.1" if bounce_type == "Permanent" else "4.2.2"
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [
                {
                    "emailAddress": recipient,
                    "action": "failed",
                    "status": status,
                    "diagnosticCode": f"smtp; {status[0]}50 {status} mailbox problem",
                }
            ],
            "timestamp": _iso(),
            "feedbackId": f"0100018c{uuid.uuid4().hex}-000000",
            "reportingMTA": "dsn; e226-55.smtp-out.us-east-1.amazonses.com",
        },
        "mail": _ses_mail(recipient, sender),
    }


def ses_complaint(recipient: str, sender: str = "digest@digest.example") -> dict[str, Any]:
    """An SES configuration-set "Complaint" event."""
    return {
        "eventType": "Complaint",
        "complaint": {
            "feedbackId": f"0100018c{uuid.uuid4().hex}-000000",
            "complaintSubType": None,
            "complainedRecipients": [{"emailAddress": recipient}],
            "timestamp": _iso(),
            "userAgent": "Yahoo!-Mail-Feedback/2.0",
            "complaintFeedbackType": "abuse",
            "arrivalDate": _iso(),
        },
        "mail": _ses_mail(recipient, sender),
    }


# --- HTTP API (payload format 2.0) ---------------------------------------------------------


def http_event(
    method: str,
    url: str,
    *,
    body: str = "",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API v2 event for ``method url`` (only the URL's path and query are used)."""
    parts = urlsplit(url)
    now = time.time()
    all_headers = {
        "accept": "text/html,application/xhtml+xml",
        "host": parts.netloc or "api.digest.example",
        "user-agent": "Mozilla/5.0 (test)",
        "x-forwarded-for": "198.51.100.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body:
        all_headers["content-type"] = "application/x-www-form-urlencoded"
        all_headers["content-length"] = str(len(body.encode()))
    all_headers.update({name.lower(): value for name, value in (headers or {}).items()})
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": all_headers,
        "queryStringParameters": query or None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abcdef1234",
            "domainName": all_headers["host"],
            "domainPrefix": all_headers["host"].split(".")[0],
            "http": {
                "method": method,
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": all_headers["user-agent"],
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def response_headers(response: dict[str, Any]) -> dict[str, str]:
    """A handler response's headers, names lowercased (single and multi-value forms)."""
    found = {name.lower(): str(value) for name, value in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        found[name.lower()] = ", ".join(values)
    return found


def response_body(response: dict[str, Any]) -> str:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        return base64.b64decode(body).decode("utf-8")
    return str(body)


# --- moto ----------------------------------------------------------------------------------


def parse_message(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def ses_raw_messages(endpoint: str) -> list[tuple[list[str], EmailMessage]]:
    """Every raw message moto's SES accepted: (destinations, parsed message)."""
    data = requests.get(f"{endpoint}/moto-api/data.json", timeout=10).json()
    return [
        (list(record["destinations"]), parse_message(record["raw_data"].encode()))
        for record in data.get("ses", {}).get("RawMessage", [])
    ]
