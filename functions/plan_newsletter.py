"""Plan a newsletter issue (daily and weekly schedules): build it, queue its recipients."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from digestpub.adapters.sqs_queue import SqsQueue
from digestpub.app import cloud
from digestpub.newsletter.fanout import recipient_batches
from digestpub.newsletter.run import build_issue

logger = Logger()
metrics = Metrics()
persistence = DynamoDBPersistenceLayer(table_name=os.environ.get("DIGESTPUB_IDEMPOTENCY_TABLE", "idempotency"))
config = IdempotencyConfig(expires_after_seconds=7 * 24 * 3600)


@idempotent_function(  # type: ignore[untyped-decorator]
    data_keyword_argument="request", persistence_store=persistence, config=config
)
def plan(request: dict[str, str]) -> dict[str, Any]:
    """Idempotent per issue: a retried schedule does not queue everyone again."""
    context = cloud.newsletter()
    day = datetime.fromisoformat(request["date"]).date()
    issue, _renderer, _factory = build_issue(context, request["frequency"], day)  # type: ignore[arg-type]
    queued = SqsQueue(cloud.settings().send_queue_url).send_all(recipient_batches(issue, context.subscribers))
    return {"issue": issue.id, "summaries": len(issue.summaries), "batches": queued}


@logger.inject_lambda_context(log_event=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    frequency = event.get("frequency", "daily")
    if frequency not in ("daily", "weekly"):
        raise ValueError(f"frequency must be daily or weekly, not {frequency!r}")
    day = event.get("date") or datetime.now(UTC).date().isoformat()
    config.register_lambda_context(context)
    result: dict[str, Any] = plan(request={"frequency": frequency, "date": day})
    metrics.add_metric("RecipientBatchesQueued", MetricUnit.Count, result["batches"])
    logger.info("issue planned", extra=result)
    return result
