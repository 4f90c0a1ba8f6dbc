"""An outbox folder of ``.eml`` files: the local stand-in for a mail service."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default
from email.utils import getaddresses
from pathlib import Path

from digestpub.errors import MailUnreachable
from digestpub.private import open_private, private_folder
from digestpub.subscriptions.subscribers import address_key

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class OutboxMailer:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._ready = False

    def send(self, sender: str, recipient: str, message: bytes) -> str:
        # Named by time, recipient and a random part (several runs may share the
        # folder); written under a temporary name and renamed, so a reader never
        # sees half a message.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        name = f"{stamp}-{_UNSAFE.sub('_', recipient)[:80]}-{uuid.uuid4().hex[:12]}.eml"
        # Plain strings and os calls: pathlib costs more than the write itself here.
        folder = os.fspath(self.folder)
        temporary = f"{folder}/.{name}.tmp"
        try:
            if not self._ready:
                private_folder(self.folder)
                self._ready = True
            descriptor = open_private(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            try:
                os.write(descriptor, message)
            finally:
                os.close(descriptor)
            os.rename(temporary, f"{folder}/{name}")  # noqa: PTH104
        except OSError as error:
            # A folder that cannot take one message takes none (missing, read-only, full):
            # the one answer of an outbox is "unreachable", which stops the run.
            raise MailUnreachable(f"cannot write to the outbox {self.folder}: {error}") from error
        return name

    def close(self) -> None:
        return None


def forget_recipient(folder: str | Path, address: str) -> int:
    """Delete every message in the outbox addressed to ``address`` (in any case); returns how many.

    For ``subscribers delete``: an outbox holds the person's address in each
    message to them, and in its file name.
    """
    wanted = address_key(address)
    removed = 0
    root = Path(folder)
    if not root.is_dir():
        return 0
    parser = BytesHeaderParser(policy=default)
    for path in root.glob("*.eml"):
        with path.open("rb") as stream:
            headers = parser.parse(stream)
        recipients = [found.lower() for _, found in getaddresses([str(headers.get("To", ""))])]
        if wanted in recipients:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
