"""Reading the parts of the state a run's head names, each checked against the checksum the head recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from pydantic import ValidationError

from digestpub.errors import StorageError
from digestpub.ports import ObjectStore
from digestpub.state.parts import Head, checksum

M = TypeVar("M")


class PartFiles:
    """The part files of one head: what each store of the state reads its parts through."""

    def __init__(self, store: ObjectStore, head: Head, *, fresh: bool) -> None:
        self.store = store
        self.head = head
        self.fresh = fresh
        """A rebuild: nothing the store holds is read."""

    def load(self, key: str, parse: Callable[[bytes], M]) -> M | None:
        """A part by its name, from the file the head names for it; ``None`` where there is none."""
        file = self.head.parts.get(key)
        if file is None or self.fresh:
            return None
        found = self.store.read(file)
        if found is None:
            raise self.damaged(file, FileNotFoundError("the state's head names it, but it is missing"))
        if checksum(found[0]) != self.head.checksums.get(key):
            raise self.damaged(file, ValueError("its bytes are not those the state's head recorded"))
        return self.parse(file, found[0], parse)

    def parse(self, file: str, data: bytes, parse: Callable[[bytes], M]) -> M:
        try:
            return parse(data)
        except (ValidationError, ValueError, KeyError, TypeError) as error:  # orjson's errors are ValueErrors
            raise self.damaged(file, error) from error

    def damaged(self, key: str, error: Exception) -> StorageError:
        return StorageError(
            f"state file {self.store.url.rstrip('/')}/{key} is damaged ({error}); "
            "publish with --rebuild to start the state afresh"
        )


class PartStore(Protocol):
    """One part of the state, kept by one store: the names of the parts it changed, and their bytes."""

    @property
    def changed(self) -> set[str]: ...

    def serialise(self, key: str) -> bytes: ...
