"""The typed records that flow through digestpub, kept in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, NamedTuple

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from digestpub.text import markdown_to_safe_html


def sortable_time(moment: datetime) -> str:
    """A moment as UTC ISO text with microseconds: sorts as the moments do."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class Summary:
    """One paper summary as published: validated and cleaned.

    A plain slotted dataclass: a cold run holds tens of thousands.
    """

    id: str
    title: str
    summary_markdown: str
    """As written; ``summary_html`` is what is published."""
    url: str
    published_at: datetime
    lang: str
    source_key: str
    tags: tuple[str, ...] = ()
    tag_slugs: tuple[str, ...] = ()
    updated_at: datetime | None = None
    authors: tuple[str, ...] = ()
    paper_url: str | None = None
    code_url: str | None = None
    image_url: str | None = None
    source_line: int | None = None
    digest: str = ""
    """A hash of the source document: tells a rewrite with new text from a re-read."""
    sort_time: str = ""
    """``sortable_time(published_at)``, computed once when read: runs sort by it a lot."""
    _html: str | None = field(default=None, repr=False, compare=False)

    @property
    def summary_html(self) -> str:
        """The Markdown as safe HTML, rendered on first use and then kept.

        Not when the summary is read: most of the summaries a cold run reads are
        in no feed's newest, and rendering costs as much as reading.
        """
        html = self._html
        if html is None:
            html = markdown_to_safe_html(self.summary_markdown, self.url)
            # Frozen for everything that says what the summary is; this is a cache.
            object.__setattr__(self, "_html", html)
        return html

    @property
    def version(self) -> datetime:
        """The moment this version was written: the edit wins when it is newer."""
        return self.updated_at or self.published_at

    @property
    def sortable_version(self) -> str:
        """``sortable_time(version)``, from ``sort_time`` when the summary was never edited."""
        if self.updated_at is None:
            return self.sort_time or sortable_time(self.published_at)
        return sortable_time(self.updated_at)

    @property
    def sort_key(self) -> tuple[str, str]:
        """Newest first is descending order; the order ``publish`` sorts refs and window items in."""
        return (self.sort_time or sortable_time(self.published_at), self.id)

    def ref(self) -> SummaryRef:
        return SummaryRef(
            self.id,
            self.sortable_version,
            self.sort_key[0],
            self.digest,
            self.source_key,
            self.source_line,
            self.tags,
            self.tag_slugs,
        )


class SummaryRef(NamedTuple):
    """What the merge needs of a summary, without its text.

    A cold run's workers keep the summaries they read and send only these to the
    run: a tuple of short strings crosses between processes far more cheaply than a model.
    Times are ``sortable_time`` text.
    """

    id: str
    version: str
    published: str
    digest: str
    source_key: str
    source_line: int | None
    tags: tuple[str, ...]
    tag_slugs: tuple[str, ...]


Outcome = Literal["skipped", "cleaned", "warning"]


class Problem(BaseModel):
    """Something wrong with one input object or line, reported with where it was.

    ``skipped`` means the summary was not published; ``cleaned`` means it was
    published after unsafe or invalid parts were removed; ``warning`` means it
    was published as it is, but likely not as meant (a misspelt field name).
    """

    model_config = ConfigDict(frozen=True)

    key: str
    line: int | None = None
    outcome: Outcome = Field(default="skipped", validation_alias=AliasChoices("outcome", "kind"))
    """What publish did with the input (records written before it had this name call it ``kind``)."""
    reason: str
    count: int = 1
    """How many problems this one stands for: more than one when it sums up the lines of an
    object past the first few, which are reported one by one."""

    def where(self) -> str:
        return f"{self.key}:{self.line}" if self.line is not None else self.key


def count_problems(problems: list[Problem], outcome: Outcome) -> int:
    return sum(problem.count for problem in problems if problem.outcome == outcome)


class ProblemCounts:
    """How many inputs ``problems`` stand for, by outcome: a run's report and a check count them alike."""

    if TYPE_CHECKING:
        problems: list[Problem]

    @property
    def skipped(self) -> int:
        return count_problems(self.problems, "skipped")

    @property
    def cleaned(self) -> int:
        return count_problems(self.problems, "cleaned")

    @property
    def warnings(self) -> int:
        return count_problems(self.problems, "warning")


class ObjectInfo(BaseModel):
    """A listed object: its key and a version tag that changes when its bytes do."""

    model_config = ConfigDict(frozen=True)

    key: str
    etag: str
    size: int = 0


