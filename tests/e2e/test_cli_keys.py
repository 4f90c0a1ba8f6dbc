"""``digestpub publish --keys`` and ``--keys-from``, run as a process: named keys are read whatever their day,
and a named key that is gone takes its summaries off the site."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import summary, write_json
from tests.e2e.test_cli import _env, feed_json, run, summary_of

LATE_KEY = "2026/11/06/late.json"
"""Two weeks before the newest day: outside an hourly run's listing."""


def _site(tmp_path: Path) -> tuple[Path, list[str]]:
    source = tmp_path / "source"
    write_json(source, "2026/11/20/a.json", summary("2611.00001", tags=["mllm"]))
    write_json(source, "2026/11/20/b.json", summary("2611.00002", tags=["vqa"]))
    return source, ["publish", "--source", str(source), "--dest", "dest", "--state", "state"]


def _ids(tmp_path: Path, path: str = "feeds/feed.json") -> list[str]:
    items = feed_json(tmp_path / "dest", path)["items"]
    assert isinstance(items, list)
    return [str(item["id"]).rsplit("/", 1)[-1] for item in items]


def test_keys_and_keys_from_read_objects_of_any_day(tmp_path: Path) -> None:
    source, publish = _site(tmp_path)
    assert run(tmp_path, *publish).returncode == 0
    for key, number in ((LATE_KEY, 50), ("2026/11/05/later.json", 51), ("2026/11/04/last.json", 52)):
        write_json(source, key, summary(number, tags=["vqa"], published_at=f"{key[:10].replace('/', '-')}T08:00:00Z"))

    hourly = run(tmp_path, *publish)
    assert summary_of(hourly)["new"] == 0
    named = run(tmp_path, *publish, "--keys", LATE_KEY)
    (tmp_path / "keys.txt").write_text("2026/11/05/later.json\n\n  \n", encoding="utf-8")
    from_file = run(tmp_path, *publish, "--keys-from", "keys.txt")
    from_stdin = subprocess.run(
        [sys.executable, "-m", "digestpub", *publish, "--keys-from", "-"],
        cwd=tmp_path,
        env=_env(),
        input="2026/11/04/last.json\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    for result in (named, from_file, from_stdin):
        assert result.returncode == 0, result.stderr
        assert summary_of(result)["new"] == 1, result.stdout
    assert {"2611.00050", "2611.00051", "2611.00052"} <= set(_ids(tmp_path, "feeds/tags/vqa/feed.json"))


def test_a_named_key_that_is_gone_is_deleted_and_a_rerun_writes_nothing(tmp_path: Path) -> None:
    source, publish = _site(tmp_path)
    assert run(tmp_path, *publish).returncode == 0
    (source / "2026/11/20/b.json").unlink()

    result = run(tmp_path, *publish, "--keys", "2026/11/20/b.json")

    assert result.returncode == 0, result.stderr
    counts = summary_of(result)
    assert (counts["deleted"], counts["new"]) == (1, 0)
    assert _ids(tmp_path) == ["2611.00001"]
    assert _ids(tmp_path, "feeds/tags/vqa/feed.json") == []
    again = summary_of(run(tmp_path, *publish, "--keys", "2026/11/20/b.json"))
    assert (again["deleted"], again["written"]) == (0, 0)


def test_a_key_that_is_not_a_summary_key_is_a_settings_error(tmp_path: Path) -> None:
    _, publish = _site(tmp_path)
    result = run(tmp_path, *publish, "--keys", "2026/11/20/a.json", "--keys", "notes/readme.txt")

    assert result.returncode == 2, result.stdout
    assert "not summary keys: 'notes/readme.txt'" in " ".join(result.stderr.split())
    assert not (tmp_path / "dest").exists(), "nothing is published"
    missing = run(tmp_path, *publish, "--keys-from", "no-such-file.txt")
    assert missing.returncode == 2 and "--keys-from no-such-file.txt" in " ".join(missing.stderr.split())
