"""Bad input at the door, through the ``digestpub`` command as a process: ``publish`` and ``check`` alike."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import summary
from tests.e2e.test_cli import _env, run, summary_of

DAY = "2026/11/20"


def write(source: Path, name: bytes, document: object) -> Path:
    folder = source / DAY
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(os.fsdecode(os.fsencode(folder) + b"/" + name))
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def publish_args(source: Path) -> list[str]:
    return ["publish", "--source", str(source), "--dest", "D", "--state", "S"]


def test_a_file_name_that_is_not_utf8_is_reported_by_publish_run_after_run(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(source, b"good.json", summary(1))
    write(source, b"bad\xff\xfe.json", summary(2))
    for new in (1, 0):
        result = run(tmp_path, *publish_args(source))
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert summary_of(result)["new"] == new
        assert f"{DAY}/bad\\xff\\xfe.json" in result.stderr
        assert "not valid UTF-8" in result.stderr


def test_check_reports_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(source, b"good.json", summary(1))
    write(source, b"bad\xff\xfe.json", summary(2))
    result = run(tmp_path, "check", "src")
    assert result.returncode == 1, result.stderr
    assert f"src/{DAY}/bad\\xff\\xfe.json: skipped: its name is not valid UTF-8" in result.stdout
    assert "1 summary, 1 would be skipped" in result.stderr

    as_json = run(tmp_path, "check", "src", "--json")
    assert json.loads(as_json.stdout)["problems"][0]["key"] == f"src/{DAY}/bad\\xff\\xfe.json"


def test_check_sums_up_a_flood_of_broken_lines(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / DAY).mkdir(parents=True)
    (source / DAY / "flood.jsonl").write_bytes(b"{broken\n" * 50_000)
    result = run(tmp_path, "check", "src")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 11
    assert lines[-1] == f"src/{DAY}/flood.jsonl:11: skipped: 49,990 skipped from here on, not listed one by one"
    assert "50000 would be skipped" in result.stderr


def test_max_object_bytes_from_a_flag_and_a_variable(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(source, b"small.json", summary(1))
    big = write(source, b"big.json", summary(2, notes="x" * 3_000))
    reason = f"{big.stat().st_size:,} bytes is over the limit of 2,048 (max_object_bytes)"

    checked = run(tmp_path, "check", "src", "--max-object-bytes", "2048")
    assert checked.returncode == 1
    assert f"src/{DAY}/big.json: skipped: {reason}" in checked.stdout

    published = run(tmp_path, *publish_args(source), env=_env(DIGESTPUB_MAX_OBJECT_BYTES="2048"))
    assert published.returncode == 0, published.stderr
    assert summary_of(published)["new"] == 1
    assert reason in " ".join(published.stderr.split())

    assert run(tmp_path, "check", "src").returncode == 0  # the default limit, 1 MB, takes it


def test_check_and_publish_name_a_misspelt_field_and_still_pass_it(tmp_path: Path) -> None:
    source = tmp_path / "src"
    document = summary(1)
    document["tag"] = document.pop("tags")
    write(source, b"typo.json", document)
    warning = "`tag`: unknown field; did you mean `tags`?"

    checked = run(tmp_path, "check", "src")
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.splitlines() == [f"src/{DAY}/typo.json: warning: {warning}"]
    assert "0 would be skipped, 0 cleaned, 1 warning(s)" in checked.stderr

    published = run(tmp_path, *publish_args(source))
    assert published.returncode == 0, published.stderr
    assert summary_of(published)["new"] == 1
    assert published.stdout.strip().endswith("; 1 warning(s)")
    assert warning in published.stderr


def test_check_reports_two_tags_that_share_a_slug_and_not_one_tag_in_two_scripts(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for number, tag in enumerate(["C++", "C#", "C", "Вопрос", "vopros", "machine learning", "machine-learning"], 1):
        write(source, f"tagged-{number}.json".encode(), summary(number, tags=[tag]))
    result = run(tmp_path, "check", "src")
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == [
        f"src/{DAY}/tagged-7.json: warning: tag `machine-learning` shares the page tags/machine-learning/ "
        "with `machine learning`: rename one to keep them apart"
    ]
