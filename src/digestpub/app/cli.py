"""The ``digestpub`` command: a thin shell over the use cases, like the cloud functions."""

from __future__ import annotations

import gc
import json
import logging
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from digestpub.app.console import (
    EXIT_CONFIG,
    EXIT_PROBLEMS,
    EXIT_STORAGE,
    ConfigOption,
    fail,
    log_level,
    progress_bar,
    settings_for,
    stderr,
    time_left,
)
from digestpub.errors import ConfigError, DigestpubError
from digestpub.version import __version__

if TYPE_CHECKING:
    from digestpub.model import Frequency
    from digestpub.settings import Settings

# Each command imports its own modules when it runs: every run of the program
# pays for what it imports at the top, and `digestpub --version` should cost
# only the interpreter and typer.

HELP_OPTIONS = ["-h", "--help"]


class _Commands(TyperGroup):
    """The program's commands; ``subscribers``, ``keys`` and ``stats`` load only when asked for (or listed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _bare_switches(self)

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), "subscribers", "keys", "stats"})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name == "subscribers":
            from digestpub.app.cli_subscribers import subscribers_app

            return _group(subscribers_app, cmd_name, "Import, export and list newsletter subscribers.")
        if cmd_name == "keys":
            from digestpub.app.cli_keys import keys_app

            return _group(keys_app, cmd_name, "Rotate and retire the token keys that sign the links in emails.")
        if cmd_name == "stats":
            from digestpub.app.cli_stats import stats_app

            return _group(stats_app, cmd_name, "The newsletter's statistics for editors: tables, --json or --html.")
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _bare_switches(command)
        return command


def _bare_switches(command: Any) -> None:
    """Help shows a switch with no ``<bool>`` after it: ``--dry-run``, never ``--dry-run true``."""
    # The help option is made on first use, from a context's names: made here, it is shown bare too.
    help_option = command.get_help_option(typer.Context(command, help_option_names=HELP_OPTIONS))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _bare_switches(sub)


def _group(sub_app: typer.Typer, name: str, help_text: str) -> Any:
    command = typer.main.get_command(sub_app)
    command.name = name
    command.help = help_text
    _bare_switches(command)
    return command


app = typer.Typer(
    cls=_Commands,
    name="digestpub",
    help="Per-tag feeds, tag pages and email digests from paper summaries.",
    no_args_is_help=True,
    context_settings={"help_option_names": HELP_OPTIONS},
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log cleaned inputs and progress too.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors on standard error: no warnings, notes or progress bar.")
    ] = False,
    log_format: Annotated[str | None, typer.Option(help="text or json (default from settings).")] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    if verbose and quiet:
        stderr.print("[red]error:[/] --verbose and --quiet contradict each other; give one")
        raise typer.Exit(EXIT_CONFIG)
    stderr.quiet = quiet
    context.obj = {"config": config, "level": log_level(verbose, quiet), "log_format": log_format}


MaxObjectBytesOption = Annotated[
    int | None, typer.Option(help="Larger source objects are skipped before they are read.", show_default=False)
]


@app.command("publish")
def publish_command(
    context: typer.Context,
    source: Annotated[str | None, typer.Option(help="Summaries: s3://bucket/prefix or a folder.")] = None,
    dest: Annotated[str | None, typer.Option(help="Where feeds and pages go.")] = None,
    state: Annotated[str | None, typer.Option(help="Where the publish state is kept.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Public URL where dest is served.")] = None,
    api_url: Annotated[str | None, typer.Option(help="Public URL of the subscription endpoints.")] = None,
    feed_size: Annotated[int | None, typer.Option(help="Items per feed.")] = None,
    archive_page_size: Annotated[
        int | None, typer.Option(help="Summaries per archive page (a site keeps the size of its first run).")
    ] = None,
    correction_days: Annotated[
        float | None, typer.Option(help="Days a correction of an archived summary stays in the feeds.")
    ] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone of the dates pages show.")] = None,
    site_title: Annotated[str | None, typer.Option()] = None,
    site_description: Annotated[str | None, typer.Option()] = None,
    lang: Annotated[str | None, typer.Option(help="Default language of summaries and pages.")] = None,
    max_object_bytes: MaxObjectBytesOption = None,
    hubs: Annotated[
        str | None, typer.Option(help="WebSub hub URLs, separated by spaces: told of every changed feed.")
    ] = None,
    id_authority: Annotated[
        str | None,
        typer.Option(help="host or host,year of entry ids: a new site's; an existing site keeps its own."),
    ] = None,
    full_scan: Annotated[
        bool, typer.Option("--full-scan", help="List the whole source, not just recent days.")
    ] = False,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Ignore the saved state: read everything, rewrite every feed."),
    ] = False,
    keys: Annotated[
        list[str] | None,
        typer.Option(
            "--keys",
            metavar="KEY",
            help="A source key (YYYY/MM/DD/NAME.json or .jsonl) to read whatever its day; repeat for more. "
            "A key that is gone takes its summaries off the site.",
        ),
    ] = None,
    keys_from: Annotated[
        str | None,
        typer.Option("--keys-from", metavar="FILE", help="Read the keys to read from FILE, one a line; - for stdin."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Read new, edited and deleted summaries and write the feeds and pages they change."""
    from digestpub.app.jobs import publish_site

    settings = settings_for(
        context,
        config,
        source=source,
        dest=dest,
        state=state,
        base_url=base_url,
        api_url=api_url,
        feed_size=feed_size,
        archive_page_size=archive_page_size,
        correction_days=correction_days,
        timezone=timezone,
        site_title=site_title,
        site_description=site_description,
        lang=lang,
        max_object_bytes=max_object_bytes,
        hubs=hubs,
        id_authority=id_authority,
    )
    try:
        named = [*(keys or []), *_keys_from(keys_from)]
        with progress_bar() as bar:
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if bar is None:
                    return
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total or None)
                bar.update(tasks[stage], completed=done, total=total or None)

            report = publish_site(settings, full_scan=full_scan, rebuild=rebuild, keys=named, progress=progress)
    except DigestpubError as error:
        fail(error)
    typer.echo(report.summary_line())
    if report.skipped:
        stderr.note(f"{report.skipped} input(s) skipped; see the log above or `digestpub report`")


