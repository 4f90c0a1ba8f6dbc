"""The private-file helper under hostile umasks, and the ssh-like refusal of a shared secret."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from digestpub.errors import ConfigError
from digestpub.private import open_private, private_file, private_folder, refuse_if_shared


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o277], ids=["umask-000", "umask-022", "umask-277"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_files_and_the_folders_made_for_them_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    database = tmp_path / "a" / "b" / "s.db"
    private_file(database)
    descriptor = open_private(tmp_path / "outbox" / "m.eml", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    os.close(descriptor)
    assert [_mode(path) for path in (database, tmp_path / "outbox" / "m.eml")] == [0o600, 0o600]
    assert [_mode(path) for path in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "outbox")] == [0o700] * 3


def test_an_existing_folder_keeps_its_mode_and_an_existing_file_its_bytes(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    (shared / "s.db").write_bytes(b"kept")
    private_folder(shared)
    private_file(shared / "s.db")
    assert _mode(shared) == 0o755 and (shared / "s.db").read_bytes() == b"kept"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602])
def test_a_secret_others_may_read_or_change_is_refused(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "token_key"
    key.write_text("secret")
    key.chmod(mode)
    with pytest.raises(ConfigError, match=f"chmod 600 {key}"):
        refuse_if_shared(key)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_secret_only_its_owner_reads_is_accepted(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "token_key"
    key.write_text("secret")
    key.chmod(mode)
    refuse_if_shared(key)
    refuse_if_shared(tmp_path / "missing")
