"""``subscribers import|export|list`` driven through typer, on a SQLite file in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.app.cli_subscribers import subscribers_app
from tests.subscriber_contract import publish_tags

HEADER = "email,tags,frequency,lang,status\n"

app = typer.Typer()


@app.callback()
def _options(context: typer.Context) -> None:
    context.obj = {"config": None}


app.add_typer(subscribers_app, name="subscribers")


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "data" / "s.db"


@pytest.fixture
def runner(database: Path, tmp_path: Path) -> CliRunner:
    state = publish_tags(tmp_path / "digest")  # an import names only the digest's tags
    return CliRunner(
        env={"DIGESTPUB_SUBSCRIBERS": f"sqlite:///{database}", "DIGESTPUB_STATE": str(state), "COLUMNS": "200"}
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_import_reports_counts_and_bad_rows(runner: CliRunner, tmp_path: Path, database: Path) -> None:
    source = _write(
        tmp_path / "list.csv",
        HEADER
        + "a@example.com,llm,daily,ru,confirmed\n"
        + "broken,llm,daily,ru,confirmed\n"
        + "b@example.com,rl,weekly,en,pending\n"
        + "c@example.com,rl,hourly,en,pending\n",
    )
    result = runner.invoke(app, ["subscribers", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert f"{source}:3: bad address 'broken'" in result.output
    assert f"{source}:5: unknown frequency 'hourly'" in result.output
    assert "2 added, 0 updated, 0 unchanged, 2 rows with problems" in result.output
    assert sorted(s.email for s in SqliteSubscriberStore(database).iter_all()) == [
        "a@example.com",
        "b@example.com",
    ]
    again = runner.invoke(app, ["subscribers", "import", str(source)])
    assert again.exit_code == 0
    assert "0 added, 0 updated, 2 unchanged" in again.output


def test_import_of_a_missing_or_unreadable_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["subscribers", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.output
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"email\n\xff\xfe\x00")
    assert runner.invoke(app, ["subscribers", "import", str(binary)]).exit_code == 2
    folder = runner.invoke(app, ["subscribers", "import", str(tmp_path)])
    assert folder.exit_code == 2


def test_a_bad_header_still_exits_0_with_the_reason(runner: CliRunner, tmp_path: Path) -> None:
    source = _write(tmp_path / "noheader.csv", "a@example.com,llm,daily,ru,confirmed\n")
    result = runner.invoke(app, ["subscribers", "import", str(source)])
    assert result.exit_code == 0
    assert f"{source}:1: missing header" in result.output


def test_export_to_stdout_and_file_round_trips(runner: CliRunner, tmp_path: Path) -> None:
    source = _write(
        tmp_path / "in.csv",
        HEADER + "Иван@Пример.РФ,llm компьютерное-зрение,weekly,ru,confirmed\nb@example.com,,daily,en,pending\n",
    )
    assert runner.invoke(app, ["subscribers", "import", str(source)]).exit_code == 0

    printed = runner.invoke(app, ["subscribers", "export"])
    assert printed.exit_code == 0
    assert printed.stdout.startswith(HEADER)
    assert "Иван@пример.рф,kompiuternoe-zrenie llm,weekly,ru,confirmed\n" in printed.stdout
    assert "b@example.com,,daily,en,pending\n" in printed.stdout

    out = tmp_path / "exports" / "all.csv"
    written = runner.invoke(app, ["subscribers", "export", "--out", str(out)])
    assert written.exit_code == 0
    assert out.read_text(encoding="utf-8") == printed.stdout
    assert [p.name for p in out.parent.iterdir()] == ["all.csv"]

    other = CliRunner(env={**runner.env, "DIGESTPUB_SUBSCRIBERS": f"sqlite:///{tmp_path}/copy.db"})
    assert "2 added" in other.invoke(app, ["subscribers", "import", str(out)]).output
    copied = other.invoke(app, ["subscribers", "export"]).stdout
    assert sorted(copied.splitlines()) == sorted(printed.stdout.splitlines())  # ids differ, so order may


def test_list_with_filters(runner: CliRunner, tmp_path: Path) -> None:
    source = _write(
        tmp_path / "in.csv",
        HEADER
        + "daily-ok@example.com,llm,daily,ru,confirmed\n"
        + "weekly-ok@example.com,rl cv,weekly,en,confirmed\n"
        + "waiting@example.com,,daily,ru,pending\n",
    )
    runner.invoke(app, ["subscribers", "import", str(source)])
    everyone = runner.invoke(app, ["subscribers", "list"])
    assert everyone.exit_code == 0
    for text in ("email", "frequency", "daily-ok@example.com", "weekly-ok@example.com", "cv rl", "(all)"):
        assert text in everyone.stdout
    assert "3 subscribers" in everyone.stdout

    confirmed_daily = runner.invoke(app, ["subscribers", "list", "--status", "confirmed", "--frequency", "daily"])
    assert "daily-ok@example.com" in confirmed_daily.stdout
    assert "weekly-ok" not in confirmed_daily.stdout
    assert "waiting" not in confirmed_daily.stdout
    assert "1 subscriber\n" in confirmed_daily.stdout

    pending = runner.invoke(app, ["subscribers", "list", "--status", "pending"])
    assert "waiting@example.com" in pending.stdout and "daily-ok" not in pending.stdout

    weekly = runner.invoke(app, ["subscribers", "list", "--frequency", "weekly"])
    assert "weekly-ok@example.com" in weekly.stdout and "waiting" not in weekly.stdout

    bad = runner.invoke(app, ["subscribers", "list", "--status", "active"])
    assert bad.exit_code == 2


def test_list_of_an_empty_store(runner: CliRunner) -> None:
    result = runner.invoke(app, ["subscribers", "list"])
    assert result.exit_code == 0
    assert "0 subscribers" in result.stdout


def test_a_bad_subscribers_setting_exits_2() -> None:
    runner = CliRunner(env={"DIGESTPUB_SUBSCRIBERS": "postgres://nowhere"})
    result = runner.invoke(app, ["subscribers", "list"])
    assert result.exit_code == 2
    assert "subscribers" in result.output