def _keys_from(file: str | None) -> list[str]:
    """The keys in ``file`` (``-``: stdin), one a line; blank lines are skipped."""
    if file is None:
        return []
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--keys-from {file}: {error}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


@app.command("check")
def check_command(
    context: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Summary files, or folders of day folders.", show_default=False)],
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude", metavar="GLOB", help="Leave out files (a/2026/11/20/x.json) or lines (x.jsonl:3) it matches."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    max_object_bytes: MaxObjectBytesOption = None,
) -> None:
    """Check summaries with publish's rules before they are uploaded; exit 1 if publish would skip any."""
    from digestpub.publish.check import check_paths
    from digestpub.publish.ingest import SummaryReader
    from digestpub.text import counted

    settings = settings_for(context, max_object_bytes=max_object_bytes)
    reader = SummaryReader(settings.lang, settings.max_summary_bytes, settings.max_object_bytes)
    try:
        result = check_paths(paths, reader, exclude or ())
    except DigestpubError as error:
        fail(error)
    if as_json:
        problems = [problem.model_dump() for problem in result.problems]
        typer.echo(
            json.dumps(
                {"ok": result.ok, "files": result.files, "summaries": result.summaries, "problems": problems},
                ensure_ascii=False,
                indent=1,
            )
        )
    else:
        for problem in result.problems:
            typer.echo(f"{problem.where()}: {problem.outcome}: {problem.reason}")
        stderr.note(
            f"checked {result.files} file(s): {counted(result.summaries, 'summary', 'summaries')}, "
            f"{result.skipped} would be skipped, {result.cleaned} cleaned, {result.warnings} warning(s)"
        )
    if not result.ok:
        raise typer.Exit(EXIT_PROBLEMS)


