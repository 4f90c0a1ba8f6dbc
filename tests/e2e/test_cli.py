"""The ``digestpub`` command as a user runs it: a subprocess in a temporary working folder.

Covers the publish summary line, settings from flags, ``DIGESTPUB_*`` variables and a
TOML file (and their order of weight), and the exit codes: 0 done, 1 storage failed,
2 bad settings, 3 the state is locked by another run.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest

import digestpub
from tests.conftest import EXAMPLES

# From examples/summaries/README.md: 28 distinct ids, 2 rejected inputs, 1 cleaned
# summary, 13 tags (so 14 feeds, each with 3 feed files, 1 page and an archive index: no page of 50 is complete).
EXAMPLE_IDS = 28
EXAMPLE_SKIPPED = 2
EXAMPLE_CLEANED = 1
EXAMPLE_TAGS = 13
EXAMPLE_FILES = (EXAMPLE_TAGS + 1) * (4 + 1) + 3 + 2 + 1
"""Per feed: 4 kinds and its archive index; OPML, sitemap and robots.txt;
the newsletter's archive (page and feed), still without an issue; page 1 of
everything, to come (search hits link to it). The search index counts apart."""

SUMMARY_LINE = re.compile(
    r"summaries: (?P<new>\d+) new, (?P<updated>\d+) updated, (?P<deleted>\d+) deleted, (?P<skipped>\d+) skipped, "
    r"(?P<cleaned>\d+) cleaned; files: (?P<written>\d+) (?:written|rewritten \(settings or templates changed\)), "
    r"(?P<unchanged>\d+) unchanged"
    r"(?:; .*)?"
)
ATOM = "{http://www.w3.org/2005/Atom}"


def _env(**extra: str) -> dict[str, str]:
    """The test process's environment without any DIGESTPUB_* setting, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DIGESTPUB_")}
    # Wide enough that rich never wraps a message in the middle of what a test looks for.
    env.update({"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"})
    env.update(extra)
    return env


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digestpub", *args],
        cwd=cwd,
        env=env if env is not None else _env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(text: str) -> str:
    """Output with rich's line wrapping undone, for phrase matching."""
    return " ".join(text.split())


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"expected one summary line on stdout, got {result.stdout!r}"
    match = SUMMARY_LINE.fullmatch(lines[0])
    assert match, f"not a summary line: {lines[0]!r}"
    return {name: int(value) for name, value in match.groupdict().items()}


def files_under(folder: Path) -> list[Path]:
    """The site's files beside the search index (``pagefind/``), which the summary line counts apart."""
    return sorted(path for path in folder.rglob("*") if path.is_file() and "pagefind" not in path.parts)


def masthead_title(dest: Path) -> str:
    html = (dest / "index.html").read_text(encoding="utf-8")
    match = re.search(r'<a class="name" href="[^"]*">(.*?)</a>', html, re.S)
    assert match, "no masthead in index.html"
    return match.group(1).strip()


def feed_json(dest: Path, path: str = "feeds/feed.json") -> dict[str, object]:
    return json.loads((dest / path).read_text(encoding="utf-8"))


def publish_args(dest: str = "D", state: str = "S") -> list[str]:
    return ["publish", "--source", str(EXAMPLES), "--dest", dest, "--state", state]


# publish: the summary line and a second run -----------------------------------


def test_publish_prints_one_summary_line_and_writes_the_site(tmp_path: Path) -> None:
    result = run(tmp_path, *publish_args())
    assert result.returncode == 0, result.stderr
    counts = summary_of(result)
    assert counts == {
        "new": EXAMPLE_IDS,
        "updated": 0,
        "deleted": 0,
        "skipped": EXAMPLE_SKIPPED,
        "cleaned": EXAMPLE_CLEANED,
        "written": EXAMPLE_FILES,
        "unchanged": 0,
    }
    written = files_under(tmp_path / "D")
    assert len(written) == counts["written"], [str(p) for p in written]
    index = [path for path in (tmp_path / "D" / "pagefind").rglob("*") if path.is_file()]
    assert f"; search index: {len(index)} files written" in result.stdout
    for path in ("index.html", "tags/mllm/index.html", "feeds/rss.xml", "feeds/tags.opml"):
        assert (tmp_path / "D" / path).is_file(), path
    assert (tmp_path / "S").is_dir()
    # Skipped inputs do not fail the run, but they are named on stderr.
    stderr = one_line(result.stderr)
    assert "2026/11/22/broken.json" in stderr
    assert "2026/11/21/evening.jsonl:3" in stderr


