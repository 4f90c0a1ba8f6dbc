"""Sending an issue (CONTRACT §3-§4): who gets what, exactly once, over an outbox and SMTP.

Every scenario publishes real summaries into temporary folders with
``digestpub.publish.publish``, keeps subscribers and the send ledger in one SQLite
file, and sends with ``send_newsletter``. SMTP runs against aiosmtpd on 127.0.0.1;
the commands run as ``python -m digestpub`` in a temporary working folder.
"""

from __future__ import annotations

import os
import pty
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from digestpub.adapters.folder_store import FolderStore
from digestpub.adapters.outbox_mailer import OutboxMailer
from digestpub.adapters.smtp_mailer import SmtpMailer
from digestpub.adapters.sqlite_ledger import SqliteLedger
from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.errors import NewsletterError
from digestpub.newsletter.send import SendOptions, SendReport
from digestpub.publish import PublishOptions, publish
from digestpub.state.keys import SEND_LOCK_KEY
from digestpub.state.lock import StateLock
from tests.conftest import write_json
from tests.newsletter_support import (
    SITE,
    Recorder,
    Scenario,
    body_parts,
    by_recipient,
    cli_env,
    outbox_messages,
    paper,
    parse,
    recipients,
    run_cli,
)

PAPER_LINK = re.compile(r"https://aidigest\.example/papers/2611\.(\d{5})")


def papers_of(message: Any) -> set[int]:
    text, _html = body_parts(message)
    return {int(number) for number in PAPER_LINK.findall(text)}


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    return Scenario.create(tmp_path)


# --- who gets an email --------------------------------------------------------------


def test_nobody_gets_an_empty_email(scenario: Scenario) -> None:
    scenario.publish([paper(1, ["mllm"]), paper(2, ["vqa"])])
    scenario.subscribe("reader@example.com", "mllm")
    scenario.subscribe("nothing@example.com", "robotics")
    scenario.subscribe("gone@example.com", "", status="unsubscribed")
    scenario.subscribe("bounced@example.com", "", status="bounced")
    scenario.subscribe("complained@example.com", "", status="complained")
    scenario.subscribe("pending@example.com", "", status="pending")
    scenario.subscribe("weekly@example.com", "", frequency="weekly")

    report = scenario.send()

    assert recipients(scenario.outbox()) == {"reader@example.com": 1}
    assert report.sent == 1
    assert report.nothing_to_read == 1
    counts = scenario.ledger.counts(report.issue_id)
    assert counts == {"sent": 1}


def test_a_rerun_of_the_same_issue_sends_nothing(scenario: Scenario) -> None:
    scenario.publish([paper(number, ["mllm"]) for number in range(1, 4)])
    for number in range(5):
        scenario.subscribe(f"reader{number}@example.com", "mllm")
    now = datetime.now(UTC)

    first = scenario.send(now=now)
    second = scenario.send(now=now + timedelta(minutes=5), on=now.date())
    third = scenario.send(mailer=OutboxMailer(scenario.root / "other-outbox"), on=now.date())

    assert first.sent == 5
    assert (second.sent, second.already_sent) == (0, 5)
    assert (third.sent, third.already_sent) == (0, 5)
    assert recipients(scenario.outbox()) == {f"reader{number}@example.com": 1 for number in range(5)}
    assert outbox_messages(scenario.root / "other-outbox") == []


class SlowOutbox(OutboxMailer):
    """An outbox that takes a little while per message, so two runs interleave."""

    def send(self, sender: str, recipient: str, message: bytes) -> str:
        time.sleep(0.003)
        return super().send(sender, recipient, message)