@app.command("report")
def report_command(
    context: typer.Context,
    state: Annotated[str | None, typer.Option(help="Where the publish state is kept.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the saved report as JSON.")] = False,
) -> None:
    """Show the last publish run's report: what it did, and the skipped inputs still unfixed."""
    from digestpub.app.locations import open_store
    from digestpub.publish.report import load_latest_report

    settings = settings_for(context, state=state)
    try:
        report = load_latest_report(open_store(settings.state))
    except DigestpubError as error:
        fail(error)
    if report is None:
        stderr.print(f"[yellow]no report:[/] no publish run has been recorded in {settings.state}")
        raise typer.Exit(EXIT_PROBLEMS)
    if as_json:
        typer.echo(report.model_dump_json(indent=1))
        return
    from digestpub.app.report_view import print_report

    print_report(report)


FrequencyOption = Annotated[str, typer.Option(help="daily or weekly.", case_sensitive=False)]
DateOption = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="The issue's date (default: today, UTC).")
]


def _frequency(value: str) -> Frequency:
    if value not in ("daily", "weekly"):
        stderr.print(f"[red]error:[/] --frequency must be daily or weekly, not {value!r}")
        raise typer.Exit(EXIT_CONFIG)
    return value  # type: ignore[return-value]


StateOption = Annotated[str | None, typer.Option(help="Where the publish state (and issues) are kept.")]
DestOption = Annotated[str | None, typer.Option(help="Where the web copies of issues go.")]
BaseUrlOption = Annotated[str | None, typer.Option(help="Public URL where dest is served.")]
ApiUrlOption = Annotated[str | None, typer.Option(help="Public URL of the subscription endpoints.")]
TitleOption = Annotated[str | None, typer.Option(help="Masthead: the digest's name.")]
DescriptionOption = Annotated[str | None, typer.Option(help="Masthead: the tagline.")]
SubscribersOption = Annotated[str | None, typer.Option(help="sqlite:///path.db or dynamodb://table.")]
TokenKeyOption = Annotated[
    str | None, typer.Option(help="Secret for unsubscribe and preference links (16+ characters).")
]
MaxItemsOption = Annotated[int | None, typer.Option(help="Items per email; the rest become one line.")]