def test_second_run_publishes_nothing_new(tmp_path: Path) -> None:
    first = run(tmp_path, *publish_args())
    assert first.returncode == 0, first.stderr
    before = {path: path.stat().st_mtime_ns for path in files_under(tmp_path / "D")}

    second = run(tmp_path, *publish_args())
    assert second.returncode == 0, second.stderr
    counts = summary_of(second)
    assert counts["new"] == 0
    assert counts["updated"] == 0
    assert counts["written"] == 0
    # What is true: every file the site has was left as it was.
    assert counts["unchanged"] == EXAMPLE_FILES == len(files_under(tmp_path / "D"))
    assert re.search(r"\b0 new\b", second.stdout) and re.search(r"\b0 written\b", second.stdout)
    after = {path: path.stat().st_mtime_ns for path in files_under(tmp_path / "D")}
    assert after == before, "a run with nothing new rewrote published files"


def test_defaults_work_from_a_folder_holding_examples(tmp_path: Path) -> None:
    """No options: source examples/summaries, dest public, state .digestpub/state."""
    shutil.copytree(EXAMPLES, tmp_path / "examples" / "summaries")
    result = run(tmp_path, "publish")
    assert result.returncode == 0, result.stderr
    counts = summary_of(result)
    assert counts["new"] == EXAMPLE_IDS
    assert counts["written"] == EXAMPLE_FILES
    assert len(files_under(tmp_path / "public")) == EXAMPLE_FILES
    assert (tmp_path / ".digestpub" / "state" / "catalog" / "head.json").is_file()
    assert masthead_title(tmp_path / "public") == "Ай Дайджест"
    feed = feed_json(tmp_path / "public")
    assert feed["feed_url"] == "http://localhost:8000/feeds/feed.json"
    assert len(feed["items"]) == min(50, EXAMPLE_IDS)  # type: ignore[arg-type]


# settings: variables, TOML file, and their order -------------------------------


def test_a_change_of_settings_says_what_it_is(tmp_path: Path) -> None:
    assert run(tmp_path, *publish_args()).returncode == 0
    result = run(tmp_path, *publish_args(), "--site-description", "Другое описание")
    assert result.returncode == 0, result.stderr
    counts = summary_of(result)
    assert (counts["new"], counts["updated"], counts["skipped"]) == (0, 0, 0)
    assert "rewritten (settings or templates changed)" in result.stdout
    assert "broken.json" not in result.stderr, "an old skip was reported again"
    assert f"{EXAMPLE_SKIPPED} earlier skipped still unfixed" in result.stdout


def test_settings_from_environment_variables(tmp_path: Path) -> None:
    base = "https://digest.example.org/sub"  # no trailing slash: one is added
    # Pages of one summary: a feed shows only its newest, no open page beside them.
    env = _env(DIGESTPUB_FEED_SIZE="3", DIGESTPUB_BASE_URL=base, DIGESTPUB_ARCHIVE_PAGE_SIZE="1")
    result = run(tmp_path, *publish_args(), env=env)
    assert result.returncode == 0, result.stderr
    dest = tmp_path / "D"
    base += "/"

    for path in ("feeds/feed.json", "feeds/tags/mllm/feed.json"):
        feed = feed_json(dest, path)
        assert len(feed["items"]) == 3, path  # type: ignore[arg-type]
        assert feed["feed_url"] == base + path
        assert feed["home_page_url"] == base + ("" if path == "feeds/feed.json" else "tags/mllm/")

    rss = ET.parse(dest / "feeds" / "rss.xml").getroot()  # noqa: S314 - our own output
    assert len(rss.findall("channel/item")) == 3
    assert rss.findtext("channel/link") == base
    atom = ET.parse(dest / "feeds" / "tags" / "mllm" / "atom.xml").getroot()  # noqa: S314
    assert len(atom.findall(f"{ATOM}entry")) == 3
    self_links = [link.get("href") for link in atom.findall(f"{ATOM}link[@rel='self']")]
    assert self_links == [base + "feeds/tags/mllm/atom.xml"]

    index = (dest / "index.html").read_text(encoding="utf-8")
    assert index.count("<article") == 3
    assert f'<link rel="canonical" href="{base}">' in index
    assert f'href="{base}tags/mllm/"' in index
    assert "localhost:8000" not in index
    tag_page = (dest / "tags" / "mllm" / "index.html").read_text(encoding="utf-8")
    assert f'<link rel="canonical" href="{base}tags/mllm/">' in tag_page


