"""Newsletter benchmark: 100,000 subscribers over 200 tag sets, an issue of 70 summaries.

    python bench/newsletter.py [--subscribers 100000] [--tag-sets 200] [--summaries 70]

Prints emails per second for building and personalising (messages made and
dropped), then for the real send loop into a throwaway outbox (SQLite ledger
claim and confirm, one .eml file each, pacing off), peak RSS, the rate of
sending to a local aiosmtpd against plain smtplib sending the same bytes, and
how long the send loop takes to deliver to a local aiosmtpd when 1% of the
recipients are answered 451 (try later), against a run where none are.
"""

from __future__ import annotations

import argparse
import random
import smtplib
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import summary_document, zipf_tags
from digestpub.adapters.outbox_mailer import OutboxMailer
from digestpub.adapters.smtp_mailer import SmtpMailer
from digestpub.adapters.sqlite_ledger import SqliteLedger
from digestpub.model import Subscriber, Summary
from digestpub.newsletter.issues import Issue
from digestpub.newsletter.message import MessageFactory
from digestpub.newsletter.render import IssueRenderer
from digestpub.newsletter.send import Sender, SendOptions
from digestpub.publish.ingest import SummaryReader
from digestpub.settings import Settings

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_issue(count: int, rng: random.Random) -> Issue:
    import json

    names, weights = zipf_tags(rng, 60)
    reader = SummaryReader()
    summaries: list[Summary] = []
    for number in range(count):
        tags = sorted(set(rng.choices(names, weights, k=rng.randint(1, 3))))
        moment = NOW - timedelta(minutes=number * 15)
        document = summary_document(rng, number, tags, moment)
        for record in reader.read_object("2026/11/25/x.json", json.dumps(document).encode()):
            if isinstance(record, Summary):
                summaries.append(record)
    summaries.sort(key=lambda summary: summary.sort_key, reverse=True)
    return Issue(
        id="daily-2026-11-25",
        frequency="daily",
        window_start=NOW - timedelta(days=1),
        window_end=NOW,
        created_at=NOW,
        summaries=summaries,
    )


