"""When the mail service fails (CONTRACT §3): nobody is lost, nobody is wrongly suppressed.

Real servers started here: aiosmtpd on 127.0.0.1 answering as each test tells it,
a closed port, moto's SES v2 in server mode; subscribers and the send ledger in one
SQLite file. Exit codes are checked on ``python -m digestpub`` as a process.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

from digestpub.adapters.ses_mailer import CLIENT_CONFIG, SesMailer
from digestpub.adapters.smtp_mailer import SmtpMailer
from digestpub.newsletter.send import SendOptions, SendReport
from tests.fault_proxy import Action, fault_proxy
from tests.newsletter_support import (
    Recorder,
    Scenario,
    free_port,
    localhost_certificate,
    paper,
    parse,
    recipients,
    run_cli,
)

StartSmtp = Callable[..., tuple[Recorder, str]]
QUICK = SendOptions(send_rate=1000, backoff_first=0.05, backoff_cap=0.2, retry_limit=0.6)


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    scenario = Scenario.create(tmp_path)
    scenario.publish([paper(1, ["mllm"]), paper(2, ["moe"])])
    return scenario


def readers(scenario: Scenario, count: int) -> list[str]:
    addresses = [f"reader{number:03d}@example.com" for number in range(count)]
    for address in addresses:
        scenario.subscribe(address, "")
    return addresses


def delivered(handler: Recorder) -> list[str]:
    return [rcpt for rcpts, _content in handler.accepted for rcpt in rcpts]


def statuses(scenario: Scenario) -> dict[str, str]:
    return {subscriber.email: subscriber.status for subscriber in scenario.subscribers.iter_all()}


def ledger_rows(scenario: Scenario) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(scenario.db_path) as connection:
        return list(connection.execute("SELECT subscriber_id, state, detail FROM ledger ORDER BY subscriber_id"))


def send_smtp(scenario: Scenario, url: str, options: SendOptions = QUICK) -> SendReport:
    mailer = SmtpMailer(url, timeout=5)
    try:
        return scenario.send(mailer, on=datetime.now(UTC).date(), options=options)
    finally:
        mailer.close()


SUMMARY = re.compile(
    r"(?P<sent>\d+) sent, \d+ skipped \(.*\), (?P<bounced>\d+) bounced, (?P<deferred>\d+) deferred, "
    r"(?P<failed>\d+) failed, (?P<unknown>\d+) unknown(?:; stopped, (?P<not_reached>\d+) not reached)?"
)


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    found = SUMMARY.search(result.stdout)
    assert found is not None, (result.stdout, result.stderr)
    return {name: int(value or 0) for name, value in found.groupdict().items()}


# --- one slow address, one bad address ----------------------------------------------------


def test_a_451_and_a_550_among_200_hold_up_nobody(scenario: Scenario, smtp_server: StartSmtp) -> None:
    addresses = readers(scenario, 200)
    slow, gone = addresses[3], addresses[7]
    handler, url = smtp_server(
        rcpt={slow: "451 4.7.1 greylisted, try again later", gone: "550 5.1.1 <" + gone + ">: user unknown"}
    )

    started = time.monotonic()
    report = send_smtp(scenario, url)
    took = time.monotonic() - started

    others = sorted(set(addresses) - {slow, gone})
    assert sorted(delivered(handler)) == others
    assert (report.sent, report.bounced, report.deferred, report.failed, report.stopped) == (198, 1, 1, 0, "")
    # Nobody waited on the slow address: it was tried again only after the other 198.
    tries = [moment for moment, command, address in handler.events if command == "RCPT" and address == slow]
    last_delivery = max(moment for moment, command, _ in handler.events if command == "ACCEPTED")
    assert len(tries) >= 2
    assert tries[1] > last_delivery, "the slow address was retried before the others were sent"
    assert took < QUICK.retry_limit + 10
    # The 550 is bounced and recorded without its address; the 451 is deferred: no row, still confirmed.
    ids = scenario.ids_by_email()
    rows = {subscriber_id: (state, detail) for subscriber_id, state, detail in ledger_rows(scenario)}
    assert rows[ids[gone]][0] == "rejected" and "5.1.1" in (rows[ids[gone]][1] or "")
    assert gone not in (rows[ids[gone]][1] or ""), "the ledger keeps the address in its reason"
    assert ids[slow] not in rows
    assert statuses(scenario)[gone] == "bounced"
    assert statuses(scenario)[slow] == "confirmed"
    assert sum(status == "confirmed" for status in statuses(scenario).values()) == 199

    # The next run, the slow server takes it: exactly that one message goes out.
    del handler.rcpt[slow]
    rerun = send_smtp(scenario, url)

    assert (rerun.sent, rerun.already_sent, rerun.deferred) == (1, 198, 0)
    assert sorted(delivered(handler)) == sorted([*others, slow])


def test_addresses_still_deferred_at_the_end_are_not_an_outage(scenario: Scenario, smtp_server: StartSmtp) -> None:
    """Retrying only the slow addresses, every answer is "try later": that is them, not the service."""
    addresses = readers(scenario, 30)
    slow = addresses[::6]
    handler, url = smtp_server(rcpt=dict.fromkeys(slow, "451 4.7.1 greylisted"))
    options = SendOptions(send_rate=1000, backoff_first=0.05, backoff_cap=0.2, outage_limit=1.0, retry_limit=2.5)

    started = time.monotonic()
    report = send_smtp(scenario, url, options)
    took = time.monotonic() - started

    assert (report.sent, report.deferred, report.stopped) == (25, 5, "")
    assert took < options.retry_limit + 5
    retries = sum(command == "RCPT" and address in slow for _, command, address in handler.events)
    assert retries > 2 * len(slow), "the slow addresses were not tried again"
    assert sorted(delivered(handler)) == sorted(set(addresses) - set(slow))


def test_twenty_refusals_in_a_row_stop_the_run_and_mark_nobody(scenario: Scenario, smtp_server: StartSmtp) -> None:
    addresses = readers(scenario, 30)
    handler, url = smtp_server(rcpt=dict.fromkeys(addresses, "550 5.1.1 user unknown"))

    report = send_smtp(scenario, url)

    assert report.stopped and "20 addresses in a row" in report.stopped
    assert (report.sent, report.bounced) == (0, 0)
    assert report.not_reached == 30
    assert sum(command == "RCPT" for _, command, _ in handler.events) == 20
    assert set(statuses(scenario).values()) == {"confirmed"}
    assert ledger_rows(scenario) == []

    handler.rcpt.clear()
    rerun = send_smtp(scenario, url)
    assert rerun.sent == 30
    assert recipients([parse(content) for _, content in handler.accepted]) == dict.fromkeys(addresses, 1)


@pytest.mark.parametrize(
    ("where", "answer", "outcome"),
    [
        ("rcpt", "550 5.1.1 no such mailbox", "bounced"),
        ("rcpt", "550 5.1.10 null MX", "bounced"),
        ("rcpt", "550 5.2.1 mailbox disabled", "bounced"),
        ("rcpt", "552 5.2.2 mailbox full", "deferred"),
        ("rcpt", "450 4.2.0 mailbox busy", "deferred"),
        ("rcpt", "550 5.7.1 relaying denied", "stopped"),
        ("rcpt", "554 5.7.1 client host rejected", "stopped"),
        ("mail", "553 5.7.1 sender not allowed", "stopped"),
        ("mail", "550 5.1.8 bad sender domain", "stopped"),
        ("data", "554 5.6.0 message refused by policy", "stopped"),
        ("data", "554 transaction failed", "stopped"),
    ],
)
def test_each_smtp_answer_has_one_meaning(
    scenario: Scenario, smtp_server: StartSmtp, where: str, answer: str, outcome: str
) -> None:
    first, *_rest = readers(scenario, 3)
    _handler, url = smtp_server(**({"mail": answer} if where == "mail" else {where: {first: answer}}))

    report = send_smtp(scenario, url, SendOptions(send_rate=1000, backoff_first=0.01, retry_limit=0.1))

    if outcome == "bounced":
        assert (report.bounced, report.sent, report.stopped) == (1, 2, "")
        assert statuses(scenario)[first] == "bounced"
    elif outcome == "deferred":
        assert (report.deferred, report.sent, report.bounced, report.stopped) == (1, 2, 0, "")
        assert statuses(scenario)[first] == "confirmed"
    else:
        assert report.stopped and answer.split()[0] in report.stopped
        assert report.bounced == 0
        assert set(statuses(scenario).values()) == {"confirmed"}
        assert [state for _, state, _ in ledger_rows(scenario)] == ["sent"] * report.sent


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # 127.0.0.1 only
def test_an_smtp_login_refused_stops_the_run_and_says_what_to_fix(
    scenario: Scenario, smtp_server: StartSmtp, tmp_path: Path
) -> None:
    addresses = readers(scenario, 6)
    certificate, key = localhost_certificate(tmp_path)
    handler, url = smtp_server(login=("digest", "right-password"), certificate=(certificate, key))
    host = url.removeprefix("smtp://")

    result = run_cli(
        scenario, "newsletter", "--mailer", f"smtp://digest:wrong-password@{host}", SSL_CERT_FILE=str(certificate)
    )

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert summary(result) == {"sent": 0, "bounced": 0, "deferred": 0, "failed": 1, "unknown": 0, "not_reached": 5}
    assert "refused the login" in " ".join(result.stderr.split())
    assert "wrong-password" not in result.stderr, "the password is printed"
    assert set(statuses(scenario).values()) == {"confirmed"}
    assert ledger_rows(scenario) == []

    rerun = run_cli(
        scenario, "newsletter", "--mailer", f"smtp://digest:right-password@{host}", SSL_CERT_FILE=str(certificate)
    )
    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    assert recipients([parse(content) for _, content in handler.accepted]) == dict.fromkeys(addresses, 1)
    # Over STARTTLS, as the server requires: its AUTH took both logins.
    assert {given for _mechanism, given in handler.logins} == {
        (b"digest", b"wrong-password"),
        (b"digest", b"right-password"),
    }


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_login_never_crosses_without_tls_and_a_relay_without_login_still_works(
    scenario: Scenario, smtp_server: StartSmtp, tmp_path: Path
) -> None:
    """A server (or a man in the middle) that offers AUTH but no STARTTLS never gets the password."""
    addresses = readers(scenario, 6)
    handler, url = smtp_server(login=("digest", "secret-password"))
    host = url.removeprefix("smtp://")

    result = run_cli(scenario, "newsletter", "--mailer", f"smtp://digest:secret-password@{host}")

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert handler.logins == [], "the login was sent without TLS"
    stderr = " ".join(result.stderr.split())
    assert f"SMTP server {host} offers no STARTTLS" in stderr and "smtps://" in stderr, stderr
    assert "secret-password" not in result.stderr
    assert summary(result)["failed"] == 1 and handler.accepted == []
    assert ledger_rows(scenario) == [] and set(statuses(scenario).values()) == {"confirmed"}

    # A relay that needs no login: STARTTLS is taken, its certificate unchecked (nobody trusts it here).
    relay, relay_url = smtp_server(certificate=localhost_certificate(tmp_path))
    rerun = run_cli(scenario, "newsletter", "--mailer", relay_url)
    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    assert recipients([parse(content) for _, content in relay.accepted]) == dict.fromkeys(addresses, 1)


def test_a_login_waits_for_a_certificate_that_verifies(
    scenario: Scenario, smtp_server: StartSmtp, tmp_path: Path
) -> None:
    readers(scenario, 3)
    handler, url = smtp_server(login=("digest", "secret-password"), certificate=localhost_certificate(tmp_path))
    host = url.removeprefix("smtp://")

    result = run_cli(scenario, "newsletter", "--mailer", f"smtp://digest:secret-password@{host}")

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert handler.logins == [], "the login was sent to a server whose certificate did not verify"
    assert "certificate verify failed" in " ".join(result.stderr.split())
    assert ledger_rows(scenario) == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtps_checks_the_certificate_and_logs_in_over_tls(
    scenario: Scenario, smtp_server: StartSmtp, tmp_path: Path
) -> None:
    addresses = readers(scenario, 3)
    certificate, key = localhost_certificate(tmp_path)
    handler, url = smtp_server(login=("digest", "secret-password"), certificate=(certificate, key), implicit_tls=True)
    login = url.replace("smtps://", "smtps://digest:secret-password@")

    untrusted = run_cli(scenario, "newsletter", "--mailer", login)

    assert untrusted.returncode == 1, (untrusted.stdout, untrusted.stderr)
    assert "certificate verify failed" in " ".join(untrusted.stderr.split())
    assert handler.logins == [] and handler.accepted == []

    trusted = run_cli(scenario, "newsletter", "--mailer", login, SSL_CERT_FILE=str(certificate))

    assert trusted.returncode == 0, (trusted.stdout, trusted.stderr)
    assert recipients([parse(content) for _, content in handler.accepted]) == dict.fromkeys(addresses, 1)


# --- the service is down ------------------------------------------------------------------


def test_smtp_on_a_closed_port_stops_at_once_and_a_rerun_sends_everything(
    scenario: Scenario, smtp_server: StartSmtp
) -> None:
    addresses = readers(scenario, 12)
    port = free_port()
    mailer = f"smtp://127.0.0.1:{port}"

    started = time.monotonic()
    result = run_cli(scenario, "newsletter", "--mailer", mailer, "--outage-limit", "30")
    took = time.monotonic() - started

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert took < 15, f"the run took {took:.1f} s against a closed port"
    assert summary(result) == {"sent": 0, "bounced": 0, "deferred": 0, "failed": 1, "unknown": 0, "not_reached": 11}
    stderr = " ".join(result.stderr.split())
    assert f"cannot reach SMTP server 127.0.0.1:{port}" in stderr
    assert "12 left to send" in stderr
    assert set(statuses(scenario).values()) == {"confirmed"}
    assert ledger_rows(scenario) == []

    handler, _url = smtp_server(port=port)
    rerun = run_cli(scenario, "newsletter", "--mailer", mailer)

    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    assert summary(rerun)["sent"] == 12
    assert recipients([parse(content) for _, content in handler.accepted]) == dict.fromkeys(addresses, 1)


def test_smtp_answering_421_stops_within_the_outage_limit_and_a_rerun_sends_exactly_the_rest(
    scenario: Scenario, smtp_server: StartSmtp
) -> None:
    addresses = readers(scenario, 40)
    handler, url = smtp_server(mail="421 4.3.2 service not available, closing channel", accept_first=15)
    limit = 2.0

    started = time.monotonic()
    result = run_cli(scenario, "newsletter", "--mailer", url, "--outage-limit", str(limit), "--retry-limit", "60")
    took = time.monotonic() - started

    assert result.returncode == 1, (result.stdout, result.stderr)
    counts = summary(result)
    assert counts["sent"] == 15
    assert counts["bounced"] == 0
    assert counts["deferred"] + counts["not_reached"] == 25
    assert "try later" in " ".join(result.stderr.split())
    first_refusal = [moment for moment, command, _ in handler.events if command == "MAIL"][15]
    last_try = handler.events[-1][0]
    assert last_try - first_refusal < limit + 3, f"tried for {last_try - first_refusal:.1f} s past a {limit} s limit"
    assert took < limit + 15
    assert set(statuses(scenario).values()) == {"confirmed"}
    assert {state for _, state, _ in ledger_rows(scenario)} == {"sent"}

    handler.mail = None
    rerun = run_cli(scenario, "newsletter", "--mailer", url)

    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    assert summary(rerun)["sent"] == 25
    assert recipients([parse(content) for _, content in handler.accepted]) == dict.fromkeys(addresses, 1)


def test_an_outbox_that_cannot_be_written_stops_the_run(scenario: Scenario) -> None:
    readers(scenario, 5)
    blocked = scenario.root / "not-a-folder"
    blocked.write_text("a file where the outbox should be")

    result = run_cli(scenario, "newsletter", "--mailer", f"outbox:{blocked}")

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert summary(result)["failed"] == 1
    assert "cannot write to the outbox" in " ".join(result.stderr.split())
    assert ledger_rows(scenario) == []


# --- a connection lost after the whole message: exactly once --------------------------------


def test_a_drop_after_data_for_one_message_in_ten_among_500_sends_nobody_two_copies_and_nobody_none(
    scenario: Scenario, smtp_server: StartSmtp
) -> None:
    addresses = readers(scenario, 500)
    dropped = set(addresses[3::10])
    handler, url = smtp_server(drop=dropped)
    mailer = ("--mailer", url, "--send-rate", "1000")

    result = run_cli(scenario, "newsletter", *mailer)

    assert result.returncode == 0, (result.stdout, result.stderr)
    assert sorted(handler.dropped) == sorted(dropped) and len(dropped) == 50
    assert summary(result) == {"sent": 450, "bounced": 0, "deferred": 0, "failed": 0, "unknown": 50, "not_reached": 0}
    assert "50 unknown: the server may have delivered them; `--resend-unknown` sends them again" in " ".join(
        result.stderr.split()
    )
    copies = recipients([parse(content) for _, content in handler.accepted])
    assert copies == dict.fromkeys(addresses, 1), "an address got two copies, or none"
    # The ledger keeps the 50 as claims nobody confirmed: a plain rerun sends nothing again.
    ids = scenario.ids_by_email()
    claimed = {subscriber_id for subscriber_id, state, _detail in ledger_rows(scenario) if state == "claimed"}
    assert claimed == {ids[address] for address in dropped}

    rerun = run_cli(scenario, "newsletter", *mailer)

    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    assert summary(rerun) == {"sent": 0, "bounced": 0, "deferred": 0, "failed": 0, "unknown": 50, "not_reached": 0}
    assert len(handler.accepted) == 500

    # Asked to, a run sends those 50 once more, and nobody else.
    resend = run_cli(scenario, "newsletter", *mailer, "--resend-unknown")

    assert resend.returncode == 0, (resend.stdout, resend.stderr)
    assert summary(resend)["sent"] == 50 and summary(resend)["unknown"] == 0
    resent = recipients([parse(content) for _, content in handler.accepted[500:]])
    assert resent == dict.fromkeys(dropped, 1)


def test_a_drop_before_the_message_went_out_is_try_later_and_the_same_run_sends_it_once(
    scenario: Scenario, smtp_server: StartSmtp
) -> None:
    addresses = readers(scenario, 10)
    handler, url = smtp_server(drop_at_rcpt={addresses[4]})

    report = send_smtp(scenario, url)

    assert (report.sent, report.deferred, report.unknown) == (10, 0, [])
    assert recipients([parse(content) for _, content in handler.accepted]) == dict.fromkeys(addresses, 1)
    tries = [address for _, command, address in handler.events if command == "RCPT"]
    assert tries.count(addresses[4]) == 2, "the dropped message was not tried again"
    assert [state for _id, state, _detail in ledger_rows(scenario)] == ["sent"] * 10


# --- SES ------------------------------------------------------------------------------------


@pytest.fixture
def ses(moto_server: str) -> Iterator[str]:
    """moto's SES with no identity verified yet; reset afterwards."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    try:
        yield moto_server
    finally:
        requests.post(f"{moto_server}/moto-api/reset", timeout=10)


