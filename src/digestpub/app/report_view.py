"""``digestpub report`` for people: what the last run did, and a table of the inputs still skipped."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from digestpub.model import PublishReport, count_problems


def print_report(report: PublishReport, console: Console | None = None) -> None:
    console = console or Console()
    took = "" if report.finished_at is None else f" in {(report.finished_at - report.started_at).total_seconds():.1f} s"
    scan = "full scan" if report.full_scan else "recent days"
    console.print(f"run {report.run_id} at {report.started_at:%Y-%m-%d %H:%M:%S %Z}{took} ({scan})", markup=False)
    console.print(f"objects read: {report.objects_read}; {report.summary_line()}", markup=False)
    for failure in report.hub_failures:
        told = f"WebSub hub {failure.hub} was not told of {failure.feeds} feed(s): {failure.reason}"
        console.print(told, markup=False)
    unfixed = report.skipped_inputs
    if not unfixed:
        console.print("no skipped input is waiting for a fix")
        return
    table = Table(title=f"{count_problems(unfixed, 'skipped')} skipped input(s) still unfixed", title_justify="left")
    table.add_column("key", overflow="fold")
    table.add_column("line", justify="right")
    table.add_column("reason", overflow="fold")
    for problem in unfixed:
        table.add_row(problem.key, "" if problem.line is None else str(problem.line), problem.reason)
    console.print(table)
