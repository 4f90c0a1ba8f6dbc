"""The ports: small Protocols that the core talks to and the adapters implement.

The core never imports an SDK; it receives objects that satisfy these.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from digestpub.model import ObjectInfo


class ObjectStore(Protocol):
    """Keys are ``/``-separated and relative to the store's own root or prefix."""

    @property
    def url(self) -> str:
        """Where this store points, for messages: ``s3://bucket/prefix`` or a folder."""
        ...

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` whose key sorts after ``start_after``."""
        ...

    def read(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and version tag, or ``None`` when it does not exist."""
        ...

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
        """Write the object and return its new version tag.

        ``if_match`` writes only over that version; ``if_none_match`` only where no
        object exists. A lost condition raises ``PreconditionFailed``.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object; removing what is absent is not an error."""
        ...
