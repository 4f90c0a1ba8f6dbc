"""Files that hold secrets or personal data: 0600 in 0700 folders, whatever the umask.

The token key, the subscriber database (SQLite gives its ``-wal`` and ``-shm``
files the database's mode), the send ledger and the outbox's messages are made
here. Folders that already exist keep their mode: they may be the user's own.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from digestpub.errors import ConfigError

SECRETS_PREFIX = "secrets/"
"""Keys of a state store under this prefix are secrets: a folder keeps them private."""
PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


def private_folder(folder: Path) -> None:
    """Create ``folder`` and any missing parents as 0700."""
    missing: list[Path] = []
    current = folder
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent run made it, private too
            path.mkdir(PRIVATE_FOLDER)
            path.chmod(PRIVATE_FOLDER)  # mkdir's mode passes through the umask


def open_private(path: str | Path, flags: int) -> int:
    """``os.open`` that creates ``path`` (and a missing folder) private; the caller closes it.

    Only for files digestpub names itself (temporary and new files): with ``O_CREAT``
    the file ends 0600 even if it was there.
    """
    try:
        descriptor = os.open(path, flags | os.O_CLOEXEC, PRIVATE_FILE)
    except FileNotFoundError:
        private_folder(Path(path).parent)
        descriptor = os.open(path, flags | os.O_CLOEXEC, PRIVATE_FILE)
    if flags & os.O_CREAT:
        os.fchmod(descriptor, PRIVATE_FILE)  # the umask may have taken the owner's bits too
    return descriptor


def private_file(path: Path) -> None:
    """Create an empty ``path`` private unless it exists (SQLite then keeps its mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))


def refuse_if_shared(path: Path) -> None:
    """``ConfigError`` if others than the owner may read or change the secret at ``path``, as ssh
    refuses such a private key: whoever reads the token key can forge any subscriber's links."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        raise ConfigError(
            f"{path} holds a secret but others may read or change it (mode {mode:04o}); "
            f"run chmod 600 {path}, and if someone may have copied it, delete it to make a new one "
            "(links in emails already sent then stop working)"
        )