def test_two_runs_at_once_send_each_subscriber_once(scenario: Scenario) -> None:
    scenario.publish([paper(1, ["mllm"]), paper(2, ["moe"])])
    wanted = {f"reader{number:02d}@example.com" for number in range(40)}
    for address in sorted(wanted):
        scenario.subscribe(address, "mllm" if address < "reader20" else "")
    barrier = threading.Barrier(2)
    reports: list[Any] = []
    errors: list[BaseException] = []
    day = datetime.now(UTC).date()

    def run(folder: str) -> None:
        try:
            context = {
                "ledger": SqliteLedger(scenario.db_path),
                "subscribers": SqliteSubscriberStore(scenario.db_path),
            }
            mailer = SlowOutbox(scenario.root / folder)
            barrier.wait(timeout=10)
            reports.append(scenario.send(mailer, on=day, **context))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f"outbox-{name}",)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors

    messages = outbox_messages(scenario.root / "outbox-a") + outbox_messages(scenario.root / "outbox-b")
    assert recipients(messages) == dict.fromkeys(sorted(wanted), 1)
    assert sum(report.sent for report in reports) == len(wanted)
    assert {report.issue_id for report in reports} == {f"daily-{day:%Y-%m-%d}"}
    assert scenario.ledger.counts(f"daily-{day:%Y-%m-%d}") == {"sent": len(wanted)}


# --- the issue window ---------------------------------------------------------------


def test_the_next_issue_holds_only_what_was_published_since(scenario: Scenario) -> None:
    scenario.subscribe("all@example.com", "")
    first_day = datetime.now(UTC).date()
    scenario.publish([paper(1, ["mllm"]), paper(2, ["vqa"])], day="2026/11/20")
    first = scenario.send(on=first_day)

    # An edit of paper 1 and two new papers come after the first issue.
    edit = paper(1, ["mllm"], updated_at="2026-11-21T10:00:00+00:00", title="Статья 1 (исправлено)")
    scenario.publish([edit, paper(3, ["moe"]), paper(4, ["mllm"])], day="2026/11/21")
    second = scenario.send(on=first_day + timedelta(days=1))

    assert (first.summaries, second.summaries) == (2, 2)
    mail = [message for message in scenario.outbox() if message["To"].addresses[0].addr_spec == "all@example.com"]
    issues = {str(message["X-Digestpub-Issue"]): papers_of(message) for message in mail}
    assert issues == {first.issue_id: {1, 2}, second.issue_id: {3, 4}}


def test_a_missed_day_loses_nothing(scenario: Scenario) -> None:
    scenario.subscribe("all@example.com", "")
    scenario.subscribe("moe@example.com", "moe")
    day_one = datetime.now(UTC).date()
    scenario.publish([paper(1, ["mllm"])], day="2026/11/20")
    scenario.send(on=day_one)
    scenario.publish([paper(2, ["moe"]), paper(3, ["vqa"])], day="2026/11/21")  # day two: no issue
    scenario.publish([paper(4, ["mllm"])], day="2026/11/22")

    third = scenario.send(on=day_one + timedelta(days=2))

    assert third.summaries == 3
    latest = [message for message in scenario.outbox() if str(message["X-Digestpub-Issue"]) == third.issue_id]
    got = {message["To"].addresses[0].addr_spec: papers_of(message) for message in latest}
    assert got == {"all@example.com": {2, 3, 4}, "moe@example.com": {2}}


def test_an_issue_older_than_the_last_is_refused(scenario: Scenario) -> None:
    scenario.subscribe("all@example.com", "")
    scenario.publish([paper(1, ["mllm"])])
    today = datetime.now(UTC).date()
    scenario.send(on=today)
    scenario.publish([paper(2, ["mllm"])], day="2026/11/21")
    scenario.send(on=today + timedelta(days=2))
    sent = len(scenario.outbox())

    with pytest.raises(NewsletterError):
        scenario.send(on=today + timedelta(days=1))
    assert len(scenario.outbox()) == sent


class _LogHook(FolderStore):
    """A state folder that runs ``before_log`` just before a publish writes its news log."""

    def __init__(self, root: Path, before_log: Callable[[], None]) -> None:
        super().__init__(root)
        self.before_log: Callable[[], None] | None = before_log

    def put(self, key: str, data: bytes, **options: Any) -> str:
        if key.startswith("catalog/log/") and self.before_log is not None:
            hook, self.before_log = self.before_log, None
            hook()
        return super().put(key, data, **options)


