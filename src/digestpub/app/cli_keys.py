"""``digestpub keys rotate|retire``: the ring of token keys that sign the links in emails.

Mounted by the main program like ``subscribers``. Exit codes: 0 done, 1 storage
failed, 2 bad settings (among them a ``token_key`` set in the settings, which
is changed where it is set).
"""

from __future__ import annotations

from typing import Annotated

import typer

from digestpub.app.console import ConfigOption, fail, settings_for
from digestpub.app.locations import open_key_home, open_store
from digestpub.errors import ConfigError, DigestpubError
from digestpub.subscriptions.keyring import KeyHome, retire, rotate

keys_app = typer.Typer(
    help="Rotate and retire the token keys that sign unsubscribe, preference and confirmation links.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _home(context: typer.Context, config: ConfigOption) -> KeyHome:

    settings = settings_for(context, config)
    try:
        if settings.token_key is not None:
            raise ConfigError(
                "token_key is set (a flag, DIGESTPUB_TOKEN_KEY or the TOML file; in the cloud, the SSM parameter): "
                "change the keys there. Keys are separated by spaces or commas, newest first: put a new key first "
                "to rotate, and remove the old ones to retire them"
            )
        return open_key_home(settings.subscribers, open_store(settings.state))
    except DigestpubError as error:
        fail(error)


@keys_app.command("rotate")
def rotate_command(context: typer.Context, config: ConfigOption = None) -> None:
    """Sign new links with a new key; links signed with the older keys keep working until they are retired."""
    home = _home(context, config)
    try:
        ring = rotate(home)
    except DigestpubError as error:
        fail(error)
    typer.echo(
        f"new token key made; {len(ring)} key(s) in {home.where}: new links are signed with the new key, "
        "links signed with older keys keep working until `digestpub keys retire`"
    )


@keys_app.command("retire")
def retire_command(
    context: typer.Context,
    keep: Annotated[int, typer.Option(help="How many of the newest keys to keep.")] = 1,
    config: ConfigOption = None,
) -> None:
    """Retire all but the newest key(s): links signed with a retired key answer 403 from then on."""
    home = _home(context, config)
    try:
        ring, retired = retire(home, keep)
    except DigestpubError as error:
        fail(error)
    typer.echo(
        f"retired {retired} key(s); {len(ring)} left in {home.where}: links signed with a retired key now answer 403"
    )
