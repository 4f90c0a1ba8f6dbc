"""The send loop: each confirmed subscriber with something to read gets one email per issue.

For each subscriber, streamed: pick the segment (tag set and language), skip when
it is empty, claim the (issue, subscriber) pair in the ledger, build the message,
wait for the pace, send once, and act on the mail service's answer:

- delivered: confirm;
- this address is refused (``AddressRefused``): record it and mark the subscriber
  bounced, unless it is the 20th refusal in a row: that is a setup error, and the
  run stops without marking any of them;
- try later (``MailTransient``): free the claim and put the subscriber at the back
  of the run, so a slow address never holds up the others; after everyone else they
  are tried again with backoff for a bounded time, and what is left is "deferred"
  for the next run. When every answer has been "try later" for ``outage_limit``
  seconds, the service is down and the run stops;
- the sender or message is refused (``MessageRefused``) or the service cannot be
  reached (``MailUnreachable``): the run stops at once and marks nobody;
- the whole message went out and no answer came back (``MailOutcomeUnknown``): the
  service may have delivered it, so the claim stays, "unknown", and the run goes on.

A stopped run frees its claims, so a rerun sends exactly the rest. A run that dies
between the mail service accepting a message and the confirmation leaves a claim,
as does a send with an unknown outcome: runs report it as "unknown" and send it
again only when asked (``--resend-unknown``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from digestpub.errors import AddressRefused, MailError, MailOutcomeUnknown, MailTransient, MailUnreachable
from digestpub.model import Subscriber
from digestpub.newsletter.message import MessageFactory
from digestpub.newsletter.render import IssueRenderer, Segment
from digestpub.ports import Ledger, Mailer

log = logging.getLogger("digestpub.newsletter")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SendOptions:
    send_rate: float = 10.0
    """Emails per second, across this run."""
    max_attempts: int = 8
    """Attempts per recipient in one run; past them the recipient is deferred to the next run."""
    backoff_first: float = 0.5
    backoff_cap: float = 30.0
    outage_limit: float = 60.0
    """Seconds of nothing but "try later" from the mail service after which the run stops."""
    retry_limit: float = 120.0
    """Seconds the run goes on retrying deferred recipients once everyone else was tried."""
    refusal_limit: int = 20
    """Address refusals in a row that stop the run: a setup error, not that many bad addresses."""
    dry_run: bool = False
    resend_unknown: bool = False
    unknown_after: timedelta = timedelta(0)
    """With ``resend_unknown``: resend only claims older than this (0: every one found)."""
    lock_wait: timedelta = timedelta(minutes=2)
    """How long a whole-issue send waits for another one to finish before it gives up."""


class SendReport(BaseModel):
    issue_id: str
    run_id: str
    summaries: int = 0
    segments: int = 0
    sent: int = 0
    would_send: int = 0
    already_sent: int = 0
    nothing_to_read: int = 0
    bounced: int = 0
    """Addresses refused for good: recorded in the ledger, subscribers marked bounced."""
    deferred: int = 0
    """Still answered "try later" at the end: claims freed, the next run sends them."""
    failed: int = 0
    """Messages in flight when the mail service refused the sender or could not be reached."""
    not_reached: int = 0
    """Subscribers with something to read that a stopped run did not try."""
    resent_unknown: int = 0
    unknown: list[str] = Field(default_factory=list)
    """Subscribers whose message may or may not have been delivered (this run's or an earlier
    one's): their claims stay, and only ``--resend-unknown`` sends them again."""
    stopped: str = ""
    """Why the run stopped before the end (empty when it did not): what to fix."""
    seconds: float = 0.0

    @property
    def left(self) -> int:
        """What a rerun would send (the unknown aside)."""
        return self.deferred + self.failed + self.not_reached

    def summary_line(self) -> str:
        sent = f"{self.would_send} would be sent (dry run)" if self.would_send else f"{self.sent} sent"
        line = (
            f"{self.issue_id}: {sent}, {self.already_sent + self.nothing_to_read} skipped "
            f"({self.already_sent} already sent, {self.nothing_to_read} with nothing to read), "
            f"{self.bounced} bounced, {self.deferred} deferred, {self.failed} failed, {len(self.unknown)} unknown"
        )
        if self.stopped:
            line += f"; stopped, {self.not_reached} not reached"
        return line


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
        on_bounced: Callable[[Subscriber, str], None] | None = None,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.renderer = renderer
        self.factory = factory
        self.ledger = ledger
        self.mailer = mailer
        self.options = options
        self.on_bounced = on_bounced
        self.progress = progress
        self.sleep = sleep
        self.clock = clock
        self.pacer = Pacer(options.send_rate, clock, sleep)
        self.issue = renderer.issue
        self.run_id = uuid.uuid4().hex
        self.report = SendReport(issue_id=self.issue.id, run_id=self.run_id, summaries=len(self.issue.summaries))
        self._waiting: list[tuple[float, int, int, Subscriber]] = []
        """Deferred recipients, claims freed: (when to try again, order, attempts so far, subscriber)."""
        self._order = itertools.count()
        self._refusals: list[tuple[Subscriber, str]] = []
        """Address refusals since the last delivery, claims still held: recorded once the streak ends."""
        self._failing_since: float | None = None
        self._failing = 0
        """Recipients answered "try later" at their first attempt since the last answer that was not."""
        self._unknown: set[str] = set()
        """Claims whose outcome is unknown: other runs' found at the start, and this run's own."""

    def run(self, subscribers: Iterable[Subscriber], total: int = 0) -> SendReport:
        started = time.perf_counter()
        # Every claim another run left unconfirmed is reported; only those older than
        # unknown_after are resent with resend_unknown, so a live run is not doubled.
        started_at = datetime.now(UTC)
        self._unknown = set(self.ledger.unknown(self.issue.id, self.run_id, started_at))
        resendable = set(self.ledger.unknown(self.issue.id, self.run_id, started_at - self.options.unknown_after))
        stream = iter(subscribers)
        if self.progress is not None:
            self.progress("sending", 0, total)
        try:
            for done, subscriber in enumerate(stream, start=1):
                self._first_try(subscriber, resendable)
                if self.progress is not None and (done % 100 == 0 or done == total):
                    self.progress("sending", done, total)
                if self.report.stopped:
                    break
            if not self.report.stopped:
                self._retry_deferred()
            if self.report.stopped:
                self.report.not_reached += sum(not self._segment(subscriber).empty for subscriber in stream)
            else:
                self._record_refusals()
        finally:
            self._free_refusals()
            self.ledger.flush()
        self.report.unknown = sorted(self._unknown)
        self.report.segments = len(self.renderer.segments())
        self.report.seconds = round(time.perf_counter() - started, 3)
        if self.report.unknown:
            log.warning(
                "%d subscriber(s) of %s have an unknown outcome (a send with no answer, or a run that "
                "stopped mid-send); not sent again (use --resend-unknown to send them)",
                len(self.report.unknown),
                self.issue.id,
            )
        return self.report

    def _segment(self, subscriber: Subscriber) -> Segment:
        return self.renderer.segment(subscriber.tags, subscriber.lang)

    def _first_try(self, subscriber: Subscriber, resendable: set[str]) -> None:
        segment = self._segment(subscriber)
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
                if subscriber.id not in self._unknown:
                    self.report.already_sent += 1
                return
            self._unknown.discard(subscriber.id)
            self.report.resent_unknown += 1
        self._attempt(subscriber, segment, attempts=0)

    def _retry_deferred(self) -> None:
        """Everyone answered "try later" gets more attempts, with backoff, for ``retry_limit`` seconds."""
        deadline = self.clock() + self.options.retry_limit
        while self._waiting and not self.report.stopped:
            ready_at = self._waiting[0][0]
            if ready_at > deadline:
                break
            if ready_at > self.clock():
                self.sleep(ready_at - self.clock())
            _ready, _order, attempts, subscriber = heapq.heappop(self._waiting)
            # The claim was freed while it waited: another run may have sent it meanwhile.
            if not self.ledger.claim(self.issue.id, subscriber.id, self.run_id):
                self.report.already_sent += 1
                continue
            self._attempt(subscriber, self._segment(subscriber), attempts)
        self.report.deferred += len(self._waiting)
        if self.report.deferred:
            log.warning(
                "%d subscriber(s) still answered try later; deferred: the next run sends them", self.report.deferred
            )

    def _attempt(self, subscriber: Subscriber, segment: Segment, attempts: int) -> None:
        """One send of one claimed message, and what its answer means for the run."""
        message_id, message = self.factory.build(segment, subscriber)
        self.pacer.wait()
        try:
            self.mailer.send(self.factory.envelope_sender, subscriber.email, message)
        except AddressRefused as error:
            self._service_answered()
            self._refusals.append((subscriber, str(error)))
            if len(self._refusals) >= self.options.refusal_limit:
                self._stop(
                    f"{len(self._refusals)} addresses in a row were refused ({error}): that is the mail "
                    "setup, not the addresses; nobody was marked bounced. Check the mailer and from_address"
                )
            return
        except MailUnreachable as error:
            self._give_up(subscriber, str(error))
            return
        except MailOutcomeUnknown as error:
            # The claim stays, so neither this run nor a rerun sends it again unless asked.
            self._unknown.add(subscriber.id)
            log.warning("unknown outcome for %s: %s", subscriber.id, error)
            return
        except MailTransient as error:
            self.ledger.release(self.issue.id, subscriber.id)
            self._defer(subscriber, attempts + 1, error)
            return
        except MailError as error:
            self._give_up(subscriber, str(error))
            return
        self.ledger.confirm(self.issue.id, subscriber.id, message_id)
        self.report.sent += 1
        self._service_answered()
        self._record_refusals()

    def _defer(self, subscriber: Subscriber, attempts: int, error: MailTransient) -> None:
        """To the back of the run; and when nothing but "try later" comes for long, stop."""
        log.info("try later for %s (attempt %d): %s", subscriber.id, attempts, error)
        now = self.clock()
        if attempts >= self.options.max_attempts:
            self.report.deferred += 1
        else:
            delay = min(self.options.backoff_first * 2 ** (attempts - 1), self.options.backoff_cap)
            ready_at = now + delay * (0.5 + random.random())
            heapq.heappush(self._waiting, (ready_at, next(self._order), attempts, subscriber))
        if attempts > 1:
            return  # a retry of a deferred address: that address, not the service
        # Recipients tried for the first time, one after another, all answered "try later":
        # the service is struggling. Slow down, waking in time to stop at the outage limit.
        if self._failing_since is None:
            self._failing_since = now
        self._failing += 1
        failing_for = now - self._failing_since
        if self._failing > 1 and failing_for >= self.options.outage_limit:
            self._stop(
                f"the mail service answered try later to every message for {failing_for:.0f} s "
                f"(last: {error}); a rerun sends the rest once it works"
            )
        elif self._failing > 1:
            pause = min(self.options.backoff_first * 2 ** (self._failing - 2), self.options.backoff_cap)
            self.sleep(max(0.0, min(pause, self._failing_since + self.options.outage_limit - now)))

    def _service_answered(self) -> None:
        """An answer other than "try later": the service is up."""
        self._failing_since = None
        self._failing = 0

    def _give_up(self, subscriber: Subscriber, reason: str) -> None:
        self.ledger.release(self.issue.id, subscriber.id)
        self.report.failed += 1
        self._stop(reason)

    def _stop(self, reason: str) -> None:
        self.report.stopped = reason
        self.report.deferred += len(self._waiting)
        self._waiting.clear()
        self._free_refusals()
        log.error("the run stopped: %s", reason)

    def _record_refusals(self) -> None:
        """The streak of refusals ended with a delivery (or the run's end): they were the addresses."""
        for subscriber, reason in self._refusals:
            self.ledger.reject(self.issue.id, subscriber.id, reason)
            self.report.bounced += 1
            log.warning("address of %s refused for good: %s", subscriber.id, reason)
            if self.on_bounced is not None:
                self.on_bounced(subscriber, reason)
        self._refusals.clear()

    def _free_refusals(self) -> None:
        """A stopped run marks nobody: the refusals of its last streak are tried again next run."""
        for subscriber, _reason in self._refusals:
            self.ledger.release(self.issue.id, subscriber.id)
        self.report.not_reached += len(self._refusals)
        self._refusals.clear()
