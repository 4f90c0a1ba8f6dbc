"""``digestpub subscribers import|export|list|delete``: the subscriber list as CSV and as a table.

Mounted by the main program with ``app.add_typer(subscribers_app, name="subscribers")``.
Exit codes: 0 done (an import also when some rows were left out), 1 storage
failed, 2 bad settings, an input file that cannot be read, or a ``delete`` of
something that is not an address.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from digestpub.adapters.outbox_mailer import forget_recipient
from digestpub.app.console import ConfigOption, reader_may_leave, settings_for
from digestpub.app.locations import open_key_home, open_ledger, open_store, open_subscribers
from digestpub.errors import ConfigError, StorageError
from digestpub.model import Subscriber
from digestpub.ports import SubscriberStore
from digestpub.settings import Settings
from digestpub.state.catalog import published_tags
from digestpub.subscriptions.keyring import load_ring
from digestpub.subscriptions.subscribers import (
    FREQUENCIES,
    STATUSES,
    InvalidAddress,
    erase_address,
    export_csv,
    import_csv,
    normalise_email,
)
from digestpub.text import counted

EXIT_STORAGE = 1
EXIT_INPUT = 2

subscribers_app = typer.Typer(
    help="Import, export and list newsletter subscribers (CSV: email,tags,frequency,lang,status).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True, markup=False, highlight=False).print(f"error: {message}")
    return typer.Exit(code)


def _store(settings: Settings) -> SubscriberStore:
    try:
        return open_subscribers(settings.subscribers)
    except ConfigError as error:
        raise _fail(str(error), EXIT_INPUT) from None


@subscribers_app.command("import")
def import_command(
    context: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE.csv", help="UTF-8 CSV with a header line.")],
    config: ConfigOption = None,
) -> None:
    """Add new subscribers and update known ones (by address, in any case); bad rows are listed
    and skipped. Unsubscribed, bounced and complained subscribers are kept as they are."""
    settings = settings_for(context, config)
    store = _store(settings)
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise _fail(f"cannot read {file}: {error.strerror or error}", EXIT_INPUT) from None
    except UnicodeDecodeError as error:
        raise _fail(f"{file} is not UTF-8 text (byte {error.start})", EXIT_INPUT) from None
    try:
        state = open_store(settings.state)
        if settings.token_key is None and next(iter(store.iter_all()), None) is None:
            # The first subscribers: their key is made now, so a key missing later is a key lost.
            load_ring(None, open_key_home(settings.subscribers, state), lambda: False)
        known_tags = published_tags(state)
        report = import_csv(store, io.StringIO(text, newline=""), known_tags=known_tags)
    except ConfigError as error:
        raise _fail(str(error), EXIT_INPUT) from None
    except StorageError as error:
        raise _fail(str(error), EXIT_STORAGE) from None
    for line, reason in report.problems:
        typer.echo(f"{file}:{line}: {reason}")
    typer.echo(report.summary_line())


@subscribers_app.command("export")
def export_command(
    context: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.", dir_okay=False)
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write every subscriber as CSV, in the format import reads."""
    store = _store(settings_for(context, config))
    try:
        if out is None:
            with reader_may_leave():
                export_csv(store, sys.stdout)
            return
        count = _export_to_file(store, out)
    except StorageError as error:
        raise _fail(str(error), EXIT_STORAGE) from None
    except OSError as error:
        raise _fail(f"cannot write {out}: {error.strerror or error}", EXIT_STORAGE) from None
    typer.echo(f"{counted(count, 'subscriber')} written to {out}", err=True)


def _export_to_file(store: SubscriberStore, out: Path) -> int:
    """Export beside ``out`` and rename over it: a failed export leaves no half file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            count = export_csv(store, stream)
        Path(temporary).replace(out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count


def _selected(store: SubscriberStore, status: str | None, frequency: str | None) -> Iterator[Subscriber]:
    if status == "confirmed" and frequency is not None:
        yield from store.iter_confirmed(frequency)
        return
    for subscriber in store.iter_all():
        if (status is None or subscriber.status == status) and (frequency is None or subscriber.frequency == frequency):
            yield subscriber


def _check_choice(value: str | None, allowed: tuple[str, ...], option: str) -> str | None:
    if value is None:
        return None
    cleaned = value.strip().lower()
    if cleaned not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=option)
    return cleaned


@subscribers_app.command("list")
def list_command(
    context: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help=" | ".join(STATUSES))] = None,
    frequency: Annotated[str | None, typer.Option("--frequency", help=" | ".join(FREQUENCIES))] = None,
    config: ConfigOption = None,
) -> None:
    """Show subscribers as a table, optionally only one status and/or frequency."""
    wanted_status = _check_choice(status, STATUSES, "--status")
    wanted_frequency = _check_choice(frequency, FREQUENCIES, "--frequency")
    store = _store(settings_for(context, config))
    table = Table("email", "tags", "frequency", "lang", "status")
    count = 0
    try:
        for subscriber in _selected(store, wanted_status, wanted_frequency):
            table.add_row(
                Text(subscriber.email, overflow="fold"),
                Text(" ".join(subscriber.tags) or "(all)", overflow="fold"),
                subscriber.frequency,
                subscriber.lang,
                subscriber.status,
            )
            count += 1
    except StorageError as error:
        raise _fail(str(error), EXIT_STORAGE) from None
    console = Console(highlight=False)
    if count:
        console.print(table)
    console.print(Text(counted(count, "subscriber")))


@subscribers_app.command("delete")
def delete_command(
    context: typer.Context,
    address: Annotated[str, typer.Argument(metavar="ADDRESS", help="The person's email address, in any case.")],
    config: ConfigOption = None,
) -> None:
    """Erase a person: their subscriber record, their rows in the send ledger and, with an
    outbox mailer, the messages to them. Only a hash of the address is kept, so that an
    import never adds them again."""
    settings = settings_for(context, config)
    try:
        normalise_email(address)
    except InvalidAddress as error:
        raise _fail(f"not an address: {error}", EXIT_INPUT) from None
    try:
        store = open_subscribers(settings.subscribers)
        ledger = open_ledger(settings.subscribers)
    except ConfigError as error:
        raise _fail(str(error), EXIT_INPUT) from None
    try:
        found = erase_address(store, ledger, address)
        ledger.flush()
    except StorageError as error:
        raise _fail(str(error), EXIT_STORAGE) from None
    removed = 0
    if settings.mailer.startswith("outbox:"):
        try:
            removed = forget_recipient(settings.mailer.removeprefix("outbox:") or "outbox", address)
        except OSError as error:
            raise _fail(f"cannot clear the outbox: {error.strerror or error}", EXIT_STORAGE) from None
    what = "the subscriber was erased" if found else "no subscriber had this address"
    typer.echo(f"{what}; {removed} outbox messages removed; the address's hash stays on the erased list")
