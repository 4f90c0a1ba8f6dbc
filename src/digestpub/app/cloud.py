"""Wiring for the cloud functions: settings from the environment, secrets from SSM.

The handlers in ``functions/`` stay a few lines each: they parse the event and
call what is built here. Everything is created once per warm container.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from digestpub.app import wiring
from digestpub.newsletter.run import NewsletterContext
from digestpub.publish import PublishOptions
from digestpub.settings import Settings
from digestpub.subscriptions.use_cases import Subscriptions

if TYPE_CHECKING:
    from digestpub.publish.combined import CombinedFeeds

TOKEN_KEY_PARAMETER = "DIGESTPUB_TOKEN_KEY_PARAMETER"  # noqa: S105 - a variable name, not a secret


@cache
def settings() -> Settings:
    """From ``DIGESTPUB_*`` variables over the TOML file that ``DIGESTPUB_CONFIG`` names, as the CLI reads them."""
    config = os.environ.get("DIGESTPUB_CONFIG")
    return Settings.load(Path(config) if config else None)


def _secret_parameter() -> str | None:
    """The token keys from the SSM SecureString the environment names (several: newest first)."""
    name = os.environ.get(TOKEN_KEY_PARAMETER)
    if not name:
        return None
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(name, decrypt=True, max_age=300))


def publish_options(keys: Iterable[str] = ()) -> PublishOptions:
    # One process: the hourly runs are small, and a Lambda function's memory is
    # sized for one process; a cold start or rebuild is better run with the CLI.
    return wiring.publish_options(settings(), workers=1, keys=keys)


@cache
def newsletter() -> NewsletterContext:
    return wiring.newsletter_context(settings(), _secret_parameter())


@cache
def subscriptions() -> Subscriptions:
    return wiring.subscriptions(settings(), newsletter())


@cache
def combined_feeds() -> CombinedFeeds:
    return wiring.combined_feeds(settings())
