"""The editors' statistics: who reads, how that changed week by week, what each issue sent.

Read through the ports only (subscriber store, send ledger, the state's issue index),
so the same figures come from SQLite and from DynamoDB. Weeks are ISO weeks in the
site's time zone (the ``timezone`` setting), as its pages show dates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import chain

from digestpub.model import StatusChange
from digestpub.newsletter.archive_index import load_archive
from digestpub.ports import Ledger, ObjectStore, SubscriberStore

SUBSCRIBER_EVENTS = ("subscribed", "confirmed", "unsubscribed", "bounced", "complained")
"""New subscribers, then the statuses subscribers moved to."""
EVENTS = (*SUBSCRIBER_EVENTS, "sent")
"""The columns of a week: ``SUBSCRIBER_EVENTS``, and the emails the mail service took for
the issues dated in it."""


@dataclass(frozen=True, slots=True)
class Week:
    week: str
    """ISO week, ``2026-W49``."""
    counts: dict[str, int]
    """How many of each of ``EVENTS`` happened in it."""


@dataclass(frozen=True, slots=True)
class IssueSends:
    issue: str
    issue_date: date
    sent: int
    refused: int
    unknown: int
    """Claimed and never confirmed: the mail service may or may not have taken them."""


@dataclass(frozen=True, slots=True)
class Stats:
    subscribers: int
    by_status: dict[str, int]
    by_frequency: dict[str, int]
    """Confirmed subscribers: those an issue goes to."""
    by_lang: dict[str, int]
    """Confirmed subscribers."""
    weeks: list[Week]
    """Oldest first, ending with the current week; weeks with nothing in them are there, as zeros."""
    issues: list[IssueSends]
    """Newest first."""
    tags: list[tuple[str, int]]
    """The tags most confirmed subscribers follow, most first."""
    every_tag: int
    """Confirmed subscribers who chose no tag, so follow them all."""


def iso_week(moment: datetime | date, zone: tzinfo = UTC) -> str:
    """``2026-W49``: the week of a moment in ``zone``; of a date as it is."""
    year, week, _ = (moment.astimezone(zone) if isinstance(moment, datetime) else moment).isocalendar()
    return f"{year}-W{week:02d}"


def collect(
    subscribers: SubscriberStore,
    ledger: Ledger,
    state: ObjectStore,
    *,
    now: datetime,
    weeks: int = 12,
    issues: int = 20,
    tags: int = 10,
    zone: tzinfo = UTC,
) -> Stats:
    """Every figure, read once from each store: ``weeks`` weeks up to ``now`` (weeks of ``zone``),
    the newest ``issues``."""
    statuses: Counter[str] = Counter()
    frequencies: Counter[str] = Counter()
    langs: Counter[str] = Counter()
    followed: Counter[str] = Counter()
    created: list[datetime] = []
    every_tag = 0
    for subscriber in subscribers.iter_all():
        statuses[subscriber.status] += 1
        created.append(subscriber.created_at)
        if subscriber.status == "confirmed":
            frequencies[subscriber.frequency] += 1
            langs[subscriber.lang] += 1
            followed.update(subscriber.tags)
            every_tag += not subscriber.tags
    labels = week_labels(now, weeks, zone)
    sent = sends(ledger, state, newest=issues, weeks=labels)
    return Stats(
        subscribers=sum(statuses.values()),
        by_status=dict(statuses.most_common()),
        by_frequency=dict(frequencies.most_common()),
        by_lang=dict(langs.most_common()),
        weeks=weekly(labels, created, subscribers.iter_status_changes(), sent, zone),
        issues=sent[:issues],
        tags=followed.most_common(tags),
        every_tag=every_tag,
    )


def week_labels(now: datetime, weeks: int, zone: tzinfo = UTC) -> list[str]:
    """The ISO weeks of ``zone`` that end with the one of ``now``, oldest first."""
    return [iso_week(now - timedelta(weeks=back), zone) for back in range(weeks - 1, -1, -1)]


def weekly(
    labels: list[str],
    created: Iterable[datetime],
    changes: Iterable[StatusChange],
    sent: Iterable[IssueSends],
    zone: tzinfo = UTC,
) -> list[Week]:
    """Each week of ``labels`` with what happened in it; whatever falls outside them is left out."""
    table = {label: dict.fromkeys(EVENTS, 0) for label in labels}
    happened: Iterable[tuple[datetime | date, str, int]] = chain(
        ((moment, "subscribed", 1) for moment in created),
        ((change.at, change.status, 1) for change in changes),
        ((issue.issue_date, "sent", issue.sent) for issue in sent),
    )
    for moment, event, how_many in happened:
        counts = table.get(iso_week(moment, zone))
        if counts is not None and event in counts:
            counts[event] += how_many
    return [Week(label, counts) for label, counts in table.items()]


def sends(ledger: Ledger, state: ObjectStore, *, newest: int, weeks: Collection[str]) -> list[IssueSends]:
    """The ledger's rows of the newest issues built to be sent and of those dated in ``weeks``,
    newest first (an empty issue went to nobody and is not listed)."""
    rows = []
    for position, issue in enumerate(load_archive(state)):
        if position >= newest and iso_week(issue.issue_date) not in weeks:
            continue
        counts = ledger.counts(issue.id)
        rows.append(
            IssueSends(
                issue=issue.id,
                issue_date=issue.issue_date,
                sent=counts.get("sent", 0),
                refused=counts.get("rejected", 0),
                unknown=counts.get("claimed", 0),
            )
        )
    return rows


def as_json(stats: Stats) -> dict[str, object]:
    """The figures for machines: plain names and numbers, dates as ``YYYY-MM-DD``."""
    return {
        "subscribers": stats.subscribers,
        "by_status": stats.by_status,
        "confirmed_by_frequency": stats.by_frequency,
        "confirmed_by_lang": stats.by_lang,
        "weeks": [{"week": week.week, **week.counts} for week in stats.weeks],
        "issues": [
            {
                "issue": issue.issue,
                "date": issue.issue_date.isoformat(),
                "sent": issue.sent,
                "refused": issue.refused,
                "unknown": issue.unknown,
            }
            for issue in stats.issues
        ],
        "tags": [{"tag": tag, "subscribers": count} for tag, count in stats.tags],
        "every_tag": stats.every_tag,
    }
