"""SQS as a work queue: JSON messages sent ten at a time, failures retried."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import islice
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from digestpub.errors import StorageError

_BATCH = 10
_ATTEMPTS = 5


class SqsQueue:
    def __init__(self, url: str, client: Any = None) -> None:
        if not url:
            raise StorageError("no queue URL is set (DIGESTPUB_SEND_QUEUE_URL)")
        self.url = url
        self.client = client or boto3.client("sqs")

    def send_all(self, messages: Iterator[dict[str, object]]) -> int:
        sent = 0
        while chunk := list(islice(messages, _BATCH)):
            entries = [{"Id": str(number), "MessageBody": json.dumps(body)} for number, body in enumerate(chunk)]
            for attempt in range(_ATTEMPTS):
                try:
                    response = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
                except (ClientError, BotoCoreError) as error:
                    if attempt == _ATTEMPTS - 1:
                        raise StorageError(f"cannot send to {self.url}: {error}") from error
                    time.sleep(0.2 * 2**attempt)
                    continue
                failed = {item["Id"] for item in response.get("Failed", [])}
                sent += len(entries) - len(failed)
                entries = [entry for entry in entries if entry["Id"] in failed]
                if not entries:
                    break
                time.sleep(0.2 * 2**attempt)
            else:
                raise StorageError(f"{len(entries)} message(s) could not be sent to {self.url}")
        return sent
