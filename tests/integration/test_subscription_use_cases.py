"""The subscription use cases on a SQLite file: logs name no address, a failed send
changes no answer, and the SES events go through the same transitions."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.errors import InvalidToken, MailTransient
from digestpub.model import ConfirmationLimits, TagInfo
from digestpub.settings import Settings
from digestpub.subscriptions.subscribers import UnknownTags, import_csv
from digestpub.subscriptions.tokens import make_token
from digestpub.subscriptions.use_cases import Subscriptions, apply_ses_notification
from tests.cloud_support import parse_message, ses_bounce, ses_complaint

KEY = b"k" * 32
ADDRESS = "Log.Reader@example.com"


class RecordingMailer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[bytes] = []
        self.fail = fail

    def send(self, sender: str, recipient: str, message: bytes) -> str:
        if self.fail:
            raise MailTransient(f"451 try later for {recipient}")
        self.sent.append(message)
        return "id"

    def close(self) -> None:
        return None


def _use_cases(tmp_path: Path, mailer: RecordingMailer) -> Subscriptions:
    return Subscriptions(
        Settings.load().site(),
        SqliteSubscriberStore(tmp_path / "s.db"),
        mailer,
        KEY,
        "Digest <digest@example.com>",
        tags=lambda: {"llm": TagInfo(slug="llm", name="LLM", count=3)},
    )


def _confirm_token(message: bytes) -> str:
    text = parse_message(message).get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    return next(word for word in text.split() if "confirm?token=" in word).rpartition("token=")[2]


def test_no_log_line_names_an_address(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="digestpub")
    mailer = RecordingMailer()
    use = _use_cases(tmp_path, mailer)
    use.subscribe(ADDRESS, "llm", "daily", "en")
    use.subscribe(ADDRESS.upper(), "llm", "daily", "en")  # rate-limited
    person = use.confirm(_confirm_token(mailer.sent[0])).subscriber
    use.update_preferences(make_token(KEY, person.id, "preferences"), "", "weekly", "ru")
    use.unsubscribe(make_token(KEY, person.id, "unsubscribe"))
    apply_ses_notification(use, json.dumps(ses_bounce(ADDRESS, "Transient")))
    apply_ses_notification(use, json.dumps(ses_bounce(ADDRESS)))
    apply_ses_notification(use, json.dumps(ses_complaint(ADDRESS)))
    assert use.store.get(person.id).status == "complained"  # type: ignore[union-attr]
    assert len(caplog.records) >= 5
    for record in caplog.records:
        line = record.getMessage().lower()
        assert "log.reader" not in line and "@" not in line, line
    assert any(person.id[:12] in record.getMessage() for record in caplog.records)


def test_a_failed_confirmation_send_is_logged_without_the_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digestpub")
    use = _use_cases(tmp_path, RecordingMailer(fail=True))
    use.subscribe(ADDRESS, "llm", "daily", "en")  # answers as always
    assert use.store.find(ADDRESS) is not None
    failures = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(failures) == 1 and "MailTransient" in failures[0].getMessage()
    assert "log.reader" not in failures[0].getMessage().lower()


def test_a_confirm_link_without_a_request_confirms_nothing(tmp_path: Path) -> None:
    """Links made before confirmation requests were bound (no nonce) confirm nothing."""
    use = _use_cases(tmp_path, RecordingMailer())
    use.subscribe(ADDRESS, "llm", "daily", "en")
    person = use.store.find(ADDRESS)
    assert person is not None
    unbound = make_token(KEY, person.id, "confirm")
    assert use.confirmation(unbound).state == "expired"
    assert use.confirm(unbound).state == "expired"
    assert use.store.get(person.id).status == "pending"  # type: ignore[union-attr]


def test_a_confirm_link_is_open_until_confirmed_then_already_confirmed(tmp_path: Path) -> None:
    """Looking at a link changes nothing; confirming it twice is "already", never a refusal."""
    mailer = RecordingMailer()
    use = _use_cases(tmp_path, mailer)
    use.subscribe(ADDRESS, "llm", "daily", "en")
    token = _confirm_token(mailer.sent[0])
    for _look in range(3):  # a mail scanner, a preview, the person
        assert use.confirmation(token).state == "open"
    assert use.store.find(ADDRESS).status == "pending"  # type: ignore[union-attr]
    assert use.confirm(token).state == "confirmed"
    assert use.confirm(token).state == "already"
    assert use.confirmation(token).state == "already"
    with pytest.raises(InvalidToken):
        use.confirmation(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))


def test_an_expired_confirm_link_says_so_and_a_new_one_is_sent_within_the_limits(tmp_path: Path) -> None:
    mailer = RecordingMailer()
    use = dataclasses.replace(_use_cases(tmp_path, mailer), confirm_link_lifetime=timedelta(seconds=-1))
    use.subscribe(ADDRESS, "llm", "daily", "en")
    token = _confirm_token(mailer.sent[0])
    assert use.confirmation(token).state == "expired", "told from the link, before any write"
    assert use.confirm(token).state == "expired"
    use.renew_confirmation(token)
    assert len(mailer.sent) == 1, "one confirmation email per address in 10 minutes, renewed or not"
    no_interval = ConfirmationLimits(timedelta(0))
    renewing = dataclasses.replace(use, confirm_link_lifetime=timedelta(days=7), limits=no_interval)
    renewing.renew_confirmation(token)
    assert len(mailer.sent) == 2
    fresh = _confirm_token(mailer.sent[1])
    assert renewing.confirm(fresh).state == "confirmed"
    renewing.renew_confirmation(token)
    assert len(mailer.sent) == 2, "a confirmed subscriber gets no new link"


def test_a_tag_published_before_the_slug_rule_changed_is_chosen_by_its_name(tmp_path: Path) -> None:
    """``C++`` was published as ``c`` (before ``+`` counted): a reader who types ``C++`` follows ``c``."""
    mailer = RecordingMailer()
    use = Subscriptions(
        Settings.load().site(),
        SqliteSubscriberStore(tmp_path / "s.db"),
        mailer,
        KEY,
        "Digest <digest@example.com>",
        tags=lambda: {"c": TagInfo(slug="c", name="C++", count=4), "llm": TagInfo(slug="llm", name="LLM", count=3)},
    )
    use.subscribe(ADDRESS, "C++ llm", "daily", "en")
    person = use.confirm(_confirm_token(mailer.sent[0])).subscriber
    assert person.tags == ("c", "llm")
    changed = use.update_preferences(make_token(KEY, person.id, "preferences"), "c-plus-plus", "daily", "en")
    assert changed.tags == ("c",), "the slug the current rule gives it names it too"
    with pytest.raises(UnknownTags):
        use.update_preferences(make_token(KEY, person.id, "preferences"), "C#", "daily", "en")


def test_an_import_names_a_tag_kept_under_its_old_slug_by_its_name(tmp_path: Path) -> None:
    store = SqliteSubscriberStore(tmp_path / "s.db")
    known = {"c": TagInfo(slug="c", name="C++", count=4)}
    text = "email,tags,frequency,lang,status\nreader@example.com,C++,daily,en,confirmed\n"
    report = import_csv(store, io.StringIO(text, newline=""), known_tags=known)
    assert report.added == 1, report
    found = store.find("reader@example.com")
    assert found is not None and found.tags == ("c",)
