"""Issues: their ids, their windows, and the summaries each one holds.

An issue holds what publish runs logged since the previous issue of the same
frequency, so a missed day loses nothing. The issue is written to the state
store when first built; a retry, or another worker, reads the same issue back.

The newsletter's own records (the ledger) remember the last issue of each
frequency and its cut-off: a publish state lost or rebuilt since logs every
summary anew, and one published before that cut-off is not news again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from digestpub.errors import NewsletterError, PreconditionFailed, StorageError
from digestpub.model import Frequency, Summary
from digestpub.ports import Ledger, ObjectStore
from digestpub.state.lock import StateLock
from digestpub.state.log import DELETED, change, logged_records

PERIODS: dict[str, timedelta] = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
_LOCK_TTL = timedelta(minutes=5)
_LOCK_WAIT = timedelta(minutes=5)


class Issue(BaseModel):
    id: str
    frequency: Frequency
    issue_date: date | None = None
    """The day the issue is for (``--date``), shown in its subject."""
    window_start: datetime
    window_end: datetime
    created_at: datetime
    summaries: list[Summary]
    """Newest first; each summary's newest version within the window."""


def issue_id(frequency: Frequency, on: date) -> str:
    if frequency == "daily":
        return f"daily-{on:%Y-%m-%d}"
    year, week, _ = on.isocalendar()
    return f"weekly-{year}-W{week:02d}"


def _issue_key(identifier: str) -> str:
    return f"newsletter/issues/{identifier}.json"


def _last_key(frequency: str) -> str:
    return f"newsletter/last-{frequency}.json"


def load_issue(state: ObjectStore, identifier: str) -> Issue | None:
    found = state.read(_issue_key(identifier))
    if found is None:
        return None
    try:
        return Issue.model_validate_json(found[0])
    except ValidationError as error:
        raise StorageError(f"issue {identifier} in {state.url} is damaged: {error}") from error


def prepare_issue(
    state: ObjectStore,
    frequency: Frequency,
    on: date,
    now: datetime | None = None,
    *,
    save: bool = True,
    memory: Ledger | None = None,
) -> Issue:
    """The issue for ``on``: read back if it was built before, else built from the logs.

    ``memory``: the newsletter's records, which remember each saved issue's cut-off.
    """
    identifier = issue_id(frequency, on)
    existing = load_issue(state, identifier)
    if existing is not None:
        if save and memory is not None:  # a run stopped before it noted the issue
            memory.note_issue(frequency, existing.id, existing.window_end)
        return existing
    if not save:
        return _new_issue(state, frequency, on, identifier, now or datetime.now(UTC), memory)
    # Under the publish lock: a publish run that is saving its log finishes first,
    # so nothing it logged falls between this issue's window and the next one's.
    with StateLock(state, ttl=_LOCK_TTL, wait=_LOCK_WAIT):
        existing = load_issue(state, identifier)
        if existing is not None:
            return existing
        issue = _new_issue(state, frequency, on, identifier, now or datetime.now(UTC), memory)
        try:
            state.put(_issue_key(identifier), issue.model_dump_json().encode(), if_none_match=True)
        except PreconditionFailed:
            # Another run built it first: everyone sends that one.
            winner = load_issue(state, identifier)
            if winner is None:
                raise
            return winner
        marker = {"id": identifier, "window_end": issue.window_end.isoformat()}
        state.put(_last_key(frequency), orjson.dumps(marker), content_type="application/json")
        if memory is not None:
            memory.note_issue(frequency, identifier, issue.window_end)
        return issue