def ses_recipients(endpoint: str) -> list[str]:
    data = requests.get(f"{endpoint}/moto-api/data.json", timeout=10).json()
    return [parse(record["raw_data"].encode())["To"].addresses[0].addr_spec for record in data["ses"]["RawMessage"]]


def test_ses_with_an_unverified_sender_stops_after_one_attempt_and_a_rerun_sends_everyone_once(
    scenario: Scenario, ses: str
) -> None:
    addresses = readers(scenario, 8)

    sender = ("--mailer", "ses://", "--from-address", "AI Digest <digest@digest.example>")
    result = run_cli(scenario, "newsletter", *sender)

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert summary(result) == {"sent": 0, "bounced": 0, "deferred": 0, "failed": 1, "unknown": 0, "not_reached": 7}
    stderr = " ".join(result.stderr.split())
    assert "MessageRejected" in stderr and "verify the From address" in stderr
    assert ses_recipients(ses) == []
    assert set(statuses(scenario).values()) == {"confirmed"}, "SES never bounces synchronously"
    assert ledger_rows(scenario) == []

    boto3.client("sesv2").create_email_identity(EmailIdentity="digest.example")
    rerun = run_cli(scenario, "newsletter", *sender)

    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    assert summary(rerun)["sent"] == 8
    assert sorted(ses_recipients(ses)) == sorted(addresses)
    assert set(statuses(scenario).values()) == {"confirmed"}


