"""The subscription use cases on a SQLite file: logs name no address, a failed send
changes no answer, and the SES events go through the same transitions."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from digestpub.adapters.sqlite import SqliteSubscriberStore
from digestpub.errors import InvalidToken, MailTransient
from digestpub.model import TagInfo
from digestpub.settings import Settings
from digestpub.subscriptions import Subscriptions, apply_ses_notification
from digestpub.tokens import make_token
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
    person = use.confirm(_confirm_token(mailer.sent[0]))
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
    with pytest.raises(InvalidToken):
        use.confirm(make_token(KEY, person.id, "confirm"))
    assert use.store.get(person.id).status == "pending"  # type: ignore[union-attr]
