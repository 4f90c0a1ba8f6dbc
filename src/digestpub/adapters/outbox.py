"""An outbox folder of ``.eml`` files: the local stand-in for a mail service."""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from digestpub.errors import MailTransient

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class OutboxMailer:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def send(self, sender: str, recipient: str, message: bytes) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        name = _UNSAFE.sub("_", recipient)[:80]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Written under a temporary name and renamed, so a reader never sees half a message.
            descriptor, temporary = tempfile.mkstemp(dir=self.folder, prefix=f"{stamp}-{name}-", suffix=".tmp")
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(message)
            final = Path(temporary).with_suffix(".eml")
            Path(temporary).replace(final)
        except OSError as error:
            raise MailTransient(f"cannot write to the outbox {self.folder}: {error}") from error
        return final.name

    def close(self) -> None:
        return None
