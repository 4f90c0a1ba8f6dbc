"""SES bounce and complaint events (configuration set → SNS): suppress bad addresses."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from digestpub.app import cloud
from digestpub.subscriptions.use_cases import apply_ses_notification

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: LambdaContext) -> dict[str, int]:
    changed = 0
    for record in event.records:
        outcome = apply_ses_notification(cloud.subscriptions(), record.sns.message)
        for kind, count in outcome.items():
            metrics.add_metric(kind, MetricUnit.Count, count)
            changed += count
    return {"changed": changed}
