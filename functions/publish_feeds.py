"""Publish feeds: hourly (EventBridge Scheduler) and on changed summaries (S3 → EventBridge → SQS)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, S3EventBridgeNotificationEvent, SQSEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from digestpub.app import cloud
from digestpub.app.locations import open_store
from digestpub.app.wiring import hub_notifier
from digestpub.errors import StateLocked
from digestpub.publish import publish
from digestpub.publish.listing import named_keys, source_keys

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A scheduled run reads what is new; a batch of S3 events also reads (or finds gone)
    # exactly the objects they name, whatever their day. One run covers the whole
    # batch, so a batch succeeds or fails as one.
    records = event.get("Records") or []
    settings = cloud.settings()
    keys = _event_keys(SQSEvent(event), settings.source) if records else []
    try:
        report = publish(
            open_store(settings.source, required_as="source"),
            open_store(settings.dest),
            open_store(settings.state),
            settings.site(),
            cloud.publish_options(keys),
            notifier=hub_notifier(settings),
        )
    except StateLocked:
        if records:  # another run is at it: let SQS deliver these again later
            logger.info("state locked by another run; batch returned to the queue")
            return {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in records]}
        raise
    metrics.add_metric("SummariesPublished", MetricUnit.Count, report.summaries_new + report.summaries_updated)
    # Per function, so that each stack's alarm (infra/alarms.yml) sees only its own runs.
    metrics.add_dimension("function_name", context.function_name)
    metrics.add_metric("SummariesDeleted", MetricUnit.Count, report.summaries_deleted)
    metrics.add_metric("SummariesSkipped", MetricUnit.Count, report.skipped)
    # Still skipped, by this run or earlier ones: the alarm stays on until the upstream fixes them.
    metrics.add_metric("InputsUnfixed", MetricUnit.Count, len(report.skipped_inputs))
    metrics.add_metric("FeedsWritten", MetricUnit.Count, report.files_written)
    metrics.add_metric("HubNotificationsFailed", MetricUnit.Count, len(report.hub_failures))
    logger.info(report.summary_line(), extra={"problems": [problem.model_dump() for problem in report.problems]})
    return {"batchItemFailures": []} if records else {"summary": report.summary_line()}


def _event_keys(event: SQSEvent, source: str) -> list[str]:
    """The summary keys, relative to ``source``, of the objects the batch's S3 events name.

    Anything else (another bucket or prefix, a key that is not a summary's, a
    message that is no S3 event) is logged and left out: the run still reads
    what is new.
    """
    located = [found for record in event.records for found in _objects(record)]
    inside, outside = source_keys(located, source)
    for where in outside:
        logger.info("event ignored: %s is outside the source %s", where, source)
    keys, others = named_keys(inside)
    for key in others:
        logger.info("event ignored: %s is not a summary key (YYYY/MM/DD/NAME.json or .jsonl)", key)
    return keys


def _objects(record: SQSRecord) -> list[tuple[str, str]]:
    """``(bucket, key)`` of the objects an SQS message's S3 event names: an EventBridge event, or a
    classic S3 notification. Both carry the key URL-encoded (Powertools decodes the former)."""
    try:
        body = json.loads(record.body)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("source") == "aws.s3" and isinstance(body.get("detail"), dict):
        detail = S3EventBridgeNotificationEvent(body).detail
        return [(detail.bucket.name, detail.object.key)]
    if isinstance(body, dict) and isinstance(body.get("Records"), list):
        return [
            (found.s3.bucket.name, unquote_plus(found.s3.get_object.key))
            for found in S3Event(body).records
            if found.event_source == "aws:s3"
        ]
    logger.info("message %s ignored: it is not an S3 event", record.message_id)
    return []
