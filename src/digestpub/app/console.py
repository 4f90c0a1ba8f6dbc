"""What every command shares: settings from flags and files, logging, the console on
standard error, progress bars, and how an error becomes an exit code."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from digestpub.errors import ConfigError, DigestpubError, MailError, NothingToRead, StateLocked, StorageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from digestpub.settings import Settings

EXIT_STORAGE = 1
EXIT_PROBLEMS = 1
"""``check``: publish would skip an input; ``report``: there is no report to show."""
EXIT_CONFIG = 2
EXIT_LOCKED = 3


@cache
def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


class _Stderr:
    """The console on standard error, made on first use: importing rich is a noticeable share of the start-up."""

    quiet = False
    """``--quiet``: errors only; notes and progress bars are left out."""

    def print(self, *objects: Any, **options: Any) -> None:
        _console().print(*objects, **options)

    def note(self, *objects: Any, **options: Any) -> None:
        """What a run did besides its result, which ``--quiet`` leaves out."""
        if not self.quiet:
            self.print(*objects, **options)

    @property
    def is_terminal(self) -> bool:
        return sys.stderr.isatty()


stderr = _Stderr()


class _JsonFormatter(logging.Formatter):
    """One JSON object a line: when (UTC, ISO 8601), how bad, where from, what; and the exception, if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def log_level(verbose: bool, quiet: bool) -> int:
    if quiet:
        return logging.ERROR
    return logging.INFO if verbose else logging.WARNING


def configure_logging(level: int, log_format: str) -> None:
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JsonFormatter())
    elif sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(console=_console(), show_time=False, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        # Into a file or a pipe (cron, CI, a scheduler): one line a record, which
        # rich would wrap at 80 columns, and without rich's share of the start-up.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def settings_for(context: typer.Context, config: Path | None = None, **flags: Any) -> Settings:
    """Settings with the command's flags; its ``--config`` (after the subcommand) beats the main one."""
    from digestpub.settings import Settings

    options = context.obj or {}
    try:
        settings = Settings.load(config or options.get("config"), log_format=options.get("log_format"), **flags)
    except ConfigError as error:
        stderr.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_CONFIG) from None
    configure_logging(options.get("level", logging.WARNING), settings.log_format)
    return settings


@contextmanager
def reader_may_leave() -> Iterator[None]:
    """Output to stdout that a reader such as ``head`` may stop reading: that ends it, and not in error."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        # The interpreter flushes stdout once more on its way out, which would fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


def progress_bar(*, estimate: bool = False) -> AbstractContextManager[Progress | None]:
    """A bar on a terminal; with ``estimate``, each task's ``left`` field (the time left) is shown too."""
    if stderr.quiet or not stderr.is_terminal:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if estimate:
        columns.append(TextColumn("{task.fields[left]}"))
    return Progress(*columns, console=_console(), transient=True)


def time_left(done: int, total: int, rate: float) -> str:
    """What is left of ``total`` sends after ``done``, at ``rate`` a second: "about 4 min left"."""
    seconds = max(total - done, 0) / rate
    if seconds < 60:
        return f"about {seconds:.0f} s left"
    if seconds < 3600:
        return f"about {seconds / 60:.0f} min left"
    return f"about {seconds / 3600:.1f} h left"


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", envvar="DIGESTPUB_CONFIG", help="TOML file of settings.", dir_okay=False),
]


def fail(error: DigestpubError) -> NoReturn:
    if isinstance(error, (ConfigError, NothingToRead)):
        stderr.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_CONFIG)
    if isinstance(error, StateLocked):
        stderr.print(f"[yellow]locked:[/] {error}")
        raise typer.Exit(EXIT_LOCKED)
    if isinstance(error, StorageError):
        label = "storage failed"
    elif isinstance(error, MailError):
        label = "mail service failed"
    else:
        label = "failed"
    stderr.print(f"[red]{label}:[/] {error}")
    raise typer.Exit(EXIT_STORAGE)
