"""The index of issues in the state: one small document, updated when an issue is built.

The archive page and feed are rendered from it, so no run has to list and read
every issue. Only what the public may see is kept: id, frequency, day, count.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from pydantic import BaseModel, TypeAdapter, ValidationError

from digestpub.errors import PreconditionFailed, StorageError
from digestpub.model import Frequency
from digestpub.newsletter.issues import Issue, load_issue
from digestpub.ports import ObjectStore

INDEX_KEY = "newsletter/archive.json"
_ISSUES_PREFIX = "newsletter/issues/"
_WRITE_ATTEMPTS = 10


class ArchivedIssue(BaseModel):
    id: str
    frequency: Frequency
    issue_date: date
    built_at: datetime
    """When the issue was built: the archive feed's dates come from here, never from the clock."""
    count: int


_INDEX = TypeAdapter(list[ArchivedIssue])


def archived(issue: Issue) -> ArchivedIssue:
    return ArchivedIssue(
        id=issue.id,
        frequency=issue.frequency,
        issue_date=issue.issue_date or issue.window_end.date(),
        built_at=issue.created_at,
        count=len(issue.summaries),
    )


def load_archive(state: ObjectStore) -> list[ArchivedIssue]:
    """Every issue with something in it, newest first."""
    return _read_index(state)[0]


def record_issue(state: ObjectStore, issue: Issue) -> list[ArchivedIssue]:
    """The index with ``issue`` in it, written if it was missing; the archive as it now is.

    Called on every (re)build, so an issue whose first build stopped before this is
    listed by the next. Each write is conditional on the version read: two issues
    built at once both land. An issue with nothing in it is sent to nobody and has
    no web copy, so it is not listed.
    """
    for _attempt in range(_WRITE_ATTEMPTS):
        entries, version = _read_index(state)
        entry = archived(issue)
        if version is not None and (not issue.summaries or entry in entries):
            return entries
        listed = [entry] if issue.summaries else []
        updated = newest_first([*(known for known in entries if known.id != issue.id), *listed])
        try:
            state.put(
                INDEX_KEY,
                _INDEX.dump_json(updated),
                content_type="application/json",
                if_match=version,
                if_none_match=version is None,
            )
        except PreconditionFailed:
            continue
        return updated
    raise StorageError(f"the newsletter's index of issues in {state.url} kept changing while {issue.id} was added")


def _read_index(state: ObjectStore) -> tuple[list[ArchivedIssue], str | None]:
    found = state.read(INDEX_KEY)
    if found is None:
        return _from_saved_issues(state), None
    try:
        return _INDEX.validate_json(found[0]), found[1]
    except ValidationError as error:
        raise StorageError(
            f"the newsletter's index of issues, {INDEX_KEY} in {state.url}, is damaged: {error}; "
            "delete it and the next issue rebuilds it from the saved issues"
        ) from error


def newest_first(entries: Iterable[ArchivedIssue]) -> list[ArchivedIssue]:
    return sorted(entries, key=lambda entry: (entry.issue_date, entry.built_at, entry.id), reverse=True)


def _from_saved_issues(state: ObjectStore) -> list[ArchivedIssue]:
    """Issues built before the index existed: read once, then the index is written."""
    entries = []
    for info in state.list(_ISSUES_PREFIX):
        identifier = info.key.removeprefix(_ISSUES_PREFIX).removesuffix(".json")
        issue = load_issue(state, identifier)
        if issue is not None and issue.summaries:
            entries.append(archived(issue))
    return newest_first(entries)