def test_an_issue_built_while_a_publish_runs_loses_nothing(scenario: Scenario) -> None:
    """The cron of ``newsletter`` can fire while a ``publish`` is still writing its state.

    Building an issue takes the publish lock, so it waits for the publish to finish
    and then holds what that publish logged.
    """
    scenario.subscribe("all@example.com", "")
    today = datetime.now(UTC).date()
    scenario.publish([paper(1, ["mllm"])], day="2026/11/20")
    reports: list[SendReport] = []
    started = threading.Event()

    def issue_now() -> None:
        started.set()
        reports.append(scenario.send(on=today))

    newsletter: list[threading.Thread] = []

    def start_issue() -> None:
        thread = threading.Thread(target=issue_now)
        newsletter.append(thread)
        thread.start()
        assert started.wait(10)
        time.sleep(0.3)  # the issue is now waiting for the publish lock

    for document in (paper(2, ["mllm"]), paper(3, ["vqa"])):
        write_json(scenario.source_dir, f"2026/11/21/{document['id']}.json", document)
    publish(scenario.source, scenario.dest, _LogHook(scenario.state_dir, start_issue), SITE, PublishOptions(workers=1))
    newsletter[0].join(timeout=60)
    reports.append(scenario.send(on=today + timedelta(days=1)))

    got: dict[int, int] = {}
    for message in scenario.outbox():
        for number in papers_of(message):
            got[number] = got.get(number, 0) + 1
    assert got == {1: 1, 2: 1, 3: 1}, (
        f"each paper must reach the reader in exactly one issue; the issues held {[r.summaries for r in reports]}"
    )


