"""The ``digestpub`` command: a thin shell over the use cases, like the cloud functions."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from digestpub import __version__
from digestpub.adapters import open_store
from digestpub.errors import ConfigError, DigestpubError, StateLocked, StorageError
from digestpub.publish import PublishOptions, publish
from digestpub.settings import Settings

EXIT_STORAGE = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3

app = typer.Typer(
    name="digestpub",
    help="Per-tag feeds, tag pages and email digests from paper summaries.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {"level": record.levelname, "logger": record.name, "message": record.getMessage()},
            ensure_ascii=False,
        )


def _configure_logging(verbose: bool, log_format: str) -> None:
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JsonFormatter())
    else:
        handler = RichHandler(console=stderr, show_time=False, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"digestpub {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    context: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="DIGESTPUB_CONFIG", help="TOML file of settings.", dir_okay=False),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log cleaned inputs and progress too.")
    ] = False,
    log_format: Annotated[str | None, typer.Option(help="text or json (default from settings).")] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    context.obj = {"config": config, "verbose": verbose, "log_format": log_format}


def _settings(context: typer.Context, **flags: Any) -> Settings:
    options = context.obj or {}
    try:
        settings = Settings.load(options.get("config"), log_format=options.get("log_format"), **flags)
    except ConfigError as error:
        stderr.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_CONFIG) from None
    _configure_logging(bool(options.get("verbose")), settings.log_format)
    return settings


def _progress_bar() -> AbstractContextManager[Progress | None]:
    if not stderr.is_terminal:
        return nullcontext(None)
    return Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    )


@app.command("publish")
def publish_command(
    context: typer.Context,
    source: Annotated[str | None, typer.Option(help="Summaries: s3://bucket/prefix or a folder.")] = None,
    dest: Annotated[str | None, typer.Option(help="Where feeds and pages go.")] = None,
    state: Annotated[str | None, typer.Option(help="Where the publish state is kept.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Public URL where dest is served.")] = None,
    api_url: Annotated[str | None, typer.Option(help="Public URL of the subscription endpoints.")] = None,
    feed_size: Annotated[int | None, typer.Option(help="Items per feed.")] = None,
    site_title: Annotated[str | None, typer.Option()] = None,
    site_description: Annotated[str | None, typer.Option()] = None,
    lang: Annotated[str | None, typer.Option(help="Default language of summaries and pages.")] = None,
    full_scan: Annotated[
        bool, typer.Option("--full-scan", help="List the whole source, not just recent days.")
    ] = False,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Ignore the saved state: read everything, rewrite every feed."),
    ] = False,
) -> None:
    """Read new and edited summaries and write the feeds and pages they change."""
    settings = _settings(
        context,
        source=source,
        dest=dest,
        state=state,
        base_url=base_url,
        api_url=api_url,
        feed_size=feed_size,
        site_title=site_title,
        site_description=site_description,
        lang=lang,
    )
    options = PublishOptions(
        lookback_days=settings.lookback_days,
        full_scan_every=timedelta(hours=settings.full_scan_hours),
        full_scan=full_scan,
        rebuild=rebuild,
        lock_ttl=timedelta(seconds=settings.lock_ttl),
        lock_wait=timedelta(seconds=settings.lock_timeout),
        max_summary_bytes=settings.max_summary_bytes,
        feed_cache_control=settings.feed_cache_control,
        page_cache_control=settings.page_cache_control,
    )
    try:
        with _progress_bar() as bar:
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if bar is None:
                    return
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total or None)
                bar.update(tasks[stage], completed=done, total=total or None)

            report = publish(
                open_store(settings.source),
                open_store(settings.dest),
                open_store(settings.state),
                settings.site(),
                options,
                progress,
            )
    except StateLocked as error:
        stderr.print(f"[yellow]locked:[/] {error}")
        raise typer.Exit(EXIT_LOCKED) from None
    except StorageError as error:
        stderr.print(f"[red]storage failed:[/] {error}")
        raise typer.Exit(EXIT_STORAGE) from None
    except ConfigError as error:
        stderr.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_CONFIG) from None
    except DigestpubError as error:
        stderr.print(f"[red]error:[/] {error}")
        raise typer.Exit(EXIT_STORAGE) from None
    typer.echo(report.summary_line())
    if report.skipped:
        where = settings.state.rstrip("/") + "/reports/latest.json"
        stderr.print(f"{report.skipped} input(s) skipped; see the log above or {where}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
