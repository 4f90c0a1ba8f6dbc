"""A send that dies half-way (CONTRACT §3: "exactly one email per issue, even when a run
is retried or crashes half-way").

The first run is a subprocess whose outbox kills its own process with SIGKILL right
after the K-th message is written (the mail service accepted it, the ledger never
heard), or right before. The reruns are in-process, on the same folders, SQLite file
and outbox.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from digestpub.newsletter.send import SendOptions
from tests.newsletter_support import FROM_ADDRESS, SITE, TOKEN_KEY, Scenario, paper, recipients

CRASHING_RUN = r"""
import json
import os
import signal
import sys
from datetime import date

from digestpub.adapters.folder_store import FolderStore
from digestpub.adapters.sqlite_ledger import SqliteLedger
from digestpub.adapters.outbox_mailer import OutboxMailer
from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.newsletter.run import NewsletterContext, send_newsletter
from digestpub.newsletter.send import SendOptions
from digestpub.site import Site

config = json.loads(sys.argv[1])


class CrashingOutbox(OutboxMailer):
    calls = 0

    def send(self, sender, recipient, message):
        CrashingOutbox.calls += 1
        crash = CrashingOutbox.calls == config["crash_at"]
        if crash and config["when"] == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        name = super().send(sender, recipient, message)
        if crash and config["when"] == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return name