class _StopsBeforeItsHead(FolderStore):
    """A state folder that fails the head's write once: a publish stopped after logging its news."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.stopped = False

    def put(self, key: str, data: bytes, **options: Any) -> str:
        if key == "catalog/head.json" and not self.stopped:
            self.stopped = True
            raise KeyboardInterrupt("stopped before its head")
        return super().put(key, data, **options)


def test_a_summary_logged_again_after_a_stopped_publish_is_not_news_twice(scenario: Scenario) -> None:
    """A publish stopped before its head logged its news; the run after it logs the same again.

    The issue built in between carries those summaries; the next one must not.
    """
    scenario.subscribe("all@example.com", "")
    today = datetime.now(UTC).date()
    scenario.publish([paper(1, ["mllm"])], day="2026/11/20")
    write_json(scenario.source_dir, "2026/11/21/2611.00002.json", paper(2, ["vqa"]))
    stopping = _StopsBeforeItsHead(scenario.state_dir)
    with pytest.raises(KeyboardInterrupt):
        publish(scenario.source, scenario.dest, stopping, SITE, PublishOptions(full_scan=True, workers=1))
    first = scenario.send(on=today)

    scenario.publish([paper(3, ["moe"])], day="2026/11/22")  # also reads paper 2 again: the state never took it
    second = scenario.send(on=today + timedelta(days=1))

    mail = {str(message["X-Digestpub-Issue"]): papers_of(message) for message in scenario.outbox()}
    assert mail == {first.issue_id: {1, 2}, second.issue_id: {3}}


# --- SMTP ---------------------------------------------------------------------------


def _smtp_scenario(scenario: Scenario, count: int) -> list[str]:
    scenario.publish([paper(1, ["mllm"]), paper(2, ["moe"])])
    addresses = [f"reader{number}@example.com" for number in range(count)]
    for address in addresses:
        scenario.subscribe(address, "")
    return addresses


def test_smtp_delivers_everything_over_one_connection(
    scenario: Scenario, smtp_server: Callable[..., tuple[Recorder, str]]
) -> None:
    addresses = _smtp_scenario(scenario, 8)
    handler, url = smtp_server()
    mailer = SmtpMailer(url)
    try:
        report = scenario.send(mailer)
    finally:
        mailer.close()

    assert report.sent == 8
    assert sorted(rcpt for rcpts, _ in handler.accepted for rcpt in rcpts) == sorted(addresses)
    assert len(handler.sessions) == 1, f"{len(handler.sessions)} SMTP sessions for 8 messages"
    for _rcpts, content in handler.accepted:
        message = parse(content)
        assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        text, html = body_parts(message)
        assert PAPER_LINK.search(text) and PAPER_LINK.search(html)


def test_smtp_carries_a_message_byte_for_byte_lines_starting_with_a_dot_too(
    smtp_server: Callable[..., tuple[Recorder, str]],
) -> None:
    handler, url = smtp_server()
    message = b"Subject: dots\r\nTo: a@example.com\r\n\r\n.\r\n..two\r\nend.\r\n.last"
    mailer = SmtpMailer(url)
    try:
        mailer.send("digest@digest.example", "a@example.com", message)
        mailer.send("digest@digest.example", "b@example.com", message + b"\r\n")
    finally:
        mailer.close()

    assert [content for _rcpts, content in handler.accepted] == [message + b"\r\n", message + b"\r\n"]
    assert len(handler.sessions) == 1


def test_smtp_550_marks_that_subscriber_bounced_and_the_rest_still_go(
    scenario: Scenario, smtp_server: Callable[..., tuple[Recorder, str]]
) -> None:
    addresses = _smtp_scenario(scenario, 6)
    refused = addresses[2]
    handler, url = smtp_server(refuse={refused})
    mailer = SmtpMailer(url)
    try:
        report = scenario.send(mailer)
        rerun = scenario.send(mailer, on=datetime.now(UTC).date())
    finally:
        mailer.close()

    delivered = sorted(rcpt for rcpts, _ in handler.accepted for rcpt in rcpts)
    assert delivered == sorted(set(addresses) - {refused})
    assert (report.sent, report.bounced) == (5, 1)
    assert rerun.sent == 0
    subscriber = scenario.people[refused]
    with sqlite3.connect(scenario.db_path) as connection:
        row = connection.execute(
            "SELECT state, detail FROM ledger WHERE issue_id = ? AND subscriber_id = ?",
            (report.issue_id, subscriber.id),
        ).fetchone()
    assert row is not None and row[0] == "rejected"
    assert "550" in (row[1] or "")
    assert scenario.ledger.counts(report.issue_id) == {"sent": 5, "rejected": 1}
    stored = scenario.subscribers.get(subscriber.id)
    assert stored is not None and stored.status == "bounced"
    others = [scenario.subscribers.get(scenario.people[address].id) for address in addresses if address != refused]
    assert all(other is not None and other.status == "confirmed" for other in others)


def test_smtp_451_is_retried_until_delivered_once(
    scenario: Scenario, smtp_server: Callable[..., tuple[Recorder, str]]
) -> None:
    addresses = _smtp_scenario(scenario, 4)
    busy = addresses[1]
    handler, url = smtp_server(busy={busy: 3})
    mailer = SmtpMailer(url)
    try:
        report = scenario.send(mailer, options=SendOptions(send_rate=1000, backoff_first=0.01))
    finally:
        mailer.close()

    delivered = [rcpt for rcpts, _ in handler.accepted for rcpt in rcpts]
    assert sorted(delivered) == sorted(addresses)
    assert delivered.count(busy) == 1
    assert handler.data_attempts[busy] == 4
    assert (report.sent, report.failed, report.bounced, report.deferred) == (4, 0, 0, 0)
    assert scenario.ledger.counts(report.issue_id) == {"sent": 4}


# --- the commands -------------------------------------------------------------------

SEND_LINE = re.compile(
    r"(?P<issue>daily-\d{4}-\d{2}-\d{2}): (?P<count>\d+) (?P<what>would be sent \(dry run\)|sent), "
    r"\d+ skipped .* \d+ failed, \d+ unknown"
)


@pytest.fixture
def cli_scenario(scenario: Scenario) -> Scenario:
    scenario.publish([paper(1, ["mllm"]), paper(2, ["mllm", "vqa"]), paper(3, ["moe"])])
    scenario.subscribe("alice@example.com", "mllm")
    scenario.subscribe("bob@example.com", "", lang="en")
    scenario.subscribe("nobody@example.com", "robotics")
    return scenario


def _ledger_rows(scenario: Scenario) -> int:
    with sqlite3.connect(scenario.db_path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "ledger" not in tables:
            return 0
        return int(connection.execute("SELECT COUNT(*) FROM ledger").fetchone()[0])


def test_cli_dry_run_prints_a_summary_and_sends_nothing(cli_scenario: Scenario) -> None:
    result = run_cli(cli_scenario, "newsletter", "--frequency", "daily", "--dry-run")

    assert result.returncode == 0, result.stderr
    line = SEND_LINE.search(result.stdout)
    assert line is not None, result.stdout
    assert line["what"].startswith("would be sent")
    assert int(line["count"]) == 2
    assert outbox_messages(cli_scenario.outbox_dir) == []
    assert _ledger_rows(cli_scenario) == 0
    assert not (cli_scenario.state_dir / "newsletter").exists(), "a dry run saved the issue"
    # Publish wrote the newsletter's archive page (no issue yet); a web copy would be a folder beside it.
    published = [path.name for path in (cli_scenario.dest_dir / "newsletter").iterdir()]
    assert published == ["index.html"], "a dry run published a web copy"

    # The real run afterwards still sends the whole issue.
    real = run_cli(cli_scenario, "newsletter", "--frequency", "daily")
    assert real.returncode == 0, real.stderr
    sent = SEND_LINE.search(real.stdout)
    assert sent is not None and (sent["what"], int(sent["count"])) == ("sent", 2)
    assert recipients(outbox_messages(cli_scenario.outbox_dir)) == {"alice@example.com": 1, "bob@example.com": 1}


def test_cli_test_copy_goes_to_one_address_and_records_nothing(cli_scenario: Scenario) -> None:
    result = run_cli(cli_scenario, "newsletter", "--frequency", "daily", "--to", "someone@example.com")

    assert result.returncode == 0, result.stderr
    messages = outbox_messages(cli_scenario.outbox_dir)
    assert len(messages) == 1
    (message,) = messages
    assert message["To"].addresses[0].addr_spec == "someone@example.com"
    _text, html = body_parts(message)
    assert PAPER_LINK.search(html)
    assert _ledger_rows(cli_scenario) == 0

    # The copy consumed nothing: the real issue still reaches both readers.
    real = run_cli(cli_scenario, "newsletter", "--frequency", "daily")
    assert real.returncode == 0, real.stderr
    got = recipients(outbox_messages(cli_scenario.outbox_dir))
    assert got == {"someone@example.com": 1, "alice@example.com": 1, "bob@example.com": 1}


@pytest.mark.parametrize(("lang", "mark"), [("ru", "[Тест] "), ("en", "[Test] ")])
def test_cli_test_copy_says_so_in_its_subject(cli_scenario: Scenario, lang: str, mark: str) -> None:
    copy = run_cli(cli_scenario, "newsletter", "--frequency", "daily", "--to", "someone@example.com", "--lang", lang)
    assert copy.returncode == 0, copy.stderr
    (tested,) = outbox_messages(cli_scenario.outbox_dir)
    assert str(tested["Subject"]).startswith(mark), tested["Subject"]

    real = run_cli(cli_scenario, "newsletter", "--frequency", "daily")
    assert real.returncode == 0, real.stderr
    issued = [message for message in outbox_messages(cli_scenario.outbox_dir) if message is not tested]
    subjects = {str(message["Subject"]) for message in outbox_messages(cli_scenario.outbox_dir)}
    assert len(subjects) == 3 and len(issued) == 3
    assert [subject for subject in subjects if "[Тест]" in subject or "[Test]" in subject] == [str(tested["Subject"])]


def test_the_emails_tag_chips_read_as_separate_words(cli_scenario: Scenario) -> None:
    result = run_cli(cli_scenario, "newsletter", "--frequency", "daily")
    assert result.returncode == 0, result.stderr
    for message in outbox_messages(cli_scenario.outbox_dir):
        _text, html = body_parts(message)
        chips = lxml.html.fromstring(html).xpath("//p[a[contains(@class, 'tag')]]")
        words = [" ".join(paragraph.text_content().split()) for paragraph in chips]
        assert "mllm vqa" in words, words  # paper 2's chips, in both readers' emails


def test_cli_preview_writes_the_tag_issue(cli_scenario: Scenario) -> None:
    out = cli_scenario.root / "preview" / "F.html"
    result = run_cli(cli_scenario, "preview", "--tags", "mllm", "--out", str(out))

    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8").replace("&quot;", '"').replace("&#34;", '"')
    assert 'Подборка статей по тегу "mllm"' in html
    assert {int(number) for number in PAPER_LINK.findall(html)} == {1, 2}
    assert "<script" not in html.lower()
    assert outbox_messages(cli_scenario.outbox_dir) == []
    assert _ledger_rows(cli_scenario) == 0


def test_cli_rerun_sends_nothing(cli_scenario: Scenario) -> None:
    days = {f"daily-{datetime.now(UTC).date()}"}
    first = run_cli(cli_scenario, "newsletter", "--frequency", "daily")
    assert first.returncode == 0, first.stderr
    rerun = run_cli(cli_scenario, "newsletter", "--frequency", "daily")
    assert rerun.returncode == 0, rerun.stderr
    line = SEND_LINE.search(rerun.stdout)
    assert line is not None and (line["what"], int(line["count"])) == ("sent", 0), rerun.stdout
    assert len(outbox_messages(cli_scenario.outbox_dir)) == 2
    assert by_recipient(outbox_messages(cli_scenario.outbox_dir)).keys() == {"alice@example.com", "bob@example.com"}
    days.add(f"daily-{datetime.now(UTC).date()}")
    assert line["issue"] in days, "the issue is today's, in UTC"


@pytest.mark.parametrize(
    "command",
    [
        ("preview", "--tags", "robotics", "--out", "preview/nothing.html"),
        ("newsletter", "--to", "someone@example.com", "--tags", "robotics"),
    ],
    ids=["preview", "test-copy"],
)
def test_cli_an_email_with_nothing_to_read_is_refused_with_exit_2(
    cli_scenario: Scenario, command: tuple[str, ...]
) -> None:
    result = run_cli(cli_scenario, *command)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "holds nothing for the tags robotics" in " ".join(result.stderr.split())
    assert not (cli_scenario.root / "cwd" / "preview").exists(), "an empty preview was written"
    assert outbox_messages(cli_scenario.outbox_dir) == []


def test_cli_newsletter_settings_from_flags_and_a_config_after_the_subcommand(cli_scenario: Scenario) -> None:
    config = cli_scenario.root / "newsletter.toml"
    other_outbox = cli_scenario.root / "outbox-from-config"
    config.write_text(
        f'mailer = "outbox:{other_outbox}"\nmax_items = 1\nsite_title = "From the file"\n', encoding="utf-8"
    )

    result = run_cli(
        cli_scenario,
        "newsletter",
        "--frequency",
        "daily",
        "--config",
        str(config),
        "--site-title",
        "From a flag",
        DIGESTPUB_MAILER=None,
    )

    assert result.returncode == 0, (result.stdout, result.stderr)
    assert outbox_messages(cli_scenario.outbox_dir) == []
    messages = by_recipient(outbox_messages(other_outbox))
    assert messages.keys() == {"alice@example.com", "bob@example.com"}
    _text, html = body_parts(messages["alice@example.com"])
    assert "From a flag" in html and "From the file" not in html
    assert len(papers_of(messages["alice@example.com"])) == 1, "max_items from the file"


def test_cli_progress_on_a_terminal_shows_the_total_and_the_time_left(cli_scenario: Scenario) -> None:
    """On a terminal the bar reads "n/3" (every confirmed daily subscriber) and the time left at send_rate."""
    environment = cli_env(cli_scenario)
    environment.update({"TERM": "xterm", "COLUMNS": "200", "DIGESTPUB_SEND_RATE": "2"})
    cwd = cli_scenario.root / "cwd"
    cwd.mkdir(exist_ok=True)
    terminal, terminal_end = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "digestpub", "newsletter", "--frequency", "daily"],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal_end,
    )
    os.close(terminal_end)
    shown = bytearray()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # the process closed the terminal's other end
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    assert process.wait(timeout=30) == 0
    assert process.stdout is not None
    assert SEND_LINE.search(process.stdout.read().decode()), "no summary line on stdout"
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))
    assert re.search(r"\b0/3\b", text), f"no total in the bar: {text!r}"
    # Three to send at two a second: about two seconds, estimated before the first send.
    assert re.search(r"about 2 s left", text), f"no estimate at send_rate: {text!r}"


def test_two_cli_runs_at_once_stay_under_send_rate_together(scenario: Scenario, smtp_server: Any) -> None:
    """The second run waits for the first (then finds everyone sent): together they keep send_rate."""
    scenario.publish([paper(1, ["mllm"])])
    addresses = {f"reader{number}@example.com" for number in range(20)}
    for address in addresses:
        scenario.subscribe(address)
    recorder, url = smtp_server()
    rate = 5.0
    results: list[subprocess.CompletedProcess[str]] = []

    def one_run() -> None:
        results.append(
            run_cli(scenario, "newsletter", "--frequency", "daily", DIGESTPUB_MAILER=url, DIGESTPUB_SEND_RATE=str(rate))
        )

    runs = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=90)
    assert len(results) == 2 and all(result.returncode == 0 for result in results), results
    sent = sorted(int(match["count"]) for result in results if (match := SEND_LINE.search(result.stdout)))
    assert sent == [0, len(addresses)], [result.stdout for result in results]
    accepted = sorted((moment, address) for moment, command, address in recorder.events if command == "ACCEPTED")
    assert sorted(address for _moment, address in accepted) == sorted(addresses), "each reader gets one email"
    # Paced at MAIL, each right after the pacer's wait; from the second, as the first
    # also waits for the connection.
    starts = sorted(moment for moment, command, _address in recorder.events if command == "MAIL")
    assert len(starts) == len(addresses)
    measured = (len(starts) - 2) / (starts[-1] - starts[1])
    assert measured <= rate * 1.1, f"{measured:.1f} emails a second together, send_rate {rate}"


def test_a_cli_run_that_cannot_get_the_send_lock_exits_3_and_sends_nothing(cli_scenario: Scenario) -> None:
    lock = StateLock(
        FolderStore(cli_scenario.state_dir), ttl=timedelta(minutes=10), wait=timedelta(0), key=SEND_LOCK_KEY
    )
    with lock:
        result = run_cli(cli_scenario, "newsletter", "--frequency", "daily", DIGESTPUB_LOCK_TIMEOUT="0.3")
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "another newsletter run" in " ".join(result.stderr.split())
    assert outbox_messages(cli_scenario.outbox_dir) == []
    assert _ledger_rows(cli_scenario) == 0
    again = run_cli(cli_scenario, "newsletter", "--frequency", "daily", DIGESTPUB_LOCK_TIMEOUT="0.3")
    assert again.returncode == 0, again.stderr
    assert recipients(outbox_messages(cli_scenario.outbox_dir)) == {"alice@example.com": 1, "bob@example.com": 1}
