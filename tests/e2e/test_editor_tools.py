"""``digestpub check`` and ``digestpub report`` as the editors' pipeline runs them: subprocesses.

``check`` must judge every input exactly as ``publish`` does (the bad-input set
is run through both), and exit 1 only when publish would skip something.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from digestpub.adapters.folder_store import FolderStore
from digestpub.model import PublishReport
from tests.conftest import EXAMPLES
from tests.e2e.test_cli import one_line, run
from tests.integration import test_bad_inputs as bad_inputs

BROKEN = ("2026/11/22/broken.json", None)
BROKEN_LINE = ("2026/11/21/evening.jsonl", 3)
EXCLUDE_BROKEN = ("--exclude", "*/broken.json", "--exclude", "*/evening.jsonl:3")


def problems_of(stdout: str) -> set[tuple[str, int | None, str, str]]:
    found = json.loads(stdout)["problems"]
    return {(problem["key"], problem["line"], problem["outcome"], problem["reason"]) for problem in found}


def test_check_on_the_examples_lists_the_broken_objects_and_exits_1(tmp_path: Path) -> None:
    result = run(tmp_path, "check", str(EXAMPLES))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    skipped = [line for line in lines if ": skipped: " in line]
    assert len(skipped) == 2, lines
    assert any(line.startswith(f"{EXAMPLES.as_posix()}/{BROKEN[0]}: skipped: published_at") for line in skipped)
    assert any(line.startswith(f"{EXAMPLES.as_posix()}/{BROKEN_LINE[0]}:3: skipped: invalid JSON") for line in skipped)
    assert "28 file(s): 29 summaries, 2 would be skipped, 1 cleaned" in one_line(result.stderr)


def test_check_on_the_examples_exits_0_once_the_broken_objects_are_excluded(tmp_path: Path) -> None:
    result = run(tmp_path, "check", str(EXAMPLES.parent), *EXCLUDE_BROKEN)
    assert result.returncode == 0, result.stdout + result.stderr
    # The cleaned summary is still shown: it is published, with its unsafe markup removed.
    assert [line.split(": ")[1] for line in result.stdout.splitlines()] == ["cleaned"]
    assert "27 file(s): 29 summaries, 0 would be skipped" in one_line(result.stderr)


def test_check_reports_the_bad_input_set_exactly_as_publish_does(tmp_path: Path) -> None:
    bad_inputs._write_source(tmp_path / "source")
    report = bad_inputs.run_publish(tmp_path)
    published = {(problem.key, problem.line, problem.outcome, problem.reason) for problem in report.problems}

    result = run(tmp_path / "source", "check", ".", "--json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["ok"] is False
    assert problems_of(result.stdout) == published
    for case in bad_inputs.CASES:
        assert any(key == case.key and line == case.line for key, line, _, _ in published), case.name


def test_check_json_of_a_good_file_is_ok(tmp_path: Path) -> None:
    good = tmp_path / "upload.json"  # not in a day folder yet: checked by its suffix
    good.write_text(json.dumps(bad_inputs.doc("fine", summary="**Текст**")), encoding="utf-8")
    result = run(tmp_path, "check", "--json", str(good))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "files": 1, "summaries": 1, "problems": []}


def test_check_names_a_file_that_publish_would_ignore(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("{}", encoding="utf-8")
    result = run(tmp_path, "check", "notes.txt")
    assert result.returncode == 1
    assert result.stdout.startswith("notes.txt: skipped: not a summary file")


def test_check_of_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "check", "nowhere/2026")
    assert result.returncode == 2
    assert "nowhere/2026 does not exist" in one_line(result.stderr)


def test_check_finds_duplicate_ids_across_the_files_it_is_given(tmp_path: Path) -> None:
    for day in ("2026/11/20", "2026/11/21"):
        folder = tmp_path / day
        folder.mkdir(parents=True)
        (folder / "same.json").write_text(json.dumps(bad_inputs.doc("twice")), encoding="utf-8")
    result = run(tmp_path, "check", ".")
    assert result.returncode == 1
    assert "2026/11/21/same.json: skipped: duplicate id 'twice'" in result.stdout


def test_report_shows_what_the_last_run_did_and_the_unfixed_inputs(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(EXAMPLES, source)
    assert run(tmp_path, "publish", "--source", str(source), "--dest", "D", "--state", "S").returncode == 0

    shown = run(tmp_path, "report", "--state", "S")
    assert shown.returncode == 0, shown.stderr
    text = one_line(shown.stdout)
    assert "objects read: 28; summaries: 28 new" in text
    assert "2 skipped input(s) still unfixed" in text
    assert BROKEN[0] in text and BROKEN_LINE[0] in text and "no UTC offset" in text

    as_json = run(tmp_path, "report", "--state", "S", "--json")
    assert as_json.returncode == 0
    saved = json.loads((tmp_path / "S" / "reports" / "latest.json").read_text(encoding="utf-8"))
    assert json.loads(as_json.stdout) == saved

    # The editors fix one object; the next run's report lists only the other, which that run did not read.
    fixed = source / BROKEN[0]
    fixed.write_text(fixed.read_text(encoding="utf-8").replace("08:00:00", "08:00:00+03:00"), encoding="utf-8")
    again = run(tmp_path, "publish", "--source", str(source), "--dest", "D", "--state", "S")
    assert again.returncode == 0, again.stderr
    shown = run(tmp_path, "report", "--state", "S", "--json")
    saved_report = PublishReport.model_validate_json(shown.stdout)
    assert saved_report.summaries_new == 1 and saved_report.skipped == 0
    assert [(problem.key, problem.line) for problem in saved_report.skipped_inputs] == [BROKEN_LINE]
    text = one_line(run(tmp_path, "report", "--state", "S").stdout)
    assert "1 skipped input(s) still unfixed" in text and BROKEN_LINE[0] in text and BROKEN[0] not in text


def test_report_before_any_run_or_of_a_damaged_report_exits_1(tmp_path: Path) -> None:
    missing = run(tmp_path, "report", "--state", "S")
    assert missing.returncode == 1
    assert "no publish run has been recorded" in one_line(missing.stderr)
    FolderStore(tmp_path / "S").put("reports/latest.json", b'{"run_id": 3}')
    damaged = run(tmp_path, "report", "--state", "S")
    assert damaged.returncode == 1
    assert "is not a publish report" in one_line(damaged.stderr)
