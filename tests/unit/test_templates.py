"""Compiled templates are kept between runs, and a broken cache never stops one."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemBytecodeCache

from digestpub.templates import environment


def _fresh_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Environment, Path]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    env = environment.__wrapped__()
    assert isinstance(env.bytecode_cache, FileSystemBytecodeCache)
    return env, Path(env.bytecode_cache.directory)


def _render(env: Environment) -> str:
    return env.from_string("{{ 1 + 1 }}").render() + str(env.get_template("_summary.html.j2").name)


def test_compiled_templates_are_kept_in_a_folder_only_this_user_can_enter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, folder = _fresh_environment(tmp_path, monkeypatch)
    env.get_template("page.html.j2")
    assert folder.parent == tmp_path
    assert folder.stat().st_mode & 0o777 == 0o700
    kept = list(folder.iterdir())
    assert kept, "nothing was cached"
    # A later run (here: a new environment) loads them instead of compiling.
    again, _ = _fresh_environment(tmp_path, monkeypatch)

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(again, "compile", no_compiling)
    assert again.get_template("page.html.j2").name == "page.html.j2"
    assert sorted(folder.iterdir()) == sorted(kept)


def test_a_damaged_cached_template_is_compiled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, folder = _fresh_environment(tmp_path, monkeypatch)
    env.get_template("_summary.html.j2")
    for kept in folder.iterdir():
        kept.write_bytes(kept.read_bytes()[:40])
    again, _ = _fresh_environment(tmp_path, monkeypatch)
    assert _render(again) == "2_summary.html.j2"


def test_a_cache_folder_that_cannot_be_written_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env, folder = _fresh_environment(tmp_path, monkeypatch)
    folder.rmdir()  # gone, as a cleaner of temporary files might leave it
    assert _render(env) == "2_summary.html.j2"


def test_no_cache_where_the_folder_belongs_to_no_one_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    env = environment.__wrapped__()
    assert env.bytecode_cache is None
    assert _render(env) == "2_summary.html.j2"
