"""``digestpub stats``: the editors' statistics of the newsletter, as tables, JSON or one HTML page.

Mounted by the main program like ``keys``. Exit codes: 0 done, 1 a store failed,
2 bad settings or an ``--html`` file that cannot be written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digestpub.app.console import ConfigOption, fail, settings_for
from digestpub.errors import ConfigError, DigestpubError
from digestpub.newsletter.stats import EVENTS, Stats

if TYPE_CHECKING:
    from rich.table import Table

    from digestpub.site import Site

stats_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@stats_app.command()
def stats_command(
    context: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", metavar="FILE", help="Write one HTML page with charts.")
    ] = None,
    weeks: Annotated[int, typer.Option(min=1, max=520, help="Weeks to count, up to this one.")] = 12,
    issues: Annotated[int, typer.Option(min=1, max=1000, help="Newest issues to show.")] = 20,
    until: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="The day whose week is the last counted (in the timezone setting); today by default.",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Subscribers by status, frequency and language; changes and emails sent per week and per issue; busiest tags."""
    from digestpub.app.locations import open_ledger, open_store, open_subscribers
    from digestpub.newsletter.stats import collect

    settings = settings_for(context, config)
    zone = settings.site().zone
    now = datetime.now(UTC) if until is None else until.replace(hour=12, tzinfo=zone)
    try:
        figures = collect(
            open_subscribers(settings.subscribers),
            open_ledger(settings.subscribers),
            open_store(settings.state),
            now=now,
            weeks=weeks,
            issues=issues,
            zone=zone,
        )
        if html is not None:
            _write_page(html, settings.site(), figures, now)
    except DigestpubError as error:
        fail(error)
    if as_json:
        import orjson

        from digestpub.newsletter.stats import as_json as figures_json

        typer.echo(orjson.dumps(figures_json(figures), option=orjson.OPT_INDENT_2).decode())
    elif html is None:
        _print_tables(figures)
    else:
        typer.echo(f"wrote {html}")


def _write_page(path: Path, site: Site, figures: Stats, now: datetime) -> None:
    from digestpub.newsletter.stats_page import stats_page

    try:
        path.write_text(stats_page(site, figures, now=now), encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"--html {path}: {error}") from None


def _print_tables(figures: Stats) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    console.print(f"{figures.subscribers} subscribers")
    for kind, counted, values in (
        ("status", "subscribers", figures.by_status),
        ("frequency", "confirmed", figures.by_frequency),
        ("language", "confirmed", figures.by_lang),
        ("busiest tags", "confirmed", {**dict(figures.tags), "(every tag: chose none)": figures.every_tag}),
    ):
        console.print(_table((kind, counted), [(name, count) for name, count in values.items()]))
    console.print(_table(("week", *EVENTS), [(week.week, *week.counts.values()) for week in figures.weeks]))
    rows = [(issue.issue, issue.sent, issue.refused, issue.unknown) for issue in figures.issues]
    console.print(_table(("issue", "sent", "refused", "unknown"), rows) if rows else "no issue built yet")


def _table(headings: tuple[str, ...], rows: Sequence[tuple[object, ...]]) -> Table:
    """The first column names the row, the others are counts (right-aligned)."""
    from rich.table import Table

    table = Table(headings[0])
    for heading in headings[1:]:
        table.add_column(heading, justify="right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table
