"""Send one batch of an issue's recipients (SQS consumer, ReportBatchItemFailures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from digestpub import cloud
from digestpub.newsletter.fanout import send_recipient_batch

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    settings = cloud.settings()
    report = send_recipient_batch(
        cloud.newsletter(), record.json_body, send_rate=settings.send_rate / settings.send_concurrency
    )
    metrics.add_metric("EmailsSent", MetricUnit.Count, report.sent)
    metrics.add_metric("EmailsFailed", MetricUnit.Count, report.failed + report.rejected)
    logger.info(report.summary_line())
    if report.failed:
        # Transient failures were released in the ledger: a redelivery sends only those.
        raise RuntimeError(f"{report.failed} message(s) of this batch failed for now")


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
