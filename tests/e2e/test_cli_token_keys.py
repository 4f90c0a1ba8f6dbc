"""Token keys that outlive their day, run as processes: the CLI and ``digestpub serve`` over HTTP.

The key ring lives beside the subscriber store, so a lost publish state breaks
no link; ``keys rotate`` signs new links with a new key while old links keep
working until ``keys retire``; with subscribers and no key, a run stops (exit 2).
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from pathlib import Path

import pytest
import requests

from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.subscriptions.tokens import InvalidToken, make_token, verify_token
from tests.e2e.test_cli import one_line
from tests.serve_support import free_port, run_digestpub, running_serve, serve_env

READER = "reader@example.com"
TIMEOUT = 20


def _site(tmp_path: Path, **settings: str) -> tuple[dict[str, str], str]:
    port = free_port()
    env = serve_env(tmp_path, f"http://127.0.0.1:{port}/", **settings)
    (tmp_path / "readers.csv").write_text(
        f"email,tags,frequency,lang,status\n{READER},,daily,en,confirmed\n", encoding="utf-8"
    )
    for command in (("publish",), ("subscribers", "import", "readers.csv")):
        done = run_digestpub(tmp_path, env, *command)
        assert done.returncode == 0, done.stdout + done.stderr
    return env, str(port)


def _text_to(tmp_path: Path, address: str) -> str:
    """The plain text of the one message in the outbox to ``address``."""
    found = []
    for path in (tmp_path / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if str(message["To"]) == address:
            found.append(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert len(found) == 1, found
    return str(found[0])


def _issue_links(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """Send today's issue; its unsubscribe and preference links."""
    sent = run_digestpub(tmp_path, env, "newsletter", "--frequency", "daily")
    assert sent.returncode == 0 and "1 sent" in sent.stdout, sent.stdout + sent.stderr
    text = _text_to(tmp_path, READER)
    return {
        route: re.findall(rf"http://127\.0\.0\.1:\d+/{route}\?token=[\w-]+", text)[0]
        for route in ("unsubscribe", "preferences")
    }


def _ring(tmp_path: Path) -> list[bytes]:
    return (tmp_path / "secrets" / "token_key").read_bytes().split()


def test_a_lost_state_folder_keeps_every_link_in_mail_already_sent_working(tmp_path: Path) -> None:
    env, port = _site(tmp_path)
    links = _issue_links(tmp_path, env)
    assert (tmp_path / "secrets" / "token_key").is_file() and not (tmp_path / "state" / "secrets").exists()

    (tmp_path / "state").rename(tmp_path / "lost-state")
    assert run_digestpub(tmp_path, env, "publish").returncode == 0

    with running_serve(tmp_path, env, int(port)):
        assert requests.get(links["preferences"], timeout=TIMEOUT).status_code == 200
        one_click = requests.post(links["unsubscribe"], data={"List-Unsubscribe": "One-Click"}, timeout=TIMEOUT)
        assert one_click.status_code == 200
    reader = SqliteSubscriberStore(tmp_path / "s.db").find(READER)
    assert reader is not None and reader.status == "unsubscribed"


def test_with_subscribers_and_no_key_runs_stop_with_exit_2_until_a_new_key_is_meant(tmp_path: Path) -> None:
    env, port = _site(tmp_path)
    (tmp_path / "secrets" / "token_key").unlink()

    for arguments in (("newsletter", "--frequency", "daily", "--dry-run"), ("serve", "--port", port)):
        refused = run_digestpub(tmp_path, env, *arguments)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        message = one_line(refused.stderr)
        assert "the token key is missing" in message and "digestpub keys rotate" in message, message
        assert not (tmp_path / "secrets" / "token_key").exists(), "no key is made that breaks every link"

    rotated = run_digestpub(tmp_path, env, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert len(_ring(tmp_path)) == 1
    assert run_digestpub(tmp_path, env, "newsletter", "--frequency", "daily", "--dry-run").returncode == 0


def test_rotate_signs_new_links_with_a_new_key_and_old_links_work_until_retired(tmp_path: Path) -> None:
    env, port = _site(tmp_path)
    links = _issue_links(tmp_path, env)
    [first] = _ring(tmp_path)

    rotated = run_digestpub(tmp_path, env, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "2 key(s)" in one_line(rotated.stdout)
    newest, older = _ring(tmp_path)
    assert older == first and newest != first
    reader = SqliteSubscriberStore(tmp_path / "s.db").find(READER)
    assert reader is not None
    new_link = links["preferences"].split("?")[0] + "?token=" + make_token(newest, reader.id, "preferences")

    with running_serve(tmp_path, env, int(port)):
        assert requests.get(links["preferences"], timeout=TIMEOUT).status_code == 200, "signed with the older key"
        assert requests.get(new_link, timeout=TIMEOUT).status_code == 200
        # New links are signed with the newest key: a confirmation email's, for one.
        answer = requests.post(
            f"http://127.0.0.1:{port}/subscribe", data={"email": "new@example.com", "tags": ""}, timeout=TIMEOUT
        )
        assert answer.status_code == 200
        deadline = time.monotonic() + 15  # serve sends it just after answering
        while len(list((tmp_path / "outbox").glob("*.eml"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    token = re.findall(r"confirm\?token=([\w-]+)", _text_to(tmp_path, "new@example.com"))[0]
    assert verify_token(newest, token, "confirm")
    with pytest.raises(InvalidToken, match="any key"):
        verify_token(older, token, "confirm")

    retired = run_digestpub(tmp_path, env, "keys", "retire")
    assert retired.returncode == 0, retired.stderr
    assert "retired 1 key(s); 1 left" in one_line(retired.stdout)
    assert _ring(tmp_path) == [newest]
    with running_serve(tmp_path, env, int(port)):
        assert requests.get(links["preferences"], timeout=TIMEOUT).status_code == 403, "its key is retired"
        assert requests.get(new_link, timeout=TIMEOUT).status_code == 200


def test_a_key_kept_in_the_state_by_an_earlier_version_moves_beside_the_subscribers(tmp_path: Path) -> None:
    legacy = tmp_path / "state" / "secrets" / "token_key"
    legacy.parent.mkdir(parents=True, mode=0o700)
    legacy.write_text("the-key-of-an-earlier-version-0123\n", encoding="utf-8")
    legacy.chmod(0o600)

    env, _port = _site(tmp_path)

    assert not legacy.exists()
    assert _ring(tmp_path) == [b"the-key-of-an-earlier-version-0123"]
    links = _issue_links(tmp_path, env)
    token = links["unsubscribe"].rpartition("token=")[2]
    assert verify_token(b"the-key-of-an-earlier-version-0123", token, "unsubscribe")


def test_keys_set_in_the_settings_are_changed_there(tmp_path: Path) -> None:
    env, _port = _site(tmp_path, token_key="newest-key-0123456789, older-key-0123456789")
    links = _issue_links(tmp_path, env)
    assert verify_token(b"newest-key-0123456789", links["unsubscribe"].rpartition("token=")[2], "unsubscribe")
    assert not (tmp_path / "secrets").exists()

    for command in ("rotate", "retire"):
        refused = run_digestpub(tmp_path, env, "keys", command)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "token_key is set" in one_line(refused.stderr)
