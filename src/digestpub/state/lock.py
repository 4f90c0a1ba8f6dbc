"""The state's lease: one run at a time changes the state, and no run waits on itself.

A lease (``lock.json``) names the run that holds it and its process. It is
created only where none exists, and taken over only when it has expired or when
its holder is a process of this host that no longer exists. A conditional write
that S3 applied but answered with an error is retried by the client, and the
retry is refused (412) because of the write itself: so after every refusal the
lease is read back, and one that names this run is this run's.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from digestpub.errors import PreconditionFailed, StateLocked
from digestpub.ports import ObjectStore
from digestpub.state.keys import LOCK_KEY

_LEASE = TypeAdapter(dict[str, str])


def _boot_id() -> str:
    """This kernel's boot id (Linux); empty where there is none, and then no lease is judged by its process."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


_BOOT_ID = _boot_id()


class StateLock:
    """A lease in the state store, held by one run (``run_id``) while it changes the state."""

    def __init__(
        self, store: ObjectStore, ttl: timedelta, wait: timedelta, *, key: str = LOCK_KEY, what: str = "publish run"
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.wait = wait
        self.key = key
        self.what = what
        self.run_id = uuid.uuid4().hex
        self.holder = f"{socket.gethostname()}:{os.getpid()}"

    def _lease(self) -> bytes:
        now = datetime.now(UTC)
        lease = {
            "run_id": self.run_id,
            "holder": self.holder,
            "boot": _BOOT_ID,
            "acquired_at": now.isoformat(),
            "expires_at": (now + self.ttl).isoformat(),
        }
        return _LEASE.dump_json(lease)

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait.total_seconds()
        delay = 0.05
        while True:
            if self._try(None):
                return
            current = self.store.read(self.key)
            if current is not None:
                lease = _parse(current[0])
                if lease.get("run_id") == self.run_id:
                    return
                if _is_over(lease) and self._try(current[1]):
                    return
                if time.monotonic() >= deadline:
                    expires = lease.get("expires_at", "?")
                    raise StateLocked(
                        f"another {self.what} ({lease.get('holder', 'unknown')}, since "
                        f"{lease.get('acquired_at', '?')}) holds {self.store.url.rstrip('/')}/"
                        f"{self.key} until {expires}; try again later, or delete that "
                        "file if the run is known to be dead"
                    )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _try(self, over: str | None) -> bool:
        """Write this run's lease where there is none (``over`` is ``None``) or over version ``over``."""
        try:
            if over is None:
                self.store.put(self.key, self._lease(), if_none_match=True)
            else:
                self.store.put(self.key, self._lease(), if_match=over)
        except PreconditionFailed:
            return self.holds()
        return True

    def holds(self) -> bool:
        """Whether the lease in the store is this run's."""
        current = self.store.read(self.key)
        return current is not None and _parse(current[0]).get("run_id") == self.run_id

    def release(self) -> None:
        if self.holds():
            self.store.delete(self.key)

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _parse(data: bytes) -> dict[str, str]:
    try:
        return _LEASE.validate_json(data)
    except ValidationError:
        return {}


def _is_over(lease: dict[str, str]) -> bool:
    """Expired, unreadable, or held by a process of this host that has ended (killed, or its machine restarted)."""
    expires = lease.get("expires_at", "")
    try:
        if not expires or datetime.fromisoformat(expires) < datetime.now(UTC):
            return True
    except ValueError:
        return True
    host, _, pid = lease.get("holder", "").rpartition(":")
    # The boot id too: two containers or function sandboxes may share a host name
    # and pids, but never a running kernel.
    same_machine = host == socket.gethostname() and bool(_BOOT_ID) and lease.get("boot") == _BOOT_ID
    return same_machine and pid.isdigit() and not _process_exists(int(pid))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True
