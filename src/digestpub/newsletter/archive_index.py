"""The index of issues in the state: one small document, updated when an issue is built.

The archive page and feed are rendered from it, so no run has to list and read
every issue. Only what the public may see is kept: id, frequency, day, count.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, TypeAdapter, ValidationError

from digestpub.errors import StorageError
from digestpub.model import Frequency
from digestpub.ports import ObjectStore

if TYPE_CHECKING:
    from digestpub.newsletter.issues import Issue

INDEX_KEY = "newsletter/archive.json"
_ISSUES_PREFIX = "newsletter/issues/"


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
    found = state.read(INDEX_KEY)
    if found is None:
        return _from_saved_issues(state)
    try:
        return _INDEX.validate_json(found[0])
    except ValidationError as error:
        raise StorageError(f"the newsletter's index of issues in {state.url} is damaged: {error}") from error


def record_issue(state: ObjectStore, issue: Issue) -> None:
    """Add a newly built issue to the index; the caller holds the state lock.

    An issue with nothing in it is sent to nobody and has no web copy, so it is not listed.
    """
    if not issue.summaries:
        return
    entries = {entry.id: entry for entry in load_archive(state)}
    entries[issue.id] = archived(issue)
    state.put(INDEX_KEY, _INDEX.dump_json(newest_first(entries.values())), content_type="application/json")


def newest_first(entries: Iterable[ArchivedIssue]) -> list[ArchivedIssue]:
    return sorted(entries, key=lambda entry: (entry.issue_date, entry.built_at, entry.id), reverse=True)


def _from_saved_issues(state: ObjectStore) -> list[ArchivedIssue]:
    """Issues built before the index existed: read once, then the index is written."""
    from digestpub.newsletter.issues import load_issue

    entries = []
    for info in state.list(_ISSUES_PREFIX):
        identifier = info.key.removeprefix(_ISSUES_PREFIX).removesuffix(".json")
        issue = load_issue(state, identifier)
        if issue is not None and issue.summaries:
            entries.append(archived(issue))
    return newest_first(entries)
