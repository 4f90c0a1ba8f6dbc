"""``digestpub stats`` as a process, on SQLite on disk and on moto's DynamoDB server.

Both stores are filled through their adapters with the same subscribers, status
changes and ledger rows, in the last three ISO weeks before now; the command must
print the same figures from each, and its HTML page must be valid and fit a phone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digestpub.adapters.folder_store import FolderStore
from digestpub.adapters.sqlite_ledger import SqliteLedger
from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.newsletter.archive_index import INDEX_KEY, ArchivedIssue
from digestpub.newsletter.stats import EVENTS, iso_week
from digestpub.ports import Ledger, SubscriberStore
from digestpub.subscriptions.subscribers import new_subscriber
from tests.conftest import html_problems
from tests.e2e.browser import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, playwright_sync_api

NOW = datetime.now(UTC)
WEEK = timedelta(weeks=1)
ISSUES = tuple((f"daily-{day.isoformat()}", day) for day in ((NOW - WEEK).date(), NOW.date()))
"""Oldest first: the first went to 3 readers and refused 1; the second went to 2 and left 2 unknown."""


def fill(store: SubscriberStore, ledger: Ledger, state: Path) -> None:
    """Seven subscribers over three weeks; two of them saved as they were before statuses had history."""

    def add(email: str, created: datetime, status: str, frequency: str, lang: str, tags: str) -> str:
        subscriber = new_subscriber(email, tags, frequency, lang, status, now=created)
        store.save(subscriber)
        return subscriber.id

    old = NOW - 2 * WEEK
    add("a@example.com", old, "confirmed", "daily", "ru", "llm rl")
    complained = add("f@example.com", old, "confirmed", "daily", "ru", "llm")
    confirmed_last_week = add("b@example.com", NOW - WEEK, "pending", "daily", "en", "llm")
    unsubscribed = add("d@example.com", NOW - WEEK, "confirmed", "weekly", "en", "cv")
    confirmed_now = add("c@example.com", NOW, "pending", "weekly", "ru", "")
    bounced = add("e@example.com", NOW, "confirmed", "daily", "ru", "llm")
    add("g@example.com", NOW, "pending", "daily", "ru", "rl")
    for person, moment in ((confirmed_last_week, NOW - WEEK), (confirmed_now, NOW)):
        assert store.request_confirmation(person, nonce="n", expires_at=moment + WEEK, now=moment)
        assert store.confirm(person, nonce="n", now=moment) is not None
    assert store.transition(unsubscribed, "unsubscribed", only_from=("confirmed",), now=NOW) is not None
    assert store.transition(complained, "complained", only_from=("confirmed",), now=NOW) is not None
    assert store.count_soft_bounce(bounced, limit=1, now=NOW) is not None
    for number, (issue, _day) in enumerate(ISSUES):
        for reader in range(4):
            assert ledger.claim(issue, f"reader-{reader}", "run")
            if reader < 3 - number:
                ledger.confirm(issue, f"reader-{reader}", f"<m{reader}@example>")
            elif number == 0:
                ledger.reject(issue, f"reader-{reader}", "5.1.1")
    ledger.flush()
    index = [
        ArchivedIssue(id=issue, frequency="daily", issue_date=day, built_at=NOW, count=3).model_dump(mode="json")
        for issue, day in reversed(ISSUES)
    ]
    FolderStore(state).put(INDEX_KEY, json.dumps(index).encode())


EXPECTED_WEEKS = [
    {"week": iso_week(NOW - 2 * WEEK), **dict.fromkeys(EVENTS, 0), "subscribed": 2},
    {"week": iso_week(NOW - WEEK), **dict.fromkeys(EVENTS, 0), "subscribed": 2, "confirmed": 1, "sent": 3},
    {"week": iso_week(NOW), **dict.fromkeys(EVENTS, 1), "subscribed": 3, "sent": 2},
]
EXPECTED = {
    "subscribers": 7,
    "by_status": {"confirmed": 3, "pending": 1, "unsubscribed": 1, "complained": 1, "bounced": 1},
    "confirmed_by_frequency": {"daily": 2, "weekly": 1},
    "confirmed_by_lang": {"ru": 2, "en": 1},
    "issues": [
        {"issue": ISSUES[1][0], "date": ISSUES[1][1].isoformat(), "sent": 2, "refused": 0, "unknown": 2},
        {"issue": ISSUES[0][0], "date": ISSUES[0][1].isoformat(), "sent": 3, "refused": 1, "unknown": 0},
    ],
    "tags": [{"tag": "llm", "subscribers": 2}, {"tag": "rl", "subscribers": 1}],
    "every_tag": 1,
}


def stats(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # The figures' week as the test's: a run across a Sunday midnight (UTC) counts the same weeks.
        [sys.executable, "-m", "digestpub", "stats", "--until", NOW.date().isoformat(), *arguments],
        env={**os.environ, "COLUMNS": "120", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def figures(env: dict[str, str]) -> dict[str, Any]:
    result = stats(env, "--json", "--weeks", "3")
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    database = tmp_path / "data" / "subscribers.db"
    fill(SqliteSubscriberStore(database), SqliteLedger(database), tmp_path / "state")
    return {"DIGESTPUB_SUBSCRIBERS": f"sqlite:///{database}", "DIGESTPUB_STATE": str(tmp_path / "state")}


def test_json_counts_statuses_weeks_issues_and_tags(sqlite_env: dict[str, str]) -> None:
    found = figures(sqlite_env)
    assert found.pop("weeks") == EXPECTED_WEEKS
    assert found == EXPECTED


def test_issues_older_than_the_weeks_count_only_among_the_newest(sqlite_env: dict[str, str]) -> None:
    result = stats(sqlite_env, "--json", "--weeks", "1", "--issues", "1")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert [week["sent"] for week in found["weeks"]] == [2]
    assert found["issues"] == EXPECTED["issues"][:1]
    wider = json.loads(stats(sqlite_env, "--json", "--weeks", "2", "--issues", "1").stdout)
    assert [week["sent"] for week in wider["weeks"]] == [3, 2], "an issue in the weeks counts, listed or not"
    assert wider["issues"] == EXPECTED["issues"][:1]


def test_dynamodb_gives_the_same_figures(moto_server: str, tmp_path: Path, sqlite_env: dict[str, str]) -> None:
    import boto3

    from digestpub.adapters.dynamodb_ledger import DynamoLedger, create_ledger_table
    from digestpub.adapters.dynamodb_subscribers import DynamoSubscriberStore, create_subscribers_table

    table = f"stats-{uuid.uuid4().hex[:12]}"
    client = boto3.client("dynamodb")
    create_subscribers_table(client, table)
    create_ledger_table(client, f"{table}-ledger")
    fill(DynamoSubscriberStore(table), DynamoLedger(f"{table}-ledger"), tmp_path / "cloud-state")
    env = {"DIGESTPUB_SUBSCRIBERS": f"dynamodb://{table}", "DIGESTPUB_STATE": str(tmp_path / "cloud-state")}
    assert figures(env) == figures(sqlite_env)


def test_table_in_the_terminal(sqlite_env: dict[str, str]) -> None:
    result = stats(sqlite_env, "--weeks", "2")
    assert result.returncode == 0, result.stderr
    lines = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    assert "7 subscribers" in lines
    for row in ("confirmed 3", "daily 2", "en 1", "llm 2", "(every tag: chose none) 1", f"{ISSUES[0][0]} 3 1 0"):
        assert row in lines, result.stdout
    assert f"{iso_week(NOW)} 3 1 1 1 1 2" in lines
    assert f"{iso_week(NOW - WEEK)} 2 1 0 0 0 3" in lines
    assert not any(line.startswith(iso_week(NOW - 2 * WEEK)) for line in lines), "--weeks 2 shows two weeks"


def test_an_empty_store_has_nothing_to_count(tmp_path: Path) -> None:
    env = {"DIGESTPUB_SUBSCRIBERS": f"sqlite:///{tmp_path / 's.db'}", "DIGESTPUB_STATE": str(tmp_path / "state")}
    found = figures(env)
    assert found["subscribers"] == 0 and found["issues"] == [] and found["tags"] == []
    assert [sum(v for k, v in week.items() if k != "week") for week in found["weeks"]] == [0, 0, 0]
    assert "no issue built yet" in stats(env).stdout


def test_failures_exit_with_their_codes(tmp_path: Path, sqlite_env: dict[str, str]) -> None:
    unwritable = stats(sqlite_env, "--html", str(tmp_path / "no-such-folder" / "stats.html"))
    assert unwritable.returncode == 2 and "--html" in unwritable.stderr
    damaged = Path(sqlite_env["DIGESTPUB_STATE"]) / INDEX_KEY
    damaged.write_text("{not json", encoding="utf-8")
    broken = stats(sqlite_env, "--json")
    assert broken.returncode == 1 and "damaged" in broken.stderr and broken.stdout == ""
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    not_a_database = stats({**sqlite_env, "DIGESTPUB_SUBSCRIBERS": f"sqlite:///{folder}"})
    assert not_a_database.returncode == 1, not_a_database.stderr
    assert stats(sqlite_env, "--weeks", "0").returncode == 2


@pytest.fixture
def page(tmp_path: Path, sqlite_env: dict[str, str]) -> Path:
    path = tmp_path / "stats.html"
    result = stats(sqlite_env, "--html", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {path}"
    return path


def test_html_page_is_valid_and_self_contained(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and "@font-face" not in html and "@import" not in html
    assert html.count('<svg class="chart"') == 7, "six weekly charts and the emails per issue"
    assert f"<td>{ISSUES[1][0]}</td><td>2</td>" in html and "<td>llm</td><td>2</td>" in html
    assert html_problems([page]) == []


@BROWSER_MARKS[0]
@BROWSER_MARKS[1]
def test_page_at_375_px(page: Path, tmp_path: Path) -> None:
    sync_api = playwright_sync_api()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env={**os.environ, "HOME": str(tmp_path)}
        )
        requests: list[str] = []
        try:
            for scheme in ("light", "dark"):
                context = browser.new_context(viewport={"width": 375, "height": 800}, color_scheme=scheme)
                tab = context.new_page()
                requests.clear()
                tab.on("request", lambda request: requests.append(request.url))
                tab.goto(page.as_uri())
                widths = tab.evaluate(
                    "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,"
                    " charts: [...document.querySelectorAll('svg.chart')].map(c => c.getBoundingClientRect().width),"
                    " tables: [...document.querySelectorAll('.wide')].map(w => w.scrollWidth - w.clientWidth)})"
                )
                shot = tmp_path / f"stats-375-{scheme}.png"
                tab.screenshot(path=str(shot), full_page=True)
                context.close()
                assert widths["scroll"] <= widths["inner"], widths
                assert len(widths["charts"]) == 7 and all(0 < width <= 375 for width in widths["charts"]), widths
                assert widths["tables"] == [0, 0], "the tables need no sideways scrolling either"
                assert shot.stat().st_size > 10_000
                assert requests == [page.as_uri()], "nothing is fetched from elsewhere"
        finally:
            browser.close()


def test_weeks_are_the_sites_weeks_in_its_timezone(tmp_path: Path) -> None:
    """Sunday 22:30 UTC is already Monday in Moscow: there, the subscription counts in the next week."""
    database = tmp_path / "subscribers.db"
    store = SqliteSubscriberStore(database)
    sunday_night = datetime(2026, 11, 29, 22, 30, tzinfo=UTC)  # ISO week 48 in UTC, Monday of week 49 at +03:00
    store.save(new_subscriber("late@example.com", "llm", "daily", "ru", "pending", now=sunday_night))
    env = {"DIGESTPUB_SUBSCRIBERS": f"sqlite:///{database}", "DIGESTPUB_STATE": str(tmp_path / "state")}

    def weeks(timezone: str) -> dict[str, int]:
        result = subprocess.run(
            [sys.executable, "-m", "digestpub", "stats", "--json", "--weeks", "2", "--until", "2026-12-01"],
            env={**os.environ, **env, "DIGESTPUB_TIMEZONE": timezone},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return {week["week"]: week["subscribed"] for week in json.loads(result.stdout)["weeks"]}

    assert weeks("UTC") == {"2026-W48": 1, "2026-W49": 0}
    assert weeks("Europe/Moscow") == {"2026-W48": 0, "2026-W49": 1}