@app.command("newsletter")
def newsletter_command(
    context: typer.Context,
    frequency: FrequencyOption = "daily",
    on_date: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="The issue's date (default: today, UTC)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Build every email, send and record nothing.")] = False,
    to: Annotated[
        str | None, typer.Option("--to", help="Send one test copy to this address instead; records nothing.")
    ] = None,
    tags: Annotated[str, typer.Option(help="With --to: the tags (space-separated) of that copy.")] = "",
    lang: Annotated[str, typer.Option(help="With --to: the language of that copy (ru or en).")] = "ru",
    resend_unknown: Annotated[
        bool,
        typer.Option("--resend-unknown", help="Also send to subscribers whose earlier send has an unknown outcome."),
    ] = False,
    config: ConfigOption = None,
    state: StateOption = None,
    dest: DestOption = None,
    base_url: BaseUrlOption = None,
    api_url: ApiUrlOption = None,
    site_title: TitleOption = None,
    site_description: DescriptionOption = None,
    subscribers: SubscribersOption = None,
    mailer: Annotated[str | None, typer.Option(help="outbox:DIR, smtp://…, smtps://… or ses://CONFIG-SET.")] = None,
    from_address: Annotated[str | None, typer.Option(help="Name <address> of the newsletter.")] = None,
    reply_to: Annotated[str | None, typer.Option(help="Reply-To address.")] = None,
    token_key: TokenKeyOption = None,
    max_items: MaxItemsOption = None,
    send_rate: Annotated[float | None, typer.Option(help="Emails per second.")] = None,
    outage_limit: Annotated[
        float | None, typer.Option(help="Seconds of nothing but 'try later' from the mail service that stop the run.")
    ] = None,
    retry_limit: Annotated[
        float | None, typer.Option(help="Seconds spent retrying addresses answered 'try later', after the others.")
    ] = None,
) -> None:
    """Build one issue and send it: one email per confirmed subscriber with something to read.

    Exit 0 when done (refused addresses marked bounced); 1 when something is left to
    send (the mail service or a store failed, or addresses were deferred): the same
    command again sends exactly the rest; 2 bad settings; 3 another run holds the lock.
    """
    from digestpub.app.jobs import send_issue

    settings = settings_for(
        context,
        config,
        state=state,
        dest=dest,
        base_url=base_url,
        api_url=api_url,
        site_title=site_title,
        site_description=site_description,
        subscribers=subscribers,
        mailer=mailer,
        from_address=from_address,
        reply_to=reply_to,
        token_key=token_key,
        max_items=max_items,
        send_rate=send_rate,
        outage_limit=outage_limit,
        retry_limit=retry_limit,
    )
    chosen = _frequency(frequency.lower())
    day = (on_date or datetime.now(UTC)).date()
    try:
        if to is not None:
            typer.echo(f"test copy sent to {to}: {_send_test_copy(settings, chosen, day, to, tags, lang)}")
            return
        with progress_bar(estimate=True) as bar:
            task: list[Any] = []

            def progress(stage: str, done: int, total: int) -> None:
                if bar is None:
                    return
                # An estimate at the configured pace: the run never sends faster.
                left = time_left(done, total, settings.send_rate) if total else ""
                if not task:
                    task.append(bar.add_task(stage, total=total or None, left=left))
                bar.update(task[0], completed=done, total=total or None, left=left)

            report = send_issue(
                settings, chosen, day, dry_run=dry_run, resend_unknown=resend_unknown, progress=progress
            )
    except DigestpubError as error:
        fail(error)
    typer.echo(report.summary_line())
    if report.stopped:
        stderr.print(f"[red]mail service failed:[/] {report.stopped}")
    if report.unknown:
        stderr.note(
            f"{len(report.unknown)} unknown: the server may have delivered them; `--resend-unknown` sends them again"
        )
    if report.left:
        stderr.print(
            f"{report.left} left to send ({report.deferred} deferred, {report.failed} failed, "
            f"{report.not_reached} not reached): run the same command again to send exactly those"
        )
    if report.stopped or report.deferred:
        raise typer.Exit(EXIT_STORAGE)


def _send_test_copy(settings: Settings, frequency: Frequency, day: date, to: str, tags: str, lang: str) -> str:
    """One copy of the issue to ``to``, recorded nowhere; returns its Message-ID."""
    from digestpub.app.wiring import newsletter_context
    from digestpub.newsletter.run import send_test_copy
    from digestpub.subscriptions.subscribers import normalise_email, normalise_tags

    newsletter = newsletter_context(settings)
    try:
        return send_test_copy(newsletter, frequency, day, normalise_email(to), normalise_tags(tags), lang)
    finally:
        newsletter.mailer.close()


@app.command("preview")
def preview_command(
    context: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where to write the HTML.", dir_okay=False)],
    tags: Annotated[str, typer.Option(help="The subscriber's tags, space-separated (none: everything).")] = "",
    frequency: FrequencyOption = "daily",
    lang: Annotated[str, typer.Option(help="ru or en: the email's own words.")] = "ru",
    on_date: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="The issue's date (default: today)."),
    ] = None,
    config: ConfigOption = None,
    state: StateOption = None,
    base_url: BaseUrlOption = None,
    api_url: ApiUrlOption = None,
    site_title: TitleOption = None,
    site_description: DescriptionOption = None,
    subscribers: SubscribersOption = None,
    token_key: TokenKeyOption = None,
    max_items: MaxItemsOption = None,
) -> None:
    """Render the issue such a subscriber would get, to open in a browser. Sends nothing.

    Exit 2 when that subscriber would get nothing (no email is made for them).
    """
    from digestpub.app.wiring import newsletter_context
    from digestpub.newsletter.run import preview_html

    settings = settings_for(
        context,
        config,
        state=state,
        base_url=base_url,
        api_url=api_url,
        site_title=site_title,
        site_description=site_description,
        subscribers=subscribers,
        token_key=token_key,
        max_items=max_items,
    )
    chosen = _frequency(frequency.lower())
    day = (on_date or datetime.now(UTC)).date()
    try:
        from digestpub.subscriptions.subscribers import normalise_tags

        html = preview_html(newsletter_context(settings), chosen, day, normalise_tags(tags), lang)
    except DigestpubError as error:
        fail(error)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    typer.echo(f"wrote {out}")