context = NewsletterContext(
    site=Site(**config["site"]),
    state=FolderStore(config["state"]),
    dest=FolderStore(config["dest"]),
    subscribers=SqliteSubscriberStore(config["db"]),
    ledger=SqliteLedger(config["db"]),
    mailer=CrashingOutbox(config["outbox"]),
    token_key=bytes.fromhex(config["token_key"]),
    from_address=config["from_address"],
)
send_newsletter(context, "daily", date.fromisoformat(config["day"]), SendOptions(send_rate=1000))
print("the run was meant to die", flush=True)
sys.exit(3)
"""

READERS = 6


def _crash(scenario: Scenario, day: str, when: str, crash_at: int) -> subprocess.CompletedProcess[str]:
    config = {
        "site": {
            "title": SITE.title,
            "description": SITE.description,
            "lang": SITE.lang,
            "base_url": SITE.base_url,
            "api_url": SITE.api_url,
        },
        "state": str(scenario.state_dir),
        "dest": str(scenario.dest_dir),
        "db": str(scenario.db_path),
        "outbox": str(scenario.outbox_dir),
        "token_key": TOKEN_KEY.hex(),
        "from_address": FROM_ADDRESS,
        "day": day,
        "when": when,
        "crash_at": crash_at,
    }
    return subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, json.dumps(config)],
        cwd=scenario.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _per_subscriber(scenario: Scenario, addresses: list[str]) -> dict[str, int]:
    got = recipients(scenario.outbox())
    assert set(got) <= set(addresses), f"mail to someone who should get none: {set(got) - set(addresses)}"
    return {address: got.get(address, 0) for address in addresses}


def _setup(tmp_path: Path) -> tuple[Scenario, list[str], dict[str, str]]:
    scenario = Scenario.create(tmp_path)
    scenario.publish([paper(1, ["mllm"]), paper(2, ["moe"])])
    addresses = [f"reader{number}@example.com" for number in range(READERS)]
    for address in addresses:
        scenario.subscribe(address, "")
    scenario.subscribe("robots@example.com", "robotics")
    scenario.subscribe("gone@example.com", "", status="unsubscribed")
    return scenario, addresses, scenario.ids_by_email()


def _crashed_run(scenario: Scenario, addresses: list[str], when: str, crash_at: int) -> tuple[date, str]:
    day = datetime.now(UTC).date()
    issue = f"daily-{day:%Y-%m-%d}"
    crashed = _crash(scenario, day.isoformat(), when, crash_at)
    assert crashed.returncode == -signal.SIGKILL, (crashed.returncode, crashed.stdout, crashed.stderr)
    written = crash_at if when == "after" else crash_at - 1
    assert len(scenario.outbox()) == written
    expected = {"sent": crash_at - 1, "claimed": 1}
    assert scenario.ledger.counts(issue) == {state: count for state, count in expected.items() if count}
    assert all(count <= 1 for count in _per_subscriber(scenario, addresses).values())
    return day, issue


def _one_each_or_unknown(scenario: Scenario, addresses: list[str], ids: dict[str, str], unknown: list[str]) -> None:
    assert len(unknown) == len(set(unknown)), f"listed twice: {unknown}"
    for address, count in _per_subscriber(scenario, addresses).items():
        assert count == 1 or (count == 0 and ids[address] in unknown), (
            f"{address}: {count} emails and {'' if ids[address] in unknown else 'not '}listed as unknown"
        )


@pytest.mark.parametrize("crash_at", [1, 4])
def test_a_crash_after_the_service_accepted_never_sends_twice(tmp_path: Path, crash_at: int) -> None:
    """Killed between the mail service accepting the K-th message and the ledger confirming it."""
    scenario, addresses, ids = _setup(tmp_path)
    day, issue = _crashed_run(scenario, addresses, "after", crash_at)

    # A plain rerun sends the rest; the message whose fate is unknown is not sent again.
    rerun = scenario.send(on=day)
    assert rerun.sent == READERS - crash_at
    _one_each_or_unknown(scenario, addresses, ids, rerun.unknown)
    assert set(_per_subscriber(scenario, addresses).values()) == {1}

    # Once the claim is old enough it is reported as unknown, and still not sent again.
    checked = scenario.send(on=day, options=SendOptions(send_rate=1000, unknown_after=timedelta(0)))
    assert checked.sent == 0
    (unknown,) = checked.unknown
    stopped = next(address for address, subscriber_id in ids.items() if subscriber_id == unknown)
    _one_each_or_unknown(scenario, addresses, ids, checked.unknown)

    # Asked to, a run sends the unknown one exactly once more, and nobody else.
    resend = scenario.send(on=day, options=SendOptions(send_rate=1000, resend_unknown=True, unknown_after=timedelta(0)))
    assert (resend.sent, resend.resent_unknown, resend.unknown) == (1, 1, [])
    expected = {address: 2 if address == stopped else 1 for address in addresses}
    assert _per_subscriber(scenario, addresses) == expected
    assert scenario.ledger.counts(issue) == {"sent": READERS}

    final = scenario.send(on=day, options=SendOptions(send_rate=1000, resend_unknown=True, unknown_after=timedelta(0)))
    assert (final.sent, final.unknown) == (0, [])
    assert _per_subscriber(scenario, addresses) == expected


def test_a_crash_before_sending_is_reported_by_the_next_run(tmp_path: Path) -> None:
    """Killed after claiming the 3rd subscriber, before its message went out: a plain rerun
    must either send it or list it as unknown, never count it as sent."""
    scenario, addresses, ids = _setup(tmp_path)
    day, _issue = _crashed_run(scenario, addresses, "before", 3)

    rerun = scenario.send(on=day)

    assert rerun.sent + len(rerun.unknown) == READERS - 2
    _one_each_or_unknown(scenario, addresses, ids, rerun.unknown)


def test_a_crash_before_sending_is_resent_once_when_asked(tmp_path: Path) -> None:
    scenario, addresses, ids = _setup(tmp_path)
    day, issue = _crashed_run(scenario, addresses, "before", 3)

    checked = scenario.send(on=day, options=SendOptions(send_rate=1000, unknown_after=timedelta(0)))
    assert checked.sent == READERS - 3
    assert len(checked.unknown) == 1
    _one_each_or_unknown(scenario, addresses, ids, checked.unknown)

    resend = scenario.send(on=day, options=SendOptions(send_rate=1000, resend_unknown=True, unknown_after=timedelta(0)))
    assert (resend.sent, resend.resent_unknown, resend.unknown) == (1, 1, [])
    assert _per_subscriber(scenario, addresses) == dict.fromkeys(addresses, 1)
    assert scenario.ledger.counts(issue) == {"sent": READERS}
