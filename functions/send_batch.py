"""Send one batch of an issue's recipients (SQS consumer, ReportBatchItemFailures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from digestpub.app import cloud, wiring
from digestpub.newsletter.fanout import send_recipient_batch

logger = Logger()
metrics = Metrics()
# A mail service that refuses the sender fails every batch alike: report them all as
# failures (back to the queue, towards the DLQ) rather than raise, which Lambda would
# count as the function itself failing.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
stopped: list[str] = []
"""Why the mail service stopped a batch of this invocation: the batches after it go back untried."""


def record_handler(record: SQSRecord) -> None:
    if stopped:
        raise RuntimeError(f"not tried: an earlier batch of this invocation stopped: {stopped[0]}")
    settings = cloud.settings()
    options = wiring.send_options(settings, senders=settings.send_concurrency)
    report = send_recipient_batch(cloud.newsletter(), record.json_body, options)
    metrics.add_metric("EmailsSent", MetricUnit.Count, report.sent)
    metrics.add_metric("EmailsBounced", MetricUnit.Count, report.bounced)
    metrics.add_metric("EmailsFailed", MetricUnit.Count, report.left)
    # Not failures: their claims stay, so a redelivered batch does not send them twice.
    metrics.add_metric("EmailsUnknown", MetricUnit.Count, len(report.unknown))
    logger.info(report.summary_line())
    if report.stopped:
        stopped.append(report.stopped)
        raise RuntimeError(f"the mail service stopped this batch: {report.stopped}")
    if report.deferred:
        # Their claims were freed in the ledger: a redelivery of the batch sends only those.
        raise RuntimeError(f"{report.deferred} message(s) of this batch were deferred")


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    stopped.clear()
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
