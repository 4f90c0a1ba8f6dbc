"""The newsletter's own memory, run as processes: a lost publish state never mails the history again.

The repro of the issue: publish, send an issue, move the state folder away,
publish again; ``newsletter --dry-run`` must find nothing to send, while a
summary published after the issue still goes out.
"""

from __future__ import annotations

import email
import email.policy
import shutil
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from tests.conftest import EXAMPLES, summary, write_json
from tests.e2e.test_cli import run


def _site_with_a_reader(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples" / "summaries")
    (tmp_path / "readers.csv").write_text(
        "email,tags,frequency,lang,status\nreader@example.com,,daily,en,confirmed\n", encoding="utf-8"
    )
    assert run(tmp_path, "subscribers", "import", "readers.csv").returncode == 0


def _newsletter(tmp_path: Path, *extra: str) -> str:
    result = run(tmp_path, "newsletter", "--frequency", "daily", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_lost_state_folder_does_not_make_the_history_news_again(tmp_path: Path) -> None:
    _site_with_a_reader(tmp_path)
    assert run(tmp_path, "publish").returncode == 0
    today = datetime.now(UTC).date()
    first = _newsletter(tmp_path)
    assert f"daily-{today}: 1 sent" in first, first

    (tmp_path / ".digestpub" / "state").rename(tmp_path / "lost-state")
    republished = run(tmp_path, "publish")
    assert republished.returncode == 0, republished.stderr

    tomorrow = today + timedelta(days=1)
    for day in (today, tomorrow):
        dry = _newsletter(tmp_path, "--dry-run", "--date", day.isoformat())
        assert "would be sent" not in dry, dry
        assert f"daily-{day}: 0 sent" in dry, dry
    assert _newsletter(tmp_path, "--date", tomorrow.isoformat()).startswith(f"daily-{tomorrow}: 0 sent"), (
        "nothing is mailed again"
    )
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_after_a_lost_state_what_is_published_later_is_still_sent(tmp_path: Path) -> None:
    _site_with_a_reader(tmp_path)
    assert run(tmp_path, "publish").returncode == 0
    today = datetime.now(UTC).date()
    assert f"daily-{today}: 1 sent" in _newsletter(tmp_path)
    shutil.rmtree(tmp_path / ".digestpub" / "state")
    fresh = (datetime.now(UTC) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    write_json(
        tmp_path / "examples" / "summaries",
        f"{today:%Y/%m/%d}/fresh.json",
        summary("2612.99999", title="A paper published after the issue", published_at=fresh),
    )

    assert run(tmp_path, "publish").returncode == 0
    tomorrow = today + timedelta(days=1)
    sent = _newsletter(tmp_path, "--date", tomorrow.isoformat())

    assert sent.startswith(f"daily-{tomorrow}: 1 sent"), sent
    newest = max((tmp_path / "outbox").glob("*.eml"), key=lambda path: path.stat().st_mtime_ns)
    message = email.message_from_bytes(newest.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    plain = message.get_body(("plain",))
    assert plain is not None
    text = plain.get_content()
    assert "A paper published after the issue" in text
    assert "1 new" in str(message["Subject"]), "only the new summary, not the history"
