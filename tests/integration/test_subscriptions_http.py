"""The subscription use cases over HTTP, against ``digestpub serve`` on 127.0.0.1.

One ``digestpub serve`` subprocess (SQLite subscribers in a file, an outbox folder)
runs over a published digest for the whole module. Every loop is bounded in count
and time, and each test uses its own addresses.
"""

from __future__ import annotations

import random
import secrets
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path

import pytest
import requests

from digestpub.adapters.sqlite_ledger import SqliteLedger
from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.model import Subscriber
from digestpub.subscriptions.endpoints import form_token
from digestpub.subscriptions.subscribers import new_subscriber
from digestpub.subscriptions.tokens import make_token
from digestpub.words import words_for
from tests.cloud_support import parse_message
from tests.serve_support import free_port, run_digestpub, running_serve, serve_env
from tests.subscriber_contract import KNOWN_TAGS, no_address_in, publish_tags, run_together

TOKEN_KEY = "a-key-for-the-subscription-tests-0123456789"
TIMEOUT = 20


@dataclass(frozen=True)
class Served:
    base_url: str
    root: Path
    env: dict[str, str]

    def store(self) -> SqliteSubscriberStore:
        return SqliteSubscriberStore(self.root / "s.db")

    def link(self, route: str, subscriber: Subscriber, binding: str = "") -> str:
        purpose = route.split("?")[0]
        return f"{self.base_url}{route}?token={make_token(TOKEN_KEY.encode(), subscriber.id, purpose, binding)}"

    def form(self, url: str) -> str:
        return form_token(TOKEN_KEY.encode(), url.rpartition("token=")[2])

    def confirm(self, url: str, **fields: str) -> requests.Response:
        """What the confirm page's button sends."""
        return requests.post(url, data={"form": self.form(url), **fields}, timeout=TIMEOUT)

    def subscribe(self, address: str, **fields: str) -> requests.Response:
        data = {"email": address, "tags": "llm", "frequency": "daily", "lang": "en", **fields}
        return requests.post(f"{self.base_url}subscribe", data=data, timeout=TIMEOUT)

    def mail_to(self, address: str) -> list[EmailMessage]:
        outbox = self.root / "outbox"
        messages = [parse_message(path.read_bytes()) for path in sorted(outbox.glob("*.eml"))]
        return [message for message in messages if str(message["To"]).lower() == address.lower()]

    def wait_for_mail(self, address: str, count: int, settle: float = 0.5) -> list[EmailMessage]:
        """The messages to ``address`` once ``count`` arrived (sends follow the answer), and
        ``settle`` seconds more, to see that no more come."""
        deadline = time.monotonic() + 15
        while len(self.mail_to(address)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(settle)
        return self.mail_to(address)

    def digestpub(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return run_digestpub(self.root, self.env, *arguments)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("subscriptions")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/"
    publish_tags(root, KNOWN_TAGS, with_examples=True)
    env = serve_env(root, base_url, token_key=TOKEN_KEY)
    with running_serve(root, env, port):
        yield Served(base_url, root, env)


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def _confirm_link(message: EmailMessage, served: Served) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    return next(word for word in text.split() if word.startswith(f"{served.base_url}confirm?token="))


def _pending_with_request(served: Served, address: str, *, expires_in: timedelta) -> tuple[Subscriber, str]:
    """A pending subscriber with a live (or expired) confirmation request; its confirm link."""
    store = served.store()
    person = new_subscriber(address, "llm", "daily", "en")
    store.save(person)
    now = datetime.now(UTC)
    nonce = f"{secrets.token_urlsafe(16)}.{int((now + expires_in).timestamp())}"  # as the service makes them
    assert store.request_confirmation(person.id, nonce=nonce, expires_at=now + expires_in, now=now)
    return person, served.link("confirm", person, nonce)


# --- rate limits and constant-shape answers -----------------------------------------------------


def test_twenty_subscribes_for_one_address_send_one_confirmation(served: Served) -> None:
    address = _unique("Twenty")
    answers = set()
    for number in range(20):
        spelling = address.upper() if number % 2 else address  # one address, whatever its case
        response = served.subscribe(spelling)
        assert response.status_code == 200
        answers.add(response.text)
    assert len(answers) == 1, "every answer is the same page"
    assert len(served.wait_for_mail(address, 1)) == 1
    assert [s.email for s in served.store().iter_all() if s.email.lower() == address.lower()] == [address]


def test_subscribe_answers_alike_and_in_about_the_same_time(served: Served) -> None:
    """New, pending, confirmed and suppressed addresses: one page, close medians (the
    confirmation is sent after the answer)."""
    store = served.store()
    known: dict[str, str] = {}
    for status in ("pending", "confirmed", "bounced"):
        person = new_subscriber(_unique(status), "llm", "daily", "en", status=status)
        store.save(person)
        known[status] = person.email
    timings: dict[str, list[float]] = {case: [] for case in ("new", "pending", "confirmed", "bounced")}
    pages: set[str] = set()
    order = list(timings)
    shuffled = random.Random(13)
    for _ in range(20):
        # In a shuffled order, so a send following one answer is no more beside one case than another.
        shuffled.shuffle(order)
        for case in order:
            address = _unique("new") if case == "new" else known[case]
            started = time.perf_counter()
            response = served.subscribe(address)
            timings[case].append(time.perf_counter() - started)
            assert response.status_code == 200
            pages.add(response.text)
    assert len(pages) == 1
    medians = {case: statistics.median(values) for case, values in timings.items()}
    print("subscribe medians (ms):", {case: round(value * 1000, 2) for case, value in medians.items()})
    fastest, slowest = min(medians.values()), max(medians.values())
    assert slowest <= 1.5 * fastest + 0.01, medians


def test_a_formula_address_is_refused(served: Served) -> None:
    for address in ("=cmd|'/Ccalc'!A0@example.com", "+1@example.com", "-x@example.com"):
        response = served.subscribe(address)
        assert response.status_code == 400
        assert served.store().find(address) is None


# --- confirm links ------------------------------------------------------------------------------


def test_an_expired_link_offers_a_new_one_and_a_reused_link_says_already_confirmed(served: Served) -> None:
    late, expired_link = _pending_with_request(served, _unique("late"), expires_in=timedelta(seconds=-1))
    before = served.store().get(late.id)
    for answer in (requests.get(expired_link, timeout=TIMEOUT), served.confirm(expired_link)):
        assert answer.status_code == 410
        assert words_for("en")["confirm_expired"] in answer.text and 'value="renew"' in answer.text
    assert served.store().get(late.id) == before
    renewed = served.confirm(expired_link, action="renew")
    assert renewed.status_code == 200 and words_for("en")["check_inbox"] in renewed.text
    fresh = _confirm_link(served.wait_for_mail(late.email, 1, settle=0)[0], served)
    assert served.confirm(fresh).status_code == 200
    assert served.store().get(late.id).status == "confirmed"  # type: ignore[union-attr]

    person, link = _pending_with_request(served, _unique("once"), expires_in=timedelta(days=7))
    assert served.confirm(link).status_code == 200
    confirmed = served.store().get(person.id)
    assert confirmed is not None and confirmed.status == "confirmed"
    for again in (served.confirm(link), requests.get(link, timeout=TIMEOUT)):
        assert again.status_code == 200 and words_for("en")["already_confirmed"] in again.text
    assert served.store().get(person.id) == confirmed


def test_fetching_a_confirm_link_changes_nothing_only_the_button_confirms(served: Served) -> None:
    """Mail scanners fetch every link before the person sees it, some more than once."""
    person, link = _pending_with_request(served, _unique("scanned"), expires_in=timedelta(days=7))
    before = served.store().get(person.id)
    for _scan in range(3):
        page = requests.get(link, timeout=TIMEOUT)
        assert page.status_code == 200
        assert words_for("en")["confirm_button"] in page.text and 'method="post"' in page.text
        assert requests.head(link, timeout=TIMEOUT).status_code in (200, 405)
    assert requests.post(link, timeout=TIMEOUT).status_code == 403, "a POST without the page's form field"
    assert served.store().get(person.id) == before, "still pending: nobody clicked"

    clicked = served.confirm(link)
    assert clicked.status_code == 200 and words_for("en")["confirmed"] in clicked.text
    assert served.store().get(person.id).status == "confirmed"  # type: ignore[union-attr]
    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert requests.get(forged, timeout=TIMEOUT).status_code == 403
    assert served.confirm(forged).status_code == 403


def test_a_link_from_an_earlier_request_confirms_nothing_later(served: Served) -> None:
    address = _unique("earlier")
    assert served.subscribe(address).status_code == 200
    first = _confirm_link(served.wait_for_mail(address, 1, settle=0)[0], served)
    person = served.store().find(address)
    assert person is not None
    unsubscribe = served.link("unsubscribe", person)
    assert requests.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, timeout=TIMEOUT).status_code == 200
    assert requests.get(first, timeout=TIMEOUT).status_code in (200, 410)
    assert served.confirm(first).status_code == 410
    assert served.store().get(person.id).status == "unsubscribed"  # type: ignore[union-attr]


# --- an unsubscribe always wins -----------------------------------------------------------------


def test_unsubscribes_racing_saves_and_confirms_all_end_unsubscribed(served: Served) -> None:
    for number in range(20):
        person, confirm = _pending_with_request(served, _unique(f"race{number}"), expires_in=timedelta(days=7))
        unsubscribe, preferences = served.link("unsubscribe", person), served.link("preferences", person)
        form = served.form(preferences)
        results = run_together(
            [
                partial(requests.post, unsubscribe, data={"List-Unsubscribe": "One-Click"}, timeout=TIMEOUT),
                partial(
                    requests.post,
                    preferences,
                    data={"form": form, "tags": "rl", "frequency": "weekly"},
                    timeout=TIMEOUT,
                ),
                partial(served.confirm, confirm),
                partial(requests.post, preferences, data={"form": form, "tag-cv": "on"}, timeout=TIMEOUT),
            ]
        )
        statuses = [getattr(result, "status_code", result) for result in results]
        assert statuses[0] == 200 and statuses[1] in (200,) and statuses[3] in (200,), statuses
        final = served.store().get(person.id)
        assert final is not None and final.status == "unsubscribed", f"round {number}: {final}"


# --- the preference page ------------------------------------------------------------------------


def test_the_preference_page_of_an_unsubscribed_subscriber(served: Served) -> None:
    person = new_subscriber(_unique("gone"), "llm", "daily", "ru", status="unsubscribed")
    served.store().save(person)
    url = served.link("preferences", person)
    page = requests.get(url, timeout=TIMEOUT).text
    words = words_for("ru")
    assert words["status_unsubscribed"] in page
    assert words["resubscribe_button"] in page and 'value="resubscribe"' in page
    assert 'name="tag-llm"' not in page, "no tag form for someone who gets nothing"

    answer = requests.post(url, data={"form": served.form(url), "action": "resubscribe"}, timeout=TIMEOUT)
    assert answer.status_code == 200 and words["check_inbox"] in answer.text
    assert served.store().get(person.id).status == "unsubscribed"  # type: ignore[union-attr]
    link = _confirm_link(served.wait_for_mail(person.email, 1, settle=0)[0], served)
    assert served.confirm(link).status_code == 200
    assert served.store().get(person.id).status == "confirmed"  # type: ignore[union-attr]


def test_the_preference_page_offers_the_digest_tags_and_refuses_others(served: Served) -> None:
    person = new_subscriber(_unique("tags"), "llm", "daily", "ru", status="confirmed")
    served.store().save(person)
    url = served.link("preferences", person)
    page = requests.get(url, timeout=TIMEOUT).text
    assert words_for("ru")["status_confirmed"] in page
    for tag in ("llm", "rl", "cv", "mllm"):  # the published tags, those of the examples too
        assert f'name="tag-{tag}"' in page
    assert 'name="tag-llm" value="on" checked' in page
    for fields in ({"tag-nosuchtag": "on"}, {"tags": "llm nosuchtag"}):
        refused = requests.post(url, data={"form": served.form(url), **fields}, timeout=TIMEOUT)
        assert refused.status_code == 400
        assert "В дайджесте нет такого тега: nosuchtag" in refused.text
    assert served.store().get(person.id) == person
    saved = requests.post(url, data={"form": served.form(url), "tag-rl": "on", "tag-cv": "on"}, timeout=TIMEOUT)
    assert saved.status_code == 200
    assert served.store().get(person.id).tags == ("cv", "rl")  # type: ignore[union-attr]
    assert (
        requests.post(
            f"{served.base_url}subscribe", data={"email": _unique("new"), "tags": "nosuchtag"}, timeout=TIMEOUT
        ).status_code
        == 400
    )


# --- erasing a person ---------------------------------------------------------------------------


def test_subscribers_delete_erases_the_address_everywhere(served: Served, tmp_path: Path) -> None:
    address = _unique("Erase.Me")
    assert served.subscribe(address).status_code == 200
    served.confirm(_confirm_link(served.wait_for_mail(address, 1, settle=0)[0], served))
    person = served.store().find(address)
    assert person is not None and person.status == "confirmed"
    ledger = SqliteLedger(served.root / "s.db")
    ledger.claim("daily-2026-11-20", person.id, "run-1")
    ledger.confirm("daily-2026-11-20", person.id, "<id@example>")
    ledger.claim("daily-2026-11-21", person.id, "run-2")
    ledger.reject("daily-2026-11-21", person.id, f"550 5.1.1 <{address}>: user unknown")
    ledger.close()

    result = served.digestpub("subscribers", "delete", address.upper())
    assert result.returncode == 0, result.stderr
    assert "the subscriber was erased" in result.stdout
    assert served.store().find(address) is None
    assert no_address_in(served.root / "outbox", address)
    for name in ("s.db", "s.db-wal", "s.db-shm"):
        if (served.root / name).exists():
            assert no_address_in(served.root / name, address), f"{name} still holds the address"
    assert SqliteLedger(served.root / "s.db").counts("daily-2026-11-21") == {}

    again = tmp_path / "again.csv"
    again.write_text(f"email,tags,frequency,lang,status\n{address},llm,daily,en,confirmed\n", encoding="utf-8")
    imported = served.digestpub("subscribers", "import", str(again))
    assert imported.returncode == 0
    assert f"{again}:2: this address was erased" in imported.stdout
    assert served.store().find(address) is None


def test_subscribers_delete_of_something_that_is_not_an_address(served: Served) -> None:
    result = served.digestpub("subscribers", "delete", "not an address")
    assert result.returncode == 2
    assert "not an address" in result.stderr
