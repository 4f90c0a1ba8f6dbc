"""The local folder as an object store: reads, create-only writes and deletes, on a real disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digestpub.adapters.folder_store import FolderStore, _read_to_end
from digestpub.errors import PreconditionFailed, StorageError


def test_a_file_that_grew_since_it_was_measured_is_read_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "grown.json"
    path.write_bytes(b"x" * 200_000)
    descriptor = os.open(path, os.O_RDONLY)
    try:
        assert _read_to_end(descriptor, 10) == b"x" * 200_000
    finally:
        os.close(descriptor)


def test_read_gives_the_bytes_and_a_version_that_changes_with_them(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    first = store.put("2026/11/20/a.json", b"{}")
    assert store.read("2026/11/20/a.json") == (b"{}", first)
    second = store.put("2026/11/20/a.json", b'{"id": 1}')
    assert store.read("2026/11/20/a.json") == (b'{"id": 1}', second) and second != first
    assert store.read("2026/11/20/missing.json") is None
    with pytest.raises(StorageError, match="would leave"):
        store.read("../outside.json")


def test_a_create_only_write_makes_the_file_once_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    store.put("newsletter/index.html", b"first", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        store.put("newsletter/index.html", b"second", if_none_match=True)
    assert (tmp_path / "newsletter" / "index.html").read_bytes() == b"first"
    # No lock file and no temporary file among the published ones.
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["index.html", "newsletter"]


def test_a_delete_removes_the_folders_it_empties_and_no_other(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "site")
    store.put("tags/solo/2026/10/index.html", b"october")
    store.put("tags/solo/index.html", b"solo")
    store.delete("tags/solo/2026/10/index.html")
    assert not (tmp_path / "site" / "tags" / "solo" / "2026").exists()
    assert (tmp_path / "site" / "tags" / "solo" / "index.html").read_bytes() == b"solo"
    store.delete("tags/solo/index.html")
    assert (tmp_path / "site").is_dir() and list((tmp_path / "site").iterdir()) == []
    store.delete("tags/none/index.html")  # already gone: nothing to do
