"""The command line as people expect it: ``-h``, ``--quiet``, bare switches in help, JSON log lines."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from digestpub.app.console import _JsonFormatter
from tests.conftest import EXAMPLES
from tests.e2e.test_cli import _env, publish_args, run
from tests.serve_support import free_port, running_serve


def test_dash_h_is_help_for_the_program_and_for_each_command(tmp_path: Path) -> None:
    for args in ([], ["newsletter"], ["subscribers"], ["subscribers", "export"], ["keys", "rotate"]):
        short = run(tmp_path, *args, "-h")
        assert short.returncode == 0, short.stderr
        assert "Usage:" in short.stdout
        assert short.stdout == run(tmp_path, *args, "--help").stdout


def test_help_shows_switches_without_a_value(tmp_path: Path) -> None:
    for args in ([], ["newsletter"], ["publish"], ["check"], ["subscribers", "export"]):
        result = run(tmp_path, *args, "-h")
        assert result.returncode == 0, result.stderr
        assert "<bool>" not in result.stdout, result.stdout
    newsletter = run(tmp_path, "newsletter", "-h").stdout
    assert "--dry-run" in newsletter
    assert "--resend-unknown" in newsletter


def test_quiet_keeps_the_result_and_leaves_out_warnings_and_notes(tmp_path: Path) -> None:
    loud = run(tmp_path, *publish_args("D1", "S1"))
    assert loud.returncode == 0, loud.stderr
    assert "broken.json" in loud.stderr
    assert "input(s) skipped" in loud.stderr

    quiet = run(tmp_path, "-q", *publish_args("D2", "S2"))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout == loud.stdout


def test_quiet_still_prints_errors(tmp_path: Path) -> None:
    result = run(tmp_path, "--quiet", "publish", "--source", str(tmp_path / "missing"), "--dest", "D", "--state", "S")
    assert result.returncode == 2
    assert "error:" in result.stderr


def test_quiet_and_verbose_together_exit_2(tmp_path: Path) -> None:
    result = run(tmp_path, "-q", "-v", "check", str(EXAMPLES))
    assert result.returncode == 2
    assert "--verbose and --quiet" in result.stderr


def test_json_log_lines_carry_a_utc_timestamp(tmp_path: Path) -> None:
    result = run(tmp_path, "--log-format", "json", *publish_args())
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert lines, result.stderr
    for line in lines:
        assert line["time"].endswith("+00:00"), line
        assert line["level"] in {"INFO", "WARNING", "ERROR"}
    assert any("broken.json" in line["message"] for line in lines)
    assert not any("exception" in line for line in lines), "a warning without an exception carries none"


def test_a_json_error_line_carries_the_exception() -> None:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError:
        record = logging.LogRecord("digestpub.x", logging.ERROR, __file__, 1, "telling %s failed", ("hub",), None)
        record.exc_info = sys.exc_info()
    line = json.loads(_JsonFormatter().format(record))
    assert line["message"] == "telling hub failed"
    assert line["level"] == "ERROR"
    assert "ConnectionRefusedError: [Errno 111] Connection refused" in line["exception"]
    assert "Traceback" in line["exception"]


# digestpub config ------------------------------------------------------------


def _config(tmp_path: Path, *args: str, **variables: str) -> dict[str, dict[str, object]]:
    result = run(tmp_path, *args, "config", "--json", env=_env(**variables))
    assert result.returncode == 0, result.stderr
    described: dict[str, dict[str, object]] = json.loads(result.stdout)
    return described


def test_config_says_where_each_setting_came_from(tmp_path: Path) -> None:
    file = tmp_path / "site.toml"
    file.write_text('feed_size = 7\nlang = "de"\nsite_title = "From the file"\n', encoding="utf-8")
    described = _config(
        tmp_path, "--log-format", "json", "--config", str(file), DIGESTPUB_LANG="en", DIGESTPUB_TIMEZONE="Europe/Moscow"
    )
    assert described["log_format"] == {"value": "json", "source": "flag --log-format"}
    assert described["lang"] == {"value": "en", "source": "variable DIGESTPUB_LANG"}, "a variable beats the file"
    assert described["timezone"] == {"value": "Europe/Moscow", "source": "variable DIGESTPUB_TIMEZONE"}
    assert described["feed_size"] == {"value": 7, "source": f"file {file}"}
    assert described["site_title"] == {"value": "From the file", "source": f"file {file}"}
    assert described["archive_page_size"] == {"value": 50, "source": "default"}
    assert described["api_url"] == {"value": "http://localhost:8000/", "source": "default: base_url"}
    assert described["id_authority"] == {"value": None, "source": "default"}


def test_config_masks_secrets(tmp_path: Path) -> None:
    key = "a-token-key-of-32-characters-xyz"
    described = _config(
        tmp_path,
        DIGESTPUB_TOKEN_KEY=key,
        DIGESTPUB_MAILER="smtp://mailbot:p%40ss-w0rd@mail.example:587",
        DIGESTPUB_HUBS="https://hub.example/ https://user:hubsecret@other.example/",
    )
    printed = json.dumps(described)
    for secret in (key, "p%40ss-w0rd", "hubsecret"):
        assert secret not in printed
    assert described["token_key"]["value"] == "********"
    assert described["mailer"]["value"] == "smtp://mailbot:********@mail.example:587"
    assert described["hubs"]["value"] == "https://hub.example/ https://user:********@other.example/"


def test_config_prints_toml_that_reads_back(tmp_path: Path) -> None:
    result = run(tmp_path, "config", env=_env(DIGESTPUB_FEED_SIZE="9"))
    assert result.returncode == 0, result.stderr
    assert "feed_size = 9  # variable DIGESTPUB_FEED_SIZE" in result.stdout
    assert "# id_authority is not set  # default" in result.stdout
    read_back = tomllib.loads(result.stdout)
    assert read_back["feed_size"] == 9
    assert read_back["site_title"] == "Ай Дайджест"
    reread = run(tmp_path, "--config", str(_written(tmp_path / "again.toml", result.stdout)), "config")
    assert reread.returncode == 0, reread.stderr


def _written(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_config_with_a_bad_setting_exits_2_naming_it(tmp_path: Path) -> None:
    result = run(tmp_path, "config", env=_env(DIGESTPUB_FEED_SIZE="0"))
    assert result.returncode == 2
    assert "feed_size" in result.stderr
    assert result.stdout == ""


# subscribers export | head, counts in agreement ----------------------------------


def _imported(tmp_path: Path, rows: int) -> dict[str, str]:
    source = tmp_path / "many.csv"
    lines = [f"reader{n}@example.com,,daily,ru,confirmed" for n in range(rows)]
    source.write_text("email,tags,frequency,lang,status\n" + "\n".join(lines) + "\n", encoding="utf-8")
    env = _env(DIGESTPUB_SUBSCRIBERS=f"sqlite:///{tmp_path / 's.db'}", DIGESTPUB_STATE=str(tmp_path / "S"))
    imported = run(tmp_path, "subscribers", "import", str(source), env=env)
    assert imported.returncode == 0, imported.stderr
    return env


def test_export_into_a_reader_that_stops_early_exits_0_quietly(tmp_path: Path) -> None:
    env = _imported(tmp_path, 5000)  # far more than a pipe holds, so the writer meets the closed end
    pipeline = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m digestpub subscribers export | head -n 2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert pipeline.returncode == 0, pipeline.stderr
    assert pipeline.stdout.splitlines()[0] == "email,tags,frequency,lang,status"
    assert len(pipeline.stdout.splitlines()) == 2
    assert "Broken pipe" not in pipeline.stderr
    assert pipeline.stderr == ""


def test_counts_agree_in_number(tmp_path: Path) -> None:
    env = _imported(tmp_path, 1)
    listed = run(tmp_path, "subscribers", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.rstrip().endswith("\n1 subscriber")
    exported = run(tmp_path, "subscribers", "export", "--out", "x.csv", env=env)
    assert exported.returncode == 0, exported.stderr
    assert "1 subscriber written to x.csv" in exported.stderr

    single = tmp_path / "one"
    shutil.copytree(EXAMPLES / "2026" / "11" / "20", single / "2026" / "11" / "20")
    files = sorted(single.rglob("*.json*"))
    for extra in files[1:]:
        extra.unlink()
    checked = run(tmp_path, "check", str(single))
    assert re.search(r"checked 1 file\(s\): 1 summary, ", checked.stderr), checked.stderr


# serve ---------------------------------------------------------------------------


def _serve_env(tmp_path: Path) -> dict[str, str]:
    return _env(DIGESTPUB_STATE=str(tmp_path / "S"), DIGESTPUB_SUBSCRIBERS=f"sqlite:///{tmp_path / 's.db'}")


def test_serve_takes_dest_and_logs_each_request_without_its_query(tmp_path: Path) -> None:
    published = run(tmp_path, *publish_args("site", "S"))
    assert published.returncode == 0, published.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with running_serve(tmp_path, _serve_env(tmp_path), port, after=["--dest", "site"]):
        with urllib.request.urlopen(url + "index.html?token=secret-link-token", timeout=30) as answer:
            assert answer.status == 200
            assert b"<html" in answer.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url + "no-such-page.html", timeout=30)
        assert missing.value.code == 404
    logged = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert f"serving site and the subscription endpoints on {url}" in logged
    assert '"GET /index.html" 200' in logged
    assert '"GET /no-such-page.html" 404' in logged
    assert "secret-link-token" not in logged


def test_quiet_serve_logs_no_requests(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html></html>", encoding="utf-8")
    port = free_port()
    quiet = running_serve(tmp_path, _serve_env(tmp_path), port, before=["--quiet"], after=["--dest", "site"])
    with quiet, urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=30) as answer:
        assert answer.status == 200
    logged = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert "serving site" in logged
    assert "GET" not in logged