@app.command("config")
def config_command(
    context: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the settings as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Print the effective settings and where each came from (flag, variable, file, default); secrets masked."""
    from digestpub.settings import Settings

    settings = settings_for(context, config)
    options = context.obj or {}
    origins = Settings.origins(config or options.get("config"), log_format=options.get("log_format"))
    values = settings.masked()
    if as_json:
        described = {name: {"value": value, "source": origins[name]} for name, value in values.items()}
        typer.echo(json.dumps(described, ensure_ascii=False, indent=1))
        return
    # TOML, so that the output (secrets aside) can become a config file.
    for name, value in values.items():
        if value is None:
            typer.echo(f"# {name} is not set  # {origins[name]}")
        else:
            typer.echo(f"{name} = {json.dumps(value, ensure_ascii=False)}  # {origins[name]}")


@app.command("serve")
def serve_command(
    context: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    dest: Annotated[str | None, typer.Option(help="The folder to serve: where publish wrote.")] = None,
    config: ConfigOption = None,
    confirm_interval: Annotated[
        float | None, typer.Option(help="Seconds between two confirmation emails to one address.")
    ] = None,
    confirm_daily_limit: Annotated[
        int | None, typer.Option(help="Confirmation emails to one address in 24 hours.")
    ] = None,
    confirm_hourly_limit: Annotated[
        int | None, typer.Option(help="Confirmation emails to all addresses together in one hour.")
    ] = None,
    confirm_link_days: Annotated[float | None, typer.Option(help="Days a confirmation link works (once).")] = None,
) -> None:
    """Serve dest and the subscription endpoints on one port: the local twin of the cloud."""
    from urllib.parse import urlsplit

    from digestpub.app import wiring
    from digestpub.app.serve import make_server
    from digestpub.app.wiring import newsletter_context
    from digestpub.subscriptions.endpoints import Endpoints
    from digestpub.subscriptions.use_cases import SendAfterAnswer, Subscriptions

    settings = settings_for(
        context,
        config,
        dest=dest,
        confirm_interval=confirm_interval,
        confirm_daily_limit=confirm_daily_limit,
        confirm_hourly_limit=confirm_hourly_limit,
        confirm_link_days=confirm_link_days,
    )
    if "://" in settings.dest:
        stderr.print(f"[red]error:[/] serve needs dest to be a local folder, not {settings.dest}")
        raise typer.Exit(EXIT_CONFIG)
    site = settings.site()

    def subscriptions() -> Subscriptions:
        # Confirmation emails go out after the answer: it takes as long whether one is sent.
        return wiring.subscriptions(settings, newsletter_context(settings), SendAfterAnswer())

    endpoints = Endpoints(subscriptions, site, lambda: wiring.combined_feeds(settings))
    try:
        endpoints.use()  # a bad store or token key stops the start, not the first visitor
        server = make_server(host, port, Path(settings.dest), endpoints, urlsplit(site.api_url).path)
    except DigestpubError as error:
        fail(error)
    except OSError as error:
        stderr.print(f"[red]error:[/] cannot listen on {host}:{port}: {error}")
        raise typer.Exit(EXIT_CONFIG) from None
    if not stderr.quiet:  # each request, one line: what a local server is watched for
        logging.getLogger("digestpub.app.serve").setLevel(logging.INFO)
    typer.echo(f"serving {settings.dest} and the subscription endpoints on http://{host}:{server.server_port}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main() -> None:
    try:
        app()
    finally:
        # The interpreter's last act is a garbage collection over every object
        # still alive: the imported libraries' and a run's records, a large share of
        # a run with nothing new. Frozen objects are left to the exit to free.
        gc.freeze()


if __name__ == "__main__":
    main()