def _write_config(path: Path, **values: object) -> Path:
    lines = [f"{name} = {json.dumps(value, ensure_ascii=False)}" for name, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_settings_from_a_toml_file(tmp_path: Path) -> None:
    config = _write_config(
        tmp_path / "digestpub.toml",
        source=str(EXAMPLES),
        dest="from-file",
        state="state-from-file",
        site_title="Дайджест из файла",
        base_url="https://file.example/",
        feed_size=5,
        archive_page_size=1,
    )
    result = run(tmp_path, "--config", str(config), "publish")
    assert result.returncode == 0, result.stderr
    dest = tmp_path / "from-file"
    assert summary_of(result)["new"] == EXAMPLE_IDS
    assert (tmp_path / "state-from-file").is_dir()
    assert not (tmp_path / "public").exists()
    assert masthead_title(dest) == "Дайджест из файла"
    feed = feed_json(dest)
    assert feed["title"] == "Дайджест из файла"
    assert feed["feed_url"] == "https://file.example/feeds/feed.json"
    assert len(feed["items"]) == 5  # type: ignore[arg-type]


def test_config_after_the_subcommand(tmp_path: Path) -> None:
    """Every command takes ``--config`` after its name too, as the ones that came with it did."""
    database = tmp_path / "from-file.db"
    config = _write_config(
        tmp_path / "after.toml",
        source=str(EXAMPLES),
        dest="after-dest",
        state="after-state",
        site_title="После команды",
        subscribers=f"sqlite:///{database}",
    )
    published = run(tmp_path, "publish", "--config", str(config))
    assert published.returncode == 0, published.stderr
    assert summary_of(published)["new"] == EXAMPLE_IDS
    assert masthead_title(tmp_path / "after-dest") == "После команды"
    assert not (tmp_path / "public").exists()

    listed = run(tmp_path, "subscribers", "list", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert "0 subscribers" in listed.stdout
    assert database.is_file(), "the subscribers setting of the file was not used"

    served = run(tmp_path, "serve", "--config", str(tmp_path / "missing.toml"))
    assert served.returncode == 2, "serve read no --config of its own"
    assert "missing.toml" in one_line(served.stderr)


def test_serve_takes_the_confirmation_limits_as_flags(tmp_path: Path) -> None:
    refused = run(tmp_path, "serve", "--confirm-daily-limit", "0", "--port", "0")
    assert refused.returncode == 2, refused.stderr
    assert "confirm_daily_limit" in one_line(refused.stderr)


def test_config_file_named_by_variable(tmp_path: Path) -> None:
    config = _write_config(tmp_path / "c.toml", site_title="Через DIGESTPUB_CONFIG")
    result = run(tmp_path, *publish_args(), env=_env(DIGESTPUB_CONFIG=str(config)))
    assert result.returncode == 0, result.stderr
    assert masthead_title(tmp_path / "D") == "Через DIGESTPUB_CONFIG"


def test_flags_override_variables_which_override_the_file(tmp_path: Path) -> None:
    config = _write_config(tmp_path / "digestpub.toml", site_title="Файл", feed_size=4, lang="ru", archive_page_size=1)
    env = _env(DIGESTPUB_SITE_TITLE="Окружение", DIGESTPUB_FEED_SIZE="6")

    only_file = run(tmp_path, "--config", str(config), *publish_args("D1", "S1"))
    assert only_file.returncode == 0, only_file.stderr
    assert masthead_title(tmp_path / "D1") == "Файл"
    assert len(feed_json(tmp_path / "D1")["items"]) == 4  # type: ignore[arg-type]

    file_and_env = run(tmp_path, "--config", str(config), *publish_args("D2", "S2"), env=env)
    assert file_and_env.returncode == 0, file_and_env.stderr
    assert masthead_title(tmp_path / "D2") == "Окружение"
    assert len(feed_json(tmp_path / "D2")["items"]) == 6  # type: ignore[arg-type]

    all_three = run(
        tmp_path,
        "--config",
        str(config),
        *publish_args("D3", "S3"),
        "--site-title",
        "Флаг",
        env=env,
    )
    assert all_three.returncode == 0, all_three.stderr
    assert masthead_title(tmp_path / "D3") == "Флаг"
    # A setting given only as a variable still comes from the variable.
    assert len(feed_json(tmp_path / "D3")["items"]) == 6  # type: ignore[arg-type]

    flag_size = run(tmp_path, "--config", str(config), *publish_args("D4", "S4"), "--feed-size", "2", env=env)
    assert flag_size.returncode == 0, flag_size.stderr
    assert len(feed_json(tmp_path / "D4")["items"]) == 2  # type: ignore[arg-type]
    assert masthead_title(tmp_path / "D4") == "Окружение"


# exit codes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "names"),
    [
        ("flag", ["base_url", "ftp://x"]),
        ("variable", ["feed_size"]),
        ("toml-unknown-key", ["bogus_setting"]),
        ("toml-bad-value", ["feed_size"]),
        ("toml-syntax", ["broken.toml"]),
        ("missing-config", ["missing.toml"]),
        # Not a language tag: every summary without its own lang would be skipped.
        ("bad-language", ["lang", "xx-"]),
        # A mistyped source is not an empty one: publishing nothing would look like success.
        ("missing-source", ["source", "no-such-folder"]),
    ],
    ids=[
        "flag",
        "variable",
        "toml-unknown-key",
        "toml-bad-value",
        "toml-syntax",
        "missing-config",
        "bad-language",
        "missing-source",
    ],
)
def test_invalid_setting_exits_2_naming_it(tmp_path: Path, how: str, names: list[str]) -> None:
    args = publish_args()
    env = _env()
    if how == "flag":
        args += ["--base-url", "ftp://x"]
    elif how == "variable":
        env["DIGESTPUB_FEED_SIZE"] = "0"
    elif how == "toml-unknown-key":
        config = _write_config(tmp_path / "c.toml", site_title="ok", bogus_setting=1)
        args = ["--config", str(config), *args]
    elif how == "toml-bad-value":
        config = _write_config(tmp_path / "c.toml", feed_size="many")
        args = ["--config", str(config), *args]
    elif how == "toml-syntax":
        (tmp_path / "broken.toml").write_text("site_title = \n", encoding="utf-8")
        args = ["--config", "broken.toml", *args]
    elif how == "missing-config":
        args = ["--config", "missing.toml", *args]
    elif how == "bad-language":
        env["DIGESTPUB_LANG"] = "xx-"
    else:
        args += ["--source", "no-such-folder"]

    result = run(tmp_path, *args, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    stderr = one_line(result.stderr)
    assert stderr.startswith("error:"), stderr
    for name in names:
        assert name in stderr, f"{name!r} not named in: {stderr}"
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "D").exists()
    assert not (tmp_path / "S").exists()


HEADER_BREAKERS = {
    "site_title": "Digest\r\nBcc: victim@example.com",
    "from_address": "Digest <digest@example.com>\nBcc: victim@example.com",
    "reply_to": "help@example.com\x1b",
    "feed_cache_control": "max-age=60\r\nSet-Cookie: a=b",
    "page_cache_control": "max-age=60\u2028x",
}


@pytest.mark.parametrize("name", list(HEADER_BREAKERS))
@pytest.mark.parametrize("source", ["variable", "toml"])
def test_a_control_character_in_a_header_setting_exits_2_naming_it(tmp_path: Path, name: str, source: str) -> None:
    env = _env()
    args = publish_args()
    if source == "variable":
        env[f"DIGESTPUB_{name.upper()}"] = HEADER_BREAKERS[name]
    else:
        env["DIGESTPUB_CONFIG"] = str(_write_config(tmp_path / "c.toml", **{name: HEADER_BREAKERS[name]}))
    for command in (args, ["newsletter", "--frequency", "daily", "--dry-run"]):
        result = run(tmp_path, *command, env=env)
        assert result.returncode == 2, (result.stdout, result.stderr)
        stderr = one_line(result.stderr)
        assert stderr.startswith("error:") and name in stderr and "control character" in stderr, stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "D").exists() and not (tmp_path / "S").exists()


