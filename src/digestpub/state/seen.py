"""The source objects as last read: each one's version tag and the ids it held, in a part per month.

A part a month, not a day: a cold run over years writes a few dozen, not a
thousand, and an incremental run reads one or two.
"""

from __future__ import annotations

import orjson

from digestpub.state.files import PartFiles
from digestpub.state.keys import seen_key, seen_month
from digestpub.state.parts import SEEN, SeenObject


class SeenObjects:
    def __init__(self, files: PartFiles) -> None:
        self._files = files
        self._months: dict[str, dict[str, SeenObject]] = {}
        self.changed: set[str] = set()

    def objects(self, day: str) -> dict[str, SeenObject]:
        """The objects of the month of ``day`` (``YYYY/MM/DD``, or the month ``YYYY/MM``), by key."""
        month = day[:7]
        if month not in self._months:
            self._months[month] = self._files.load(seen_key(month), SEEN.validate_json) or {}
        return self._months[month]

    def months(self) -> list[str]:
        """Every month (``YYYY/MM``) in which the state has seen source objects, oldest first."""
        months = {seen_month(part) for part in self._files.head.parts} | set(self._months)
        return sorted(month for month in months if month is not None)

    def mark(self, key: str, etag: str) -> None:
        """The object at ``key`` was read in version ``etag``; the ids it held stay until ``set_held``."""
        objects = self.objects(key[:10])
        earlier = objects.get(key)
        objects[key] = (etag, [] if earlier is None else earlier[1])
        self.changed.add(seen_key(key[:7]))

    def held(self, key: str) -> list[str]:
        """The ids of the summaries the object at ``key`` held when last read."""
        found = self.objects(key[:10]).get(key)
        return [] if found is None else found[1]

    def set_held(self, key: str, ids: list[str]) -> None:
        objects = self.objects(key[:10])
        etag, earlier = objects.get(key, ("", []))
        if earlier != ids:
            objects[key] = (etag, ids)
            self.changed.add(seen_key(key[:7]))

    def holders(self, summary_ids: set[str], besides: set[str]) -> list[str]:
        """Other keys, among the months this run has loaded, that held any of ``summary_ids`` when last read.

        A copy or an older version of a summary whose object is gone: reading it
        again tells whether the summary stays. The loaded months are every month
        on a full scan, and the recent ones and the gone objects' own otherwise.
        """
        if not summary_ids:
            return []
        return sorted(
            key
            for objects in self._months.values()
            for key, (_, held) in objects.items()
            if key not in besides and not summary_ids.isdisjoint(held)
        )

    def forget(self, key: str) -> list[str]:
        """The object at ``key`` is gone from the source: forget it; returns the ids it held."""
        found = self.objects(key[:10]).pop(key, None)
        if found is None:
            return []
        self.changed.add(seen_key(key[:7]))
        return found[1]

    def serialise(self, key: str) -> bytes:
        # orjson, not the adapter: a cold run's thousands of rows, without pydantic's copy of them.
        month = seen_month(key)
        assert month is not None
        return orjson.dumps(self._months[month])