def subscribers(count: int, tag_sets: list[tuple[str, ...]], rng: random.Random) -> Iterator[Subscriber]:
    for number in range(count):
        yield Subscriber(
            id=f"{number:032x}",
            email=f"reader{number}@example.com",
            tags=tag_sets[number % len(tag_sets)],
            frequency="daily",
            lang="ru" if number % 5 else "en",
            status="confirmed",
            created_at=NOW,
            updated_at=NOW,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--tag-sets", type=int, default=200)
    parser.add_argument("--summaries", type=int, default=70)
    parser.add_argument("--smtp-messages", type=int, default=2_000)
    parser.add_argument("--greylist-recipients", type=int, default=10_000)
    arguments = parser.parse_args()
    rng = random.Random(11)
    issue = make_issue(arguments.summaries, rng)
    names, weights = zipf_tags(rng, 60)
    tag_sets: list[tuple[str, ...]] = [()]
    while len(tag_sets) < arguments.tag_sets:
        candidate = tuple(sorted(set(rng.choices(names, weights, k=rng.randint(1, 3)))))
        if candidate not in tag_sets:
            tag_sets.append(candidate)
    site = Settings.load(base_url="https://digest.example/").site()
    key = b"benchmark-token-key-0123456789"

    # Build and personalise alone: every message made and dropped.
    renderer = IssueRenderer(site, issue, max_items=30)
    factory = MessageFactory(site, issue.id, "AI Digest <digest@digest.example>", key, now=NOW)
    built = size = 0
    started = time.perf_counter()
    for subscriber in subscribers(arguments.subscribers, tag_sets, rng):
        segment = renderer.segment(subscriber.tags, subscriber.lang)
        if not segment.empty:
            size += len(factory.build(segment, subscriber)[1])
            built += 1
    elapsed = time.perf_counter() - started
    print(
        f"build and personalise: {built:,} emails in {elapsed:.1f} s = {built / elapsed:,.0f} emails/s "
        f"(average message {size / built / 1024:.0f} KiB, segments rendered included)"
    )

    with tempfile.TemporaryDirectory(prefix="digestpub-bench-") as folder:
        root = Path(folder)
        renderer = IssueRenderer(site, issue, max_items=30)
        factory = MessageFactory(site, issue.id, "AI Digest <digest@digest.example>", key, now=NOW)
        ledger = SqliteLedger(root / "ledger.db")
        sender = Sender(
            renderer,
            factory,
            ledger,
            OutboxMailer(root / "outbox"),
            SendOptions(send_rate=1e9),
        )
        started = time.perf_counter()
        report = sender.run(subscribers(arguments.subscribers, tag_sets, rng))
        elapsed = time.perf_counter() - started
        sizes = [len((segment.html_head + segment.html_tail).encode()) for segment in renderer.segments()]
        print(
            f"send loop into an outbox: {report.sent:,} emails in {elapsed:.1f} s = "
            f"{report.sent / elapsed:,.0f} emails/s ({report.nothing_to_read:,} with nothing to read, "
            f"{report.segments} segments, largest HTML part {max(sizes) / 1024:.0f} KiB)"
        )
        print(f"peak RSS: {peak_rss_mb():.0f} MB")
        smtp_comparison(renderer, factory, tag_sets, arguments.smtp_messages, rng)
        greylisting(renderer, factory, tag_sets, arguments.greylist_recipients, rng, root)


def smtp_comparison(
    renderer: IssueRenderer,
    factory: MessageFactory,
    tag_sets: list[tuple[str, ...]],
    count: int,
    rng: random.Random,
) -> None:
    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    messages = []
    for subscriber in subscribers(count, tag_sets[1:], rng):
        segment = renderer.segment(subscriber.tags, subscriber.lang)
        if not segment.empty:
            messages.append((subscriber.email, factory.build(segment, subscriber)[1]))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Discard(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as plain:
            for recipient, message in messages:
                plain.sendmail(factory.envelope_sender, [recipient], message)
        baseline = len(messages) / (time.perf_counter() - started)
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        started = time.perf_counter()
        for recipient, message in messages:
            mailer.send(factory.envelope_sender, recipient, message)
        mailer.close()
        ours = len(messages) / (time.perf_counter() - started)
    finally:
        controller.stop()
    size = sum(len(message) for _, message in messages) / len(messages) / 1024
    print(
        f"SMTP to a local aiosmtpd, {len(messages):,} messages of {size:.0f} KiB: "
        f"smtplib {baseline:,.0f}/s, digestpub {ours:,.0f}/s = {ours / baseline:.0%}"
    )


class _Answering:
    """An aiosmtpd handler that answers 451 on RCPT for ``busy`` and keeps when it accepted the others."""

    def __init__(self, busy: set[str]) -> None:
        self.busy = busy
        self.last_accepted = 0.0
        self.accepted = 0

    async def handle_RCPT(
        self, server: object, session: object, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.busy:
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.accepted += 1
        self.last_accepted = time.perf_counter()
        return "250 OK"


def greylisting(
    renderer: IssueRenderer,
    factory: MessageFactory,
    tag_sets: list[tuple[str, ...]],
    count: int,
    rng: random.Random,
    root: Path,
) -> None:
    """The send loop into aiosmtpd: time to deliver to everyone else with 1% answered 451, and with none."""
    from aiosmtpd.controller import Controller

    everyone = subscribers(count * 2, tag_sets[1:], rng)
    readers = [person for person in everyone if not renderer.segment(person.tags, person.lang).empty][:count]
    busy = {subscriber.email for subscriber in rng.sample(readers, count // 100)}
    seconds: dict[str, float] = {}
    for name, answered_451 in (("none", set()), ("1%", busy)):
        handler = _Answering(answered_451)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        sender = Sender(
            renderer,
            factory,
            SqliteLedger(root / f"greylisting-{name}.db"),
            mailer,
            SendOptions(send_rate=1e9, backoff_first=0.2, retry_limit=1.0),
        )
        try:
            started = time.perf_counter()
            report = sender.run(readers)
        finally:
            mailer.close()
            controller.stop()
        seconds[name] = handler.last_accepted - started
        print(
            f"send loop into aiosmtpd, {len(readers):,} recipients, {len(answered_451):,} answered 451: "
            f"the other {handler.accepted:,} delivered in {seconds[name]:.1f} s "
            f"({report.sent:,} sent, {report.deferred:,} deferred)"
        )
    print(f"delivery to the others with 1% answered 451: {seconds['1%'] / seconds['none']:.2f}x the time with none")


if __name__ == "__main__":
    main()