class TagInfo(BaseModel):
    """A tag as the index page shows it: the name as first written, and its count."""

    slug: str
    name: str
    count: int = 0
    newest: datetime | None = None


class HubFailure(BaseModel):
    """A WebSub hub that was not told of some changed feeds; its readers learn of them by polling."""

    hub: str
    feeds: int
    """How many changed feed URLs it was not told of."""
    reason: str


class PublishReport(BaseModel, ProblemCounts):
    """What one publish run did; saved as JSON in the state store and printed."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    objects_read: int = 0
    summaries_new: int = 0
    summaries_updated: int = 0
    summaries_deleted: int = 0
    """Summaries gone from the source (their object deleted, or their line removed), taken off the site."""
    summaries_unchanged: int = 0
    files_written: int = 0
    files_unchanged: int = 0
    """Files rendered again and found identical, so not written."""
    files_published: int = 0
    """Every file the site has after the run, as the state counts them, written or not."""
    full_scan: bool = False
    rendered_again: bool = False
    """The site's settings or templates changed since the last run: every file was rendered again."""
    seconds: dict[str, float] = Field(default_factory=dict)
    problems: list[Problem] = Field(default_factory=list)
    still_skipped: list[Problem] = Field(
        default_factory=list, validation_alias=AliasChoices("still_skipped", "still_broken")
    )
    """Inputs skipped by earlier runs that have not been fixed since."""
    feeds_announced: int = 0
    """Changed feed URLs the WebSub hubs were told of (each hub counts its own)."""
    hub_failures: list[HubFailure] = Field(default_factory=list)

    @property
    def skipped_inputs(self) -> list[Problem]:
        """Every input skipped and not fixed since: by this run, and by earlier ones."""
        skipped = [problem for problem in self.problems if problem.outcome == "skipped"]
        return sorted([*skipped, *self.still_skipped], key=lambda problem: (problem.key, problem.line or 0))

    @property
    def files_kept(self) -> int:
        """The site's files this run left as they were: rendered the same, or not touched at all."""
        return max(self.files_published - self.files_written, self.files_unchanged)

    def _written_as(self) -> str:
        return "rewritten (settings or templates changed)" if self.rendered_again else "written"

    def summary_line(self) -> str:
        line = (
            f"summaries: {self.summaries_new} new, {self.summaries_updated} updated, "
            f"{self.summaries_deleted} deleted, {self.skipped} skipped, {self.cleaned} cleaned; "
            f"files: {self.files_written} {self._written_as()}, {self.files_kept} unchanged"
        )
        if self.warnings:
            line += f"; {self.warnings} warning(s)"
        if self.still_skipped:
            line += f"; {count_problems(self.still_skipped, 'skipped')} earlier skipped still unfixed"
        if self.hub_failures:
            line += f"; {len(self.hub_failures)} WebSub hub(s) not told"
        return line


Frequency = Literal["daily", "weekly"]
SubscriberStatus = Literal["pending", "confirmed", "unsubscribed", "bounced", "complained"]
MAX_TAGS = 20
"""Tags one summary may carry (the contract's 20), and so one subscriber may follow."""
MAX_TAG_LENGTH = 100
"""Characters of one tag, in a summary or a subscription."""

SUBSCRIBER_LANGS = ("ru", "en")


class Subscriber(BaseModel):
    """A newsletter recipient. ``tags`` are slugs; none means every summary."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Stable and opaque (never the address): tokens and the send ledger use it."""
    email: str
    tags: tuple[str, ...] = ()
    frequency: Frequency = "daily"
    lang: Literal["ru", "en"] = "ru"
    status: SubscriberStatus = "pending"
    created_at: datetime
    updated_at: datetime
    soft_bounces: int = 0


class StatusChange(NamedTuple):
    """A subscriber's move to ``status`` at ``at``, as the subscriber store recorded it."""

    status: SubscriberStatus
    at: datetime


SUPPRESSED: frozenset[SubscriberStatus] = frozenset({"unsubscribed", "bounced", "complained"})
"""Statuses that no import changes: only the person's own double opt-in ends them."""


@dataclass(frozen=True, slots=True)
class ConfirmationLimits:
    """How many confirmation emails may go out: per address, and to everyone together."""

    min_interval: timedelta = timedelta(minutes=10)
    """At most one email to an address in this long."""
    per_day: int = 3
    """At most this many emails to an address in 24 hours."""
    per_hour: int = 500
    """At most this many emails to all addresses together in one hour."""
