"""Wiring for the cloud functions: settings from the environment, secrets from SSM.

The handlers in ``functions/`` stay a few lines each: they parse the event and
call what is built here. Everything is created once per warm container.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from digestpub import wiring
from digestpub.adapters import open_store
from digestpub.newsletter.run import NewsletterContext
from digestpub.publish import PublishOptions
from digestpub.settings import Settings
from digestpub.subscriptions import Subscriptions
from digestpub.tokens import key_from_setting

TOKEN_KEY_PARAMETER = "DIGESTPUB_TOKEN_KEY_PARAMETER"  # noqa: S105 - a variable name, not a secret


@cache
def settings() -> Settings:
    """From ``DIGESTPUB_*`` variables over the TOML file that ``DIGESTPUB_CONFIG`` names, as the CLI reads them."""
    config = os.environ.get("DIGESTPUB_CONFIG")
    return Settings.load(Path(config) if config else None)


@cache
def token_key() -> bytes:
    """The link-token key: an SSM SecureString named by the environment, else the setting."""
    name = os.environ.get(TOKEN_KEY_PARAMETER)
    configured = settings().token_key
    secret = configured.get_secret_value() if configured is not None else None
    if name:
        from aws_lambda_powertools.utilities import parameters

        secret = str(parameters.get_parameter(name, decrypt=True, max_age=300))
    return key_from_setting(secret, open_store(settings().state))


def publish_options(keys: Iterable[str] = ()) -> PublishOptions:
    # One process: the hourly runs are small, and a Lambda function's memory is
    # sized for one process; a cold start or rebuild is better run with the CLI.
    return wiring.publish_options(settings(), workers=1, keys=keys)


@cache
def newsletter() -> NewsletterContext:
    return wiring.newsletter_context(settings(), token_key())


@cache
def subscriptions() -> Subscriptions:
    return wiring.subscriptions(settings(), newsletter())