def test_source_that_is_no_store_exits_2(tmp_path: Path) -> None:
    result = run(tmp_path, "publish", "--source", "ftp://x/summaries", "--dest", "D", "--state", "S")
    assert result.returncode == 2, result.stderr
    stderr = one_line(result.stderr)
    assert "ftp://x/summaries" in stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "D").exists()


def test_storage_failure_exits_1_and_a_later_run_recovers(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a folder\n", encoding="utf-8")
    failed = run(tmp_path, *publish_args(dest="plain-file/public"))
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert failed.stdout == ""
    stderr = one_line(failed.stderr)
    assert "storage failed" in stderr
    assert "plain-file" in stderr
    assert "Traceback" not in failed.stderr

    # The failed run released the lock and saved no state: nothing is lost.
    assert not (tmp_path / "S" / "lock.json").exists()
    retry = run(tmp_path, *publish_args())
    assert retry.returncode == 0, retry.stderr
    counts = summary_of(retry)
    assert counts["new"] == EXAMPLE_IDS
    assert counts["written"] == EXAMPLE_FILES


def test_state_that_cannot_be_created_exits_1(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a folder\n", encoding="utf-8")
    result = run(tmp_path, *publish_args(state="plain-file/state"))
    assert result.returncode == 1, (result.stdout, result.stderr)
    stderr = one_line(result.stderr)
    assert "storage failed" in stderr and "plain-file" in stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "D").exists()


def test_held_lock_exits_3(tmp_path: Path) -> None:
    from digestpub.adapters.folder_store import FolderStore
    from digestpub.state.lock import StateLock

    state = tmp_path / "S"
    lock = StateLock(FolderStore(state), ttl=timedelta(minutes=10), wait=timedelta(0))
    with lock:
        started = time.monotonic()
        result = run(tmp_path, *publish_args(), env=_env(DIGESTPUB_LOCK_TIMEOUT="0.2"))
        elapsed = time.monotonic() - started
        assert result.returncode == 3, (result.stdout, result.stderr)
        assert result.stdout == ""
        stderr = one_line(result.stderr)
        assert "another publish run" in stderr and "holds" in stderr, stderr
        assert "lock.json" in stderr
        assert "Traceback" not in result.stderr
        assert elapsed < 30, f"a 0.2 s lock timeout took {elapsed:.1f} s"
        assert not (tmp_path / "D").exists()
        # The waiting run left the other run's lock alone.
        assert lock.run_id in (state / "lock.json").read_text(encoding="utf-8")

    after = run(tmp_path, *publish_args(), env=_env(DIGESTPUB_LOCK_TIMEOUT="0.2"))
    assert after.returncode == 0, after.stderr
    assert summary_of(after)["new"] == EXAMPLE_IDS


def test_expired_lock_is_taken_over(tmp_path: Path) -> None:
    from digestpub.adapters.folder_store import FolderStore
    from digestpub.state.lock import StateLock

    dead = StateLock(FolderStore(tmp_path / "S"), ttl=timedelta(milliseconds=1), wait=timedelta(0))
    dead.acquire()  # never released: a crashed run
    time.sleep(0.05)
    result = run(tmp_path, *publish_args(), env=_env(DIGESTPUB_LOCK_TIMEOUT="0.2"))
    assert result.returncode == 0, result.stderr
    assert summary_of(result)["new"] == EXAMPLE_IDS
    assert not (tmp_path / "S" / "lock.json").exists()


_HOLDS_THE_LOCK = """
import sys, time
from datetime import timedelta
from digestpub.adapters.folder_store import FolderStore
from digestpub.state.lock import StateLock

StateLock(FolderStore(sys.argv[1]), ttl=timedelta(minutes=15), wait=timedelta(0)).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_a_killed_runs_lease_is_taken_over_at_once(tmp_path: Path) -> None:
    # A run killed mid-way (OOM, kill -9) leaves a lease valid for 15 minutes;
    # its holder is a process of this host that no longer exists.
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDS_THE_LOCK, str(tmp_path / "S")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert f":{holder.pid}" in (tmp_path / "S" / "lock.json").read_text(encoding="utf-8")
    started = time.monotonic()
    result = run(tmp_path, *publish_args(), env=_env(DIGESTPUB_LOCK_TIMEOUT="30"))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15, "the run waited on a dead run's lease"
    assert summary_of(result)["new"] == EXAMPLE_IDS
    assert not (tmp_path / "S" / "lock.json").exists()


def _head(state: Path) -> dict[str, object]:
    head: dict[str, object] = json.loads((state / "catalog" / "head.json").read_text(encoding="utf-8"))
    return head


@pytest.mark.parametrize("damage", ["head-deleted", "part-rewritten"])
def test_a_state_that_lost_its_head_or_does_not_match_it_is_refused(tmp_path: Path, damage: str) -> None:
    first = run(tmp_path, *publish_args())
    assert first.returncode == 0, first.stderr
    state = tmp_path / "S"
    if damage == "head-deleted":
        # Without the refusal every summary would be new again, and mailed again.
        (state / "catalog" / "head.json").unlink()
    else:
        parts = _head(state)["parts"]
        assert isinstance(parts, dict)
        seen = state / parts["catalog/seen/2026/11.json"]
        # Still well-formed, but not the bytes the head recorded: one object forgotten
        # would be read again as new.
        versions = json.loads(seen.read_bytes())
        versions.pop(sorted(versions)[0])
        seen.write_text(json.dumps(versions), encoding="utf-8")
    before = sorted(path.relative_to(tmp_path) for path in files_under(tmp_path / "D"))
    logs = sorted((state / "catalog" / "log").rglob("*.jsonl"))
    result = run(tmp_path, *publish_args(), "--full-scan")
    assert result.returncode == 1, (result.stdout, result.stderr)
    stderr = one_line(result.stderr)
    assert "--rebuild" in stderr and "Traceback" not in result.stderr, stderr
    assert sorted(path.relative_to(tmp_path) for path in files_under(tmp_path / "D")) == before
    assert sorted((state / "catalog" / "log").rglob("*.jsonl")) == logs, "a refused run logs no news"
    # As the message says.
    rebuilt = run(tmp_path, *publish_args(), "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert run(tmp_path, *publish_args()).returncode == 0


# version and help -------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = run(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"digestpub {digestpub.__version__}"
    assert digestpub.__version__ == importlib.metadata.version("digestpub")


def test_installed_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("digestpub")
    if not script.is_file():
        found = shutil.which("digestpub")
        if found is None:
            pytest.skip("the digestpub console script is not installed next to this Python: `pip install -e .`")
        script = Path(found)
    result = subprocess.run(
        [str(script), "--version"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"digestpub {digestpub.__version__}"


def test_publish_help_lists_the_options(tmp_path: Path) -> None:
    result = run(tmp_path, "publish", "--help")
    assert result.returncode == 0, result.stderr
    for option in (
        "--source",
        "--dest",
        "--state",
        "--base-url",
        "--api-url",
        "--feed-size",
        "--site-title",
        "--site-description",
        "--lang",
        "--full-scan",
        "--rebuild",
    ):
        assert re.search(rf"{re.escape(option)}\b", result.stdout), f"{option} missing from help"
    assert not (tmp_path / "public").exists(), "--help must not run the command"


def _command_paths(tmp_path: Path) -> list[list[str]]:
    """Every command and subcommand, as found in the help output itself."""
    found: list[list[str]] = []
    pending: list[list[str]] = [[]]
    while pending:
        path = pending.pop()
        result = run(tmp_path, *path, "--help")
        assert result.returncode == 0, (path, result.stderr)
        commands = result.stdout.split("Commands", 1)[1] if "Commands" in result.stdout else ""
        for name in re.findall(r"^\W*\s([a-z][a-z-]+)\s{2,}", commands, flags=re.MULTILINE):
            pending.append([*path, name])
        found.append(path)
    return found


def test_no_help_text_shows_markup(tmp_path: Path) -> None:
    """Help reads as plain sentences: no reStructuredText literals from the docstrings."""
    paths = _command_paths(tmp_path)
    names = {" ".join(path) for path in paths}
    assert {"publish", "newsletter", "serve", "preview", "subscribers import", "subscribers delete"} <= names
    for path in paths:
        shown = run(tmp_path, *path, "--help").stdout
        assert "``" not in shown, f"{' '.join(path)} --help shows markup:\n{shown}"


def test_top_level_help_lists_publish(tmp_path: Path) -> None:
    result = run(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "publish" in result.stdout
    assert "--config" in result.stdout
    assert "--version" in result.stdout
