"""Subscription endpoints (HTTP API v2 or a Function URL): the routes of ``digestpub.subscriptions.endpoints``."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from digestpub.app import cloud
from digestpub.subscriptions.endpoints import Endpoints

logger = Logger()
endpoints = Endpoints(cloud.subscriptions, cloud.settings().site(), cloud.combined_feeds)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return endpoints.handle(event)
