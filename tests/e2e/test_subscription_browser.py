"""A reader's whole subscription, in a real browser against ``digestpub serve``.

The examples are published into a temporary folder; ``digestpub serve`` (a
subprocess) serves it and the subscription endpoints on one port, with
subscribers in SQLite and mail in an outbox folder. Headless Debian Chromium,
driven by Playwright, subscribes from a tag page, follows the confirmation
email's link, changes its preferences from the newsletter's link and
unsubscribes from its unsubscribe link. Every page is checked at 375 px: no
script, no horizontal overflow.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.model import Subscriber
from tests.cloud_support import parse_message
from tests.e2e.browser import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, playwright_sync_api
from tests.serve_support import free_port, publish_examples, run_digestpub, running_serve, serve_env

READER = "reader@example.com"

sync_api = playwright_sync_api()

pytestmark = BROWSER_MARKS


@dataclass(frozen=True)
class Local:
    """A published digest, ``digestpub serve`` running over it, and where its mail goes."""

    base_url: str
    env: dict[str, str]
    root: Path
    outbox: Path
    database: Path

    def digestpub(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return run_digestpub(self.root, self.env, *arguments)

    def mail(self) -> list[EmailMessage]:
        if not self.outbox.is_dir():
            return []
        return [parse_message(path.read_bytes()) for path in sorted(self.outbox.glob("*.eml"))]

    def subscriber(self) -> Subscriber:
        found = SqliteSubscriberStore(self.database).find(READER)
        assert found is not None, f"{READER} is not in {self.database}"
        return found


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/"
    env = serve_env(tmp_path, base_url)
    publish_examples(tmp_path, base_url)
    with running_serve(tmp_path, env, port):
        yield Local(base_url=base_url, env=env, root=tmp_path, outbox=tmp_path / "outbox", database=tmp_path / "s.db")


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Any]:
    """A 375 px wide page in headless Chromium."""
    home = tmp_path / "chromium-home"
    home.mkdir()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        )
        try:
            context = browser.new_context(viewport={"width": 375, "height": 800})
            yield context.new_page()
        finally:
            browser.close()


def _check_page(page: Any) -> None:
    """No script (but the search box's own, on the site's pages), no horizontal overflow at the phone's width."""
    assert page.locator("script").count() == page.locator("div.search + script").count() <= 1, page.url
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width, f"{page.url}: {scroll_width} px of content in a {inner_width} px window"


def _link(text: str, base_url: str, route: str) -> str:
    found = re.findall(re.escape(base_url) + route + r"\?token=[A-Za-z0-9_-]+", text)
    assert len(set(found)) == 1, f"no single {route} link in:\n{text}"
    return str(found[0])


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the message has no text part"
    return str(part.get_content())


def test_subscribe_confirm_change_preferences_and_unsubscribe(local: Local, phone: Any) -> None:
    # A tag's page has the subscribe form.
    response = phone.goto(local.base_url + "tags/mllm/")
    assert response is not None and response.status == 200
    assert phone.locator("h1").first.inner_text() == 'Подборка статей по тегу "mllm"'
    _check_page(phone)
    form = phone.locator("form.subscribe")
    assert form.count() == 1
    form.locator("input[name=email]").fill(READER)
    with phone.expect_navigation():
        form.locator("button[type=submit]").click()
    assert phone.url == local.base_url + "subscribe"
    assert "Почти готово" in phone.locator("h1").inner_text()
    _check_page(phone)

    subscriber = local.subscriber()
    assert (subscriber.status, subscriber.tags, subscriber.frequency) == ("pending", ("mllm",), "daily")

    # The confirmation email (sent just after the answer) and its link, which confirms.
    deadline = time.monotonic() + 15
    while not local.mail() and time.monotonic() < deadline:
        time.sleep(0.05)
    [confirmation] = local.mail()
    assert confirmation["To"].addresses[0].addr_spec == READER
    # Opening the link (as a mail scanner does first) shows a button; only the button confirms.
    confirm_url = _link(_text(confirmation), local.base_url, "confirm")
    response = phone.goto(confirm_url)
    assert response is not None and response.status == 200
    _check_page(phone)
    assert READER in phone.locator("main").inner_text()
    assert local.subscriber().status == "pending", "opening the link changes nothing"
    with phone.expect_navigation():
        phone.locator("form.subscribe button[type=submit]").click()
    assert "Подписка подтверждена" in phone.locator("h1").inner_text()
    _check_page(phone)
    assert local.subscriber().status == "confirmed"
    # The link again (the person's second click): said kindly, not refused.
    response = phone.goto(confirm_url)
    assert response is not None and response.status == 200
    assert "Подписка уже подтверждена" in phone.locator("h1").inner_text()

    # The daily issue goes to the new subscriber.
    run = local.digestpub("newsletter", "--frequency", "daily")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 sent" in run.stdout, run.stdout
    issues = [message for message in local.mail() if message["X-Digestpub-Issue"]]
    assert len(issues) == 1
    [issue] = issues
    assert issue["To"].addresses[0].addr_spec == READER
    text = _text(issue)
    preferences_url = _link(text, local.base_url, "preferences")
    unsubscribe_url = _link(text, local.base_url, "unsubscribe")
    assert str(issue["List-Unsubscribe"]) == f"<{unsubscribe_url}>"

    # Preferences: other tags (ticked among the digest's own), weekly.
    response = phone.goto(preferences_url)
    assert response is not None and response.status == 200
    _check_page(phone)
    assert "Подписка действует" in phone.locator("#status").inner_text()
    assert phone.locator("input[name=tag-mllm]").is_checked()
    phone.locator("input[name=tag-mllm]").uncheck()
    phone.locator("input[name=tag-rag]").check()
    phone.locator("input[name=tag-agents]").check()
    phone.locator("#frequency").select_option("weekly")
    with phone.expect_navigation():
        phone.locator("form.subscribe button[type=submit]").click()
    assert "Настройки сохранены" in phone.locator("h1").inner_text()
    _check_page(phone)
    subscriber = local.subscriber()
    assert (subscriber.tags, subscriber.frequency, subscriber.status) == (("agents", "rag"), "weekly", "confirmed")
    listed = local.digestpub("subscribers", "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"reader@example\.com\s*│\s*agents rag\s*│\s*weekly", listed.stdout), listed.stdout

    # Unsubscribe: the link shows a page with a button; only the button unsubscribes.
    response = phone.goto(unsubscribe_url)
    assert response is not None and response.status == 200
    _check_page(phone)
    assert READER in phone.locator("main").inner_text()
    assert local.subscriber().status == "confirmed", "opening the link changes nothing"
    with phone.expect_navigation():
        phone.locator("form.subscribe button[type=submit]").click()
    assert "Вы отписались" in phone.locator("h1").inner_text()
    _check_page(phone)
    assert local.subscriber().status == "unsubscribed"

    # The preference page says so, and offers to subscribe again (through confirmation).
    response = phone.goto(preferences_url)
    assert response is not None and response.status == 200
    _check_page(phone)
    assert "Вы отписаны" in phone.locator("#status").inner_text()
    assert phone.locator("input[name=tag-rag]").count() == 0
    with phone.expect_navigation():
        phone.locator("form.subscribe button[type=submit]").click()
    assert "Почти готово" in phone.locator("h1").inner_text()
    assert local.subscriber().status == "unsubscribed", "only the confirmation link changes it"