def test_ses_without_an_answer_after_the_request_is_unknown_and_sent_once(scenario: Scenario, ses: str) -> None:
    """A read timeout, or a connection closed, after SES took the request: it may have sent the message."""
    addresses = readers(scenario, 60)
    boto3.client("sesv2").create_email_identity(EmailIdentity="digest.example")
    sends = itertools.count()

    def every_tenth_send_unanswered(method: str, path: str) -> Action:
        if method != "POST" or "/outbound-emails" not in path:
            return "pass"
        number = next(sends)
        if number % 10 != 3:
            return "pass"
        return "apply_then_hang" if number % 20 == 3 else "apply_then_drop"

    with fault_proxy(ses, every_tenth_send_unanswered, hang=2.0) as (endpoint, faults):
        client = boto3.client(
            "sesv2",
            endpoint_url=endpoint,
            config=CLIENT_CONFIG.merge(Config(read_timeout=0.5)),
        )
        report = scenario.send(
            SesMailer(client=client), options=QUICK, from_address="AI Digest <digest@digest.example>"
        )

    assert Counter(ses_recipients(ses)) == dict.fromkeys(addresses, 1), "an address got two copies, or none"
    assert (faults.counts.get("apply_then_hang"), faults.counts.get("apply_then_drop")) == (3, 3)
    assert (report.sent, len(report.unknown), report.deferred, report.stopped) == (54, 6, 0, "")
    unanswered = [subscriber_id for subscriber_id, state, _detail in ledger_rows(scenario) if state == "claimed"]
    assert unanswered == report.unknown
