"""The send loop: each confirmed subscriber with something to read gets one email per issue.

For each subscriber, streamed: pick the segment (tag set and language), skip when
it is empty, claim the (issue, subscriber) pair in the ledger, build the message,
wait for the pace, send with retries, confirm. A run that stops between the mail
service accepting a message and the confirmation leaves a claim: the next run
reports it as "unknown" and sends it again only when asked.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from digestpub.errors import MailRejected, MailTransient
from digestpub.model import Subscriber
from digestpub.newsletter.message import MessageFactory
from digestpub.newsletter.render import IssueRenderer
from digestpub.ports import Ledger, Mailer

log = logging.getLogger("digestpub.newsletter")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SendOptions:
    send_rate: float = 10.0
    """Emails per second, across this run."""
    max_attempts: int = 8
    backoff_first: float = 0.5
    backoff_cap: float = 30.0
    dry_run: bool = False
    resend_unknown: bool = False
    unknown_after: timedelta = timedelta(0)
    """With ``resend_unknown``: resend only claims older than this (0: every one found)."""


class SendReport(BaseModel):
    issue_id: str
    run_id: str
    summaries: int = 0
    segments: int = 0
    sent: int = 0
    would_send: int = 0
    already_sent: int = 0
    nothing_to_read: int = 0
    failed: int = 0
    rejected: int = 0
    resent_unknown: int = 0
    unknown: list[str] = Field(default_factory=list)
    seconds: float = 0.0

    def summary_line(self) -> str:
        sent = f"{self.would_send} would be sent (dry run)" if self.would_send else f"{self.sent} sent"
        return (
            f"{self.issue_id}: {sent}, {self.already_sent + self.nothing_to_read} skipped "
            f"({self.already_sent} already sent, {self.nothing_to_read} with nothing to read), "
            f"{self.failed + self.rejected} failed, {len(self.unknown)} unknown"
        )


class Pacer:
    """At most ``rate`` sends a second, evenly spaced."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self._next = clock()

    def wait(self) -> None:
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = max(self._next + self.interval, now)


class Sender:
    def __init__(
        self,
        renderer: IssueRenderer,
        factory: MessageFactory,
        ledger: Ledger,
        mailer: Mailer,
        options: SendOptions,
        *,
        on_rejected: Callable[[Subscriber, str], None] | None = None,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.renderer = renderer
        self.factory = factory
        self.ledger = ledger
        self.mailer = mailer
        self.options = options
        self.on_rejected = on_rejected
        self.progress = progress
        self.sleep = sleep
        self.pacer = Pacer(options.send_rate, clock, sleep)
        self.issue = renderer.issue
        self.run_id = uuid.uuid4().hex
        self.report = SendReport(issue_id=self.issue.id, run_id=self.run_id, summaries=len(self.issue.summaries))

    def run(self, subscribers: Iterable[Subscriber], total: int = 0) -> SendReport:
        started = time.perf_counter()
        # Every claim another run left unconfirmed is reported; only those older than
        # unknown_after are resent with resend_unknown, so a live run is not doubled.
        started_at = datetime.now(UTC)
        unknown = set(self.ledger.unknown(self.issue.id, self.run_id, started_at))
        resendable = set(self.ledger.unknown(self.issue.id, self.run_id, started_at - self.options.unknown_after))
        try:
            for done, subscriber in enumerate(subscribers, start=1):
                self._one(subscriber, unknown, resendable)
                if self.progress is not None and (done % 100 == 0 or done == total):
                    self.progress("sending", done, total)
        finally:
            self.ledger.flush()
        self.report.unknown = sorted(unknown)
        self.report.segments = len(self.renderer.segments())
        self.report.seconds = round(time.perf_counter() - started, 3)
        if self.report.unknown:
            log.warning(
                "%d subscriber(s) of %s have an unknown outcome from an earlier run that stopped "
                "mid-send; not sent again (use --resend-unknown to send them)",
                len(self.report.unknown),
                self.issue.id,
            )
        return self.report

    def _one(self, subscriber: Subscriber, unknown: set[str], resendable: set[str]) -> None:
        segment = self.renderer.segment(subscriber.tags, subscriber.lang)
        if segment.empty:
            self.report.nothing_to_read += 1
            return
        if self.options.dry_run:
            self.factory.build(segment, subscriber)
            self.report.would_send += 1
            return
        if not self.ledger.claim(self.issue.id, subscriber.id, self.run_id):
            if not (
                self.options.resend_unknown
                and subscriber.id in resendable
                and self.ledger.reclaim(self.issue.id, subscriber.id, self.run_id)
            ):
                if subscriber.id not in unknown:
                    self.report.already_sent += 1
                return
            unknown.discard(subscriber.id)
            self.report.resent_unknown += 1
        message_id, message = self.factory.build(segment, subscriber)
        try:
            self._send(subscriber.email, message)
        except MailRejected as error:
            self.ledger.reject(self.issue.id, subscriber.id, str(error))
            self.report.rejected += 1
            log.warning("rejected for good: %s", error)
            if self.on_rejected is not None:
                self.on_rejected(subscriber, str(error))
            return
        except MailTransient as error:
            # Certainly not accepted: free the claim so the next run sends it.
            self.ledger.release(self.issue.id, subscriber.id)
            self.report.failed += 1
            log.error("gave up on %s after %d attempts: %s", subscriber.id, self.options.max_attempts, error)
            return
        self.ledger.confirm(self.issue.id, subscriber.id, message_id)
        self.report.sent += 1

    def _send(self, recipient: str, message: bytes) -> None:
        delay = self.options.backoff_first
        for attempt in range(1, self.options.max_attempts + 1):
            self.pacer.wait()
            try:
                self.mailer.send(self.factory.envelope_sender, recipient, message)
                return
            except MailTransient as error:
                if attempt == self.options.max_attempts:
                    raise
                log.info("attempt %d for %s failed (%s); retrying in %.1f s", attempt, recipient, error, delay)
                self.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.options.backoff_cap)
