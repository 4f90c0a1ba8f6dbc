"""Publish feeds: hourly (EventBridge Scheduler) and on new summaries (S3 → EventBridge → SQS)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from digestpub import cloud
from digestpub.adapters import open_store
from digestpub.errors import StateLocked
from digestpub.publish import publish
from digestpub.wiring import hub_notifier

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Every trigger means the same thing: read what is new. One run covers a
    # whole batch of notifications, so a batch succeeds or fails as one.
    records = event.get("Records") or []
    settings = cloud.settings()
    try:
        report = publish(
            open_store(settings.source, required_as="source"),
            open_store(settings.dest),
            open_store(settings.state),
            settings.site(),
            cloud.publish_options(),
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
    metrics.add_metric("SummariesSkipped", MetricUnit.Count, report.skipped)
    # Still skipped, by this run or earlier ones: the alarm stays on until the upstream fixes them.
    metrics.add_metric("InputsUnfixed", MetricUnit.Count, len(report.unfixed))
    metrics.add_metric("FeedsWritten", MetricUnit.Count, report.files_written)
    metrics.add_metric("HubNotificationsFailed", MetricUnit.Count, len(report.hub_failures))
    logger.info(report.summary_line(), extra={"problems": [problem.model_dump() for problem in report.problems]})
    return {"batchItemFailures": []} if records else {"summary": report.summary_line()}