def _new_issue(
    state: ObjectStore, frequency: Frequency, on: date, identifier: str, now: datetime, memory: Ledger | None
) -> Issue:
    last_found = state.read(_last_key(frequency))
    last = orjson.loads(last_found[0]) if last_found else None
    remembered = memory.last_issue(frequency) if memory is not None else None
    newest = max((found for found in (last and last["id"], remembered and remembered[0]) if found), default=None)
    if newest is not None and newest > identifier:
        raise NewsletterError(
            f"{identifier} comes before the last {frequency} issue, {newest}; "
            "issues go forward only (a later issue holds everything since the last one)"
        )
    kept_end = datetime.fromisoformat(last["window_end"]) if last else None
    cutoff = remembered[1] if remembered is not None and (kept_end is None or kept_end < remembered[1]) else None
    start = cutoff or kept_end or now - PERIODS[frequency]
    summaries = published_between(state, start, now)
    if cutoff is not None:
        # The publish state lost what the newsletter sent (it is new, or was rebuilt), and
        # logged every summary anew: those published before the last issue were in it.
        summaries = [summary for summary in summaries if summary.published_at > cutoff]
    previous = load_issue(state, last["id"]) if last else None
    if previous is not None:
        # A publish stopped before its head had logged its news, and the run after it
        # logged the same summaries again: what the last issue carried is not news twice.
        carried = {summary.id for summary in previous.summaries}
        summaries = [summary for summary in summaries if summary.id not in carried]
    return Issue(
        id=identifier,
        frequency=frequency,
        issue_date=on,
        window_start=start,
        window_end=now,
        created_at=now,
        summaries=summaries,
    )


def published_between(state: ObjectStore, start: datetime, end: datetime) -> list[Summary]:
    """Summaries first published in ``(start, end]``, each in its newest version from then.

    A summary whose latest record in the window is its deletion is left out: it is gone from every feed.
    """
    records = _records_between(state, start, end)
    gone = _deleted(records)
    first_seen: set[str] = set()
    newest: dict[str, Summary] = {}
    for _logged_at, record in records:
        if change(record) == DELETED:
            continue
        summary = summary_from_log(record["summary"])
        if change(record) == "new":
            first_seen.add(summary.id)
        earlier = newest.get(summary.id)
        if earlier is None or summary.version >= earlier.version:
            newest[summary.id] = summary
    chosen = [summary for summary_id, summary in newest.items() if summary_id in first_seen and summary_id not in gone]
    return sorted(chosen, key=lambda summary: summary.sort_key, reverse=True)


def without_deleted(state: ObjectStore, issue: Issue, now: datetime | None = None) -> Issue:
    """The issue less the summaries deleted from the source since it was built.

    An issue is built once, then read back by every run and batch that sends it:
    a summary deleted meanwhile reaches none of the readers not sent it yet.
    """
    gone = _deleted(_records_between(state, issue.created_at, now or datetime.now(UTC)))
    kept = [summary for summary in issue.summaries if summary.id not in gone]
    return issue if len(kept) == len(issue.summaries) else issue.model_copy(update={"summaries": kept})


def _records_between(state: ObjectStore, start: datetime, end: datetime) -> list[tuple[datetime, dict[str, Any]]]:
    """The publish log's records logged in ``(start, end]``, with when, in the order logged."""
    records = []
    for record in logged_records(state, start.astimezone(UTC).date(), end.astimezone(UTC).date()):
        logged_at = datetime.fromisoformat(record["logged_at"])
        if start < logged_at <= end:
            records.append((logged_at, record))
    return records


def _deleted(records: list[tuple[datetime, dict[str, Any]]]) -> set[str]:
    """Ids whose latest record is their deletion: published again since, a summary is back."""
    latest: dict[str, tuple[datetime, bool]] = {}
    for logged_at, record in records:
        summary_id = record["summary"]["id"]
        if summary_id not in latest or logged_at >= latest[summary_id][0]:
            latest[summary_id] = (logged_at, change(record) == DELETED)
    return {summary_id for summary_id, (_, deleted) in latest.items() if deleted}


def summary_from_log(document: dict[str, object]) -> Summary:
    fields = dict(document)
    if "summary_html" in fields:
        # Logged by earlier builds, which kept only the rendered HTML.
        fields["_html"] = fields.pop("summary_html")
        fields.setdefault("summary_markdown", "")
    for name in ("published_at", "updated_at"):
        value = fields.get(name)
        if isinstance(value, str):
            fields[name] = datetime.fromisoformat(value)
    for name in ("tags", "tag_slugs", "authors"):
        value = fields.get(name)
        if isinstance(value, list):
            fields[name] = tuple(value)
    return Summary(**fields)  # type: ignore[arg-type]
