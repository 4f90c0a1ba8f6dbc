"""A local folder as an object store: atomic renames, and a lock for conditional writes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from digestpub.errors import ObjectTooLarge, PreconditionFailed, StorageError
from digestpub.model import ObjectInfo
from digestpub.private import SECRETS_PREFIX, open_private, refuse_if_shared

_LOCK_NAME = ".digestpub-write.lock"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def _version_tag(stat: os.stat_result) -> str:
    # A rename gives a new inode, and an in-place rewrite a new mtime, so this
    # changes whenever the bytes may have, without reading them.
    return f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"


def _read_to_end(descriptor: int, size: int) -> bytes:
    """The file's bytes: in one call when it is ``size`` long, as it nearly always is.

    A cold run reads 20,000 summaries in a row: without a file object each read
    costs two thirds as much.
    """
    data = os.read(descriptor, size + 1)
    if len(data) <= size:  # a short read of a regular file is its end
        return data
    chunks = [data]
    while chunk := os.read(descriptor, 1 << 16):  # it grew since it was measured
        chunks.append(chunk)
    return b"".join(chunks)


class FolderStore:
    is_local = True

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()
        self._prefix = f"{self.root}{os.sep}"

    @property
    def url(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> str:
        # Plain strings, not pathlib: a cold run makes tens of thousands of these,
        # and pathlib's parsing showed in its reading and writing.
        if not key or key[0] == "/" or any(part in ("", ".", "..") for part in key.split("/")):
            raise StorageError(f"refusing key {key!r}: it would leave {self.root}")
        return f"{self._prefix}{key}"

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        start = self.root / prefix if prefix else self.root
        if not start.is_dir():
            return
        yield from self._walk(start, prefix.rstrip("/") + "/" if prefix else "", start_after)

    def _walk(self, folder: Path, rel: str, start_after: str | None) -> Iterator[ObjectInfo]:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            raise StorageError(f"cannot list {folder}: {error}") from error
        for entry in entries:
            key = rel + entry.name
            if entry.name.startswith(".digestpub-") or entry.name.endswith(".tmp"):
                continue
            if entry.is_dir(follow_symlinks=False):
                subtree = key + "/"
                # Skip whole subtrees whose keys all sort before start_after.
                if start_after and subtree < start_after and not start_after.startswith(subtree):
                    continue
                yield from self._walk(Path(entry.path), subtree, start_after)
            elif entry.is_file(follow_symlinks=False):
                if start_after and key <= start_after:
                    continue
                stat = entry.stat(follow_symlinks=False)
                yield ObjectInfo(key=key, etag=_version_tag(stat), size=stat.st_size)

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, str] | None:
        path = self._path(key)
        if key.startswith(SECRETS_PREFIX):
            refuse_if_shared(Path(path))
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageError(f"cannot read {path}: {error}") from error
        try:
            stat = os.fstat(descriptor)
            if max_bytes is not None and stat.st_size > max_bytes:
                raise ObjectTooLarge(stat.st_size, _version_tag(stat))
            return _read_to_end(descriptor, stat.st_size), _version_tag(stat)
        except OSError as error:
            raise StorageError(f"cannot read {path}: {error}") from error
        finally:
            os.close(descriptor)

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        path = self._path(key)
        folder, _, name = path.rpartition(os.sep)
        # A temporary name of this process and thread: no other writer uses it, so
        # no random name and no retry, which cost more than the write on small files.
        temporary = f"{folder}{os.sep}.{name}.{os.getpid()}-{threading.get_ident()}.tmp"
        try:
            if key.startswith(SECRETS_PREFIX):
                descriptor = open_private(temporary, _CREATE)
            else:
                try:
                    descriptor = os.open(temporary, _CREATE, 0o644)
                except FileNotFoundError:
                    os.makedirs(folder, exist_ok=True)
                    descriptor = os.open(temporary, _CREATE, 0o644)
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    # A rename keeps the inode and mtime: the tag is the published file's.
                    version = _version_tag(os.fstat(handle.fileno()))
                if if_match is None and not if_none_match:
                    os.replace(temporary, path)
                elif if_match is None:
                    # A link is made only where no file is: atomic without the lock,
                    # whose file would otherwise sit among the published ones.
                    try:
                        os.link(temporary, path)
                    except FileExistsError:
                        raise PreconditionFailed(f"{key} already exists") from None
                    os.unlink(temporary)
                else:
                    with self._write_lock():
                        self._check_precondition(path, key, if_match, if_none_match)
                        os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
            return version
        except PreconditionFailed:
            raise
        except OSError as error:
            raise StorageError(f"cannot write {path}: {error}") from error

    @staticmethod
    def _check_precondition(path: str, key: str, if_match: str | None, if_none_match: bool) -> None:
        try:
            current: str | None = _version_tag(os.stat(path))
        except FileNotFoundError:
            current = None
        if if_none_match and current is not None:
            raise PreconditionFailed(f"{key} already exists")
        if if_match is not None and current != if_match:
            raise PreconditionFailed(f"{key} changed since it was read")

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / _LOCK_NAME).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        # Keys have no folders: one left empty (a month whose last summary went)
        # would still be served and listed as if it held something.
        folder = os.path.dirname(path)
        while len(folder) > len(self._prefix):
            try:
                os.rmdir(folder)
            except OSError:  # not empty, or already gone
                break
            folder = os.path.dirname(folder)
