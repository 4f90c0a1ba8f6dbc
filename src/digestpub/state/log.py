"""The publish log: what each run published, for newsletters.

One new file per run, never rewritten, written before the run's head: a run
stopped after its log may log a summary that the next run logs again; an issue
leaves out what the last one carried, so no reader gets it twice, and none misses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from typing import Any

import orjson

from digestpub.model import Summary, sortable_time
from digestpub.ports import ObjectStore
from digestpub.state.keys import LOG_FOLDER, log_day_prefix

DELETED = "deleted"
"""The change of a record that logs a summary deleted from the source: it carries only ``id``."""


def log_lines(moment: datetime, change_of: dict[str, str], summaries: list[Summary], deleted: list[str]) -> bytes:
    """The log file of one run; ``change_of`` maps each id to ``new`` or ``updated``; ``deleted``: ids gone."""
    logged_at = moment.astimezone(UTC).isoformat()
    # Generators, joined once: a cold run logs a thousand summaries with their text.
    records = chain(
        ({"logged_at": logged_at, "change": change_of[summary.id], "summary": summary} for summary in summaries),
        ({"logged_at": logged_at, "change": DELETED, "summary": {"id": gone}} for gone in deleted),
    )
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def change(record: dict[str, Any]) -> str:
    """``new``, ``updated`` or ``DELETED``: what a logged record says happened to its summary."""
    # Runs before 0.2 wrote it as "kind".
    return str(record["change"] if "change" in record else record["kind"])


def logged_records(state: ObjectStore, first: date, last: date) -> Iterator[dict[str, Any]]:
    """Every record the runs of the UTC days ``first`` to ``last`` logged: ``logged_at``, ``change``, ``summary``.

    A record whose change is ``DELETED`` holds only the summary's ``id``.
    """
    day = first
    while day <= last:
        for info in state.list(prefix=log_day_prefix(day)):
            found = state.read(info.key)
            if found is not None:
                for line in found[0].splitlines():
                    yield orjson.loads(line)
        day += timedelta(days=1)


def logged_versions(state: ObjectStore, first: date) -> dict[str, str]:
    """The newest version (``sortable_time`` text) each summary was logged in, by id, since the UTC day ``first``.

    One listing from that day on, not one a day: a rebuild over an old corpus
    may start years back.
    """
    newest: dict[str, str] = {}
    # Keys of a day sort after the bare day ("…/2026/11/20/x" > "…/2026/11/20").
    for info in state.list(prefix=LOG_FOLDER, start_after=log_day_prefix(first).rstrip("/")):
        found = state.read(info.key)
        if found is None:
            continue
        for line in found[0].splitlines():
            record = orjson.loads(line)
            if change(record) == DELETED:
                continue
            summary = record["summary"]
            version = sortable_time(datetime.fromisoformat(summary.get("updated_at") or summary["published_at"]))
            if version > newest.get(summary["id"], ""):
                newest[summary["id"]] = version
    return newest
