"""In-memory fakes of the ports, for fast unit tests of the core."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

from digestpub.errors import ObjectTooLarge, PreconditionFailed
from digestpub.model import ObjectInfo


class MemoryStore:
    """An object store in a dict, with the same conditional-write rules as S3."""

    is_local = False

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.objects: dict[str, tuple[bytes, str, dict[str, str]]] = {}
        self.puts: list[str] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"memory://{self.name}/"

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        with self._lock:
            keys = sorted(self.objects)
        for key in keys:
            if key.startswith(prefix) and (start_after is None or key > start_after):
                data, etag, _ = self.objects[key]
                yield ObjectInfo(key=key, etag=etag, size=len(data))

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, str] | None:
        with self._lock:
            found = self.objects.get(key)
        if found is not None and max_bytes is not None and len(found[0]) > max_bytes:
            raise ObjectTooLarge(len(found[0]), found[1])
        return None if found is None else (found[0], found[1])

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
        with self._lock:
            current = self.objects.get(key)
            if if_none_match and current is not None:
                raise PreconditionFailed(f"{key} exists")
            if if_match is not None and (current is None or current[1] != if_match):
                raise PreconditionFailed(f"{key} changed")
            etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
            headers = {"content_type": content_type or "", "cache_control": cache_control or ""}
            self.objects[key] = (data, etag, headers)
            self.puts.append(key)
            return etag

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)

    def text(self, key: str) -> str:
        return self.objects[key][0].decode()
