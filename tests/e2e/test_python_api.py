"""The Python API as the README shows it: its example runs as written, in a fresh folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import digestpub

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## From Python", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "the README's 'From Python' section has no python example"
    return found.group(1)


def test_the_readme_example_publishes_and_sends(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("DIGESTPUB_")}
    done = subprocess.run(
        [sys.executable, "-c", readme_example()], cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("summaries: 28 new, 0 updated, 0 deleted, 2 skipped"), lines
    assert re.match(r"daily-\d{4}-\d\d-\d\d: 0 sent", lines[1]), lines
    assert (tmp_path / "public" / "index.html").is_file()
    assert (tmp_path / "public" / "feeds" / "atom.xml").is_file()


def test_settings_and_overrides_are_checked_as_flags_are(tmp_path: Path) -> None:
    with pytest.raises(digestpub.ConfigError, match=r"source folder .* does not exist"):
        digestpub.publish_site(source=str(tmp_path / "nowhere"), dest=str(tmp_path / "public"))
    with pytest.raises(digestpub.ConfigError, match="feed_size"):
        digestpub.publish_site(feed_size=0)
    settings = digestpub.Settings.load(None, source=str(ROOT / "examples" / "summaries"))
    with pytest.raises(digestpub.ConfigError, match="feed_size"):
        digestpub.publish_site(settings, feed_size="many")
    with pytest.raises(digestpub.ConfigError, match="daily or weekly"):
        digestpub.send_newsletter("hourly")  # type: ignore[arg-type]


def test_a_given_settings_object_is_used_with_its_overrides(tmp_path: Path) -> None:
    settings = digestpub.Settings.load(
        None, source=str(ROOT / "examples" / "summaries"), dest=str(tmp_path / "elsewhere"), state=str(tmp_path / "s")
    )
    report = digestpub.publish_site(settings, dest=str(tmp_path / "public"), site_title="Моя подборка")
    assert report.summaries_new == 28
    assert "Моя подборка" in (tmp_path / "public" / "index.html").read_text(encoding="utf-8")
    assert not (tmp_path / "elsewhere").exists()


def test_the_surface_is_what_all_names() -> None:
    for name in digestpub.__all__:
        assert getattr(digestpub, name) is not None
    with pytest.raises(AttributeError):
        digestpub.nothing_here  # noqa: B018
    assert issubclass(digestpub.StorageError, digestpub.DigestpubError)
