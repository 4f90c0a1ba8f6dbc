"""Each summary's newest version as published, by id: where it came from, its tags and its places in its feeds.

256 shards by id hash; the ids recorded since the shards were last written, in
a part of their own (folded into the shards once there are many, so a run that
adds a hundred summaries writes one part, not a hundred); and the sorted hashes
of every id, so a new id is told new without reading its shard.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from itertools import chain

from digestpub.model import SummaryRef
from digestpub.state.files import PartFiles
from digestpub.state.keys import KNOWN_IDS_KEY, RECENT_IDS_KEY, shard_key
from digestpub.state.parts import (
    ID_SHARDS,
    IdEntry,
    holds,
    id_hash,
    id_shard,
    ids_from_json,
    ids_to_json,
    known_from_bytes,
    known_to_bytes,
)

RECENT_IDS_LIMIT = 2_000
"""Ids recorded in the part of recent ids before they are folded into their shards."""


class SummaryIndex:
    def __init__(self, files: PartFiles) -> None:
        self._files = files
        self._shards: dict[str, dict[str, IdEntry]] = {}
        self._recent_ids: dict[str, IdEntry] | None = None
        self._known: array[int] | None = None
        self._known_loaded = False
        self._newly_known: set[int] = set()
        # Nothing published yet: no shard holds an id, so a cold run looks none up.
        self._no_shards = files.head.total == 0
        self.changed: set[str] = set()

    def entry(self, summary_id: str) -> IdEntry | None:
        recent = self._recent().get(summary_id)
        if recent is not None or self._no_shards:
            return recent
        known = self._known_hashes()
        if known is not None and not holds(known, id_hash(summary_id)):
            return None  # never recorded: no shard holds it
        return self._shard(id_shard(summary_id)).get(summary_id)

    def record(self, summaries: Iterable[SummaryRef], positions: Mapping[str, list[int]]) -> None:
        """Note the newest version of summaries, and their ``positions`` in their feeds, by id."""
        recent = self._recent()
        recorded = False
        for summary in summaries:
            recent[summary.id] = IdEntry(
                summary.version, summary.source_key, summary.digest, list(summary.tag_slugs), positions[summary.id]
            )
            self._newly_known.add(id_hash(summary.id))
            recorded = True
        if recorded:
            self.changed.update((RECENT_IDS_KEY, KNOWN_IDS_KEY))

    def forget(self, summary_ids: Iterable[str]) -> None:
        """Summaries deleted from the source: no version of them is recorded any more.

        Their hashes stay among the known ones: a hash that finds no id costs one shard read.
        """
        recent = self._recent()
        for summary_id in summary_ids:
            if recent.pop(summary_id, None) is not None:
                self.changed.add(RECENT_IDS_KEY)
            if self._no_shards:
                continue
            shard = id_shard(summary_id)
            if self._shard(shard).pop(summary_id, None) is not None:
                self.changed.add(shard_key(shard))

    def fold(self) -> None:
        """Move the recent ids into their shards once there are many: before a commit."""
        recent = self._recent()
        if len(recent) < RECENT_IDS_LIMIT:
            return
        by_shard: dict[str, dict[str, IdEntry]] = {}
        for summary_id, entry in recent.items():
            by_shard.setdefault(id_shard(summary_id), {})[summary_id] = entry
        for shard, entries in by_shard.items():
            self._shard(shard).update(entries)
            self.changed.add(shard_key(shard))
        recent.clear()
        self.changed.add(RECENT_IDS_KEY)

    def serialise(self, key: str) -> bytes:
        if key == RECENT_IDS_KEY:
            return ids_to_json(self._recent())
        if key == KNOWN_IDS_KEY:
            return known_to_bytes(self._all_known_hashes())
        return ids_to_json(self._shards[key.removeprefix("catalog/ids/").removesuffix(".json")])

    def _known_hashes(self) -> array[int] | None:
        if not self._known_loaded:
            self._known = self._files.load(KNOWN_IDS_KEY, known_from_bytes)
            self._known_loaded = True
        return self._known

    def _recent(self) -> dict[str, IdEntry]:
        if self._recent_ids is None:
            self._recent_ids = self._files.load(RECENT_IDS_KEY, ids_from_json) or {}
        return self._recent_ids

    def _shard(self, shard: str) -> dict[str, IdEntry]:
        if shard not in self._shards:
            self._shards[shard] = self._files.load(shard_key(shard), ids_from_json) or {}
        return self._shards[shard]

    def _all_known_hashes(self) -> array[int]:
        known = self._known_hashes()
        if known is None:
            known = array("I")
            if not self._no_shards:
                # A state whose part of known hashes is gone: every id in it, once.
                hashes = set(map(id_hash, self._recent()))
                for number in range(ID_SHARDS):
                    hashes.update(map(id_hash, self._shard(f"{number:03x}")))
                known = array("I", sorted(hashes))
        added = sorted(value for value in self._newly_known if not holds(known, value))
        # Two sorted runs: the sort merges them rather than sorting afresh.
        return array("I", sorted(chain(known, added))) if added else known
