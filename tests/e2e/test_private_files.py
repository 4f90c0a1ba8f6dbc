"""Secrets and personal data are private on disk whatever the umask: the CLI and ``serve`` as subprocesses."""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import requests

from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from tests.serve_support import free_port, publish_examples, run_digestpub, running_serve, serve_env

UMASK = 0o022


def _mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def _digestpub(root: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return run_digestpub(root, env, *arguments, umask=UMASK)


def test_key_database_ledger_and_outbox_are_created_private_under_umask_022(tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/"
    # Folders that do not exist yet: digestpub makes them, so they must be private too.
    env = serve_env(
        tmp_path,
        base_url,
        subscribers=f"sqlite:///{tmp_path / 'private' / 'data' / 's.db'}",
        mailer=f"outbox:{tmp_path / 'mail' / 'outbox'}",
    )
    publish_examples(tmp_path, base_url)
    database = tmp_path / "private" / "data" / "s.db"
    key = tmp_path / "private" / "data" / "secrets" / "token_key"  # beside the subscribers

    with running_serve(tmp_path, env, port, umask=UMASK):
        response = requests.post(base_url + "subscribe", data={"email": "reader@example.com"}, timeout=20)
        assert response.status_code == 200
        # While serve holds the database open, SQLite's side files exist: same mode as the database.
        sides = {path.name: _mode(path) for path in database.parent.glob("s.db-*")}
        assert sides and set(sides.values()) == {"0600"}, sides
        # serve sends the confirmation just after answering: wait for it before stopping serve.
        deadline = time.monotonic() + 15
        while not list((tmp_path / "mail" / "outbox").glob("*.eml")) and time.monotonic() < deadline:
            time.sleep(0.05)

    store = SqliteSubscriberStore(database)
    person = store.find("reader@example.com")
    assert person is not None
    store.save(person.model_copy(update={"status": "confirmed"}))
    sent = _digestpub(tmp_path, env, "newsletter", "--frequency", "daily")
    assert sent.returncode == 0, sent.stdout + sent.stderr

    outbox = tmp_path / "mail" / "outbox"
    messages = sorted(outbox.glob("*.eml"))
    assert len(messages) == 2, "the confirmation and the issue"
    modes = {
        "key": _mode(key),
        "key folder": _mode(key.parent),
        "database": _mode(database),
        "database folder": _mode(database.parent),
        "database folder's parent": _mode(database.parent.parent),
        "outbox": _mode(outbox),
        "outbox's parent": _mode(outbox.parent),
        **{f"message {number}": _mode(path) for number, path in enumerate(messages)},
    }
    assert modes == {name: ("0700" if "folder" in name or "outbox" in name else "0600") for name in modes}, modes
    assert (store.path.parent / "s.db").read_bytes().startswith(b"SQLite format 3")


def test_a_key_others_can_read_is_refused_with_exit_2(tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/"
    env = serve_env(tmp_path, base_url)
    publish_examples(tmp_path, base_url)
    first = _digestpub(tmp_path, env, "newsletter", "--frequency", "daily", "--dry-run")
    assert first.returncode == 0, first.stdout + first.stderr
    key = tmp_path / "secrets" / "token_key"
    kept = key.read_bytes()

    key.chmod(0o644)
    for arguments in (("newsletter", "--frequency", "daily"), ("serve", "--port", str(port))):
        refused = _digestpub(tmp_path, env, *arguments)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "chmod 600" in refused.stderr and "token_key" in refused.stderr, refused.stderr
        assert key.read_bytes() == kept, "the key is left as it was"

    key.chmod(0o600)
    assert _digestpub(tmp_path, env, "newsletter", "--frequency", "daily", "--dry-run").returncode == 0
