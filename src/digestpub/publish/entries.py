"""Where a run's summaries are read and their entries rendered: in this process, or in forked workers.

This is the only module of the publish use case that knows worker processes
exist. A large run (a cold start, a rebuild) starts one worker per core
(``parallel.ForkedWorkers``): the workers read and validate a share of the
objects each and keep the summaries, so only small references (``SummaryRef``)
reach the run; once the run has merged them, each worker renders the entries of
the summaries accepted (every one enters its month's archives), and sends back
whole the ones newsletters log. A small run does the same in this process.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from digestpub.errors import ObjectTooLarge
from digestpub.model import Problem, Summary, SummaryRef
from digestpub.ports import ObjectStore
from digestpub.publish.ingest import SummaryReader
from digestpub.publish.listing import Progress
from digestpub.publish.parallel import ForkedWorkers
from digestpub.render.entries import EntryPack, render_entries
from digestpub.site import Site

_BATCH = 500
"""Records or entries a worker sends at a time."""

_Place = tuple[str, int | None]
"""Where a summary was read: its object's key, and its line in a JSON Lines object."""

_Memory = dict[str, Any]
"""What a worker keeps between its tasks: the ``reader`` and the ``source`` it
starts with, then the ``summaries`` it read and keeps, by place."""

_IO_THREADS = 16


class SummarySource:
    """The summaries of a run's source objects, and their entries, from wherever they were read.

    ``workers`` above one forks that many processes, if the host can.
    """

    def __init__(self, reader: SummaryReader, source: ObjectStore, workers: int) -> None:
        self._source = source
        self._max_bytes = reader.max_object_bytes
        self._workers = ForkedWorkers(workers, {"reader": reader, "source": source})
        self._reader_of: dict[str, int] = {}
        """Which worker read each object, by key: it holds that object's summaries."""
        self._records: list[SummaryRef | Problem] = []

    def __enter__(self) -> SummarySource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._workers.close()

    def read(self, keys: Sequence[str], sizes: Sequence[int], progress: Progress) -> dict[str, str | None]:
        """Read the objects at ``keys``, listed as ``sizes`` bytes: the version read of each, ``None`` if gone.

        Their summaries and problems join ``records``. From a local folder each
        worker reads its own share, one file after another, so reading is shared
        out as parsing is (a pool of threads made local reads much slower,
        fighting over the interpreter lock). Over a network this process fetches the objects with a pool of
        threads, each waiting on its own request, and sends each worker its share.
        """
        # An object listed without a size (a named key) counts as a small one.
        shares = balanced([size + 1 for size in sizes], self._workers.size)
        for worker, share in enumerate(shares):
            self._reader_of.update((keys[index], worker) for index in share)
        local = self._source.is_local
        fetched = None if local else _fetch(self._source, keys, self._max_bytes, progress)
        work = [
            _Share([keys[index] for index in share], None if fetched is None else [fetched[index] for index in share])
            for share in shares
        ]
        versions: dict[str, str | None] = {}
        for records, reads in self._workers.run(_read_objects, work):
            self._records += records
            versions.update(reads)
            if local:
                progress("reading", len(versions), len(keys))
        return versions

    def records(self) -> list[SummaryRef | Problem]:
        """Every summary and problem read, in the order one process would have read them."""
        # The first copy of a duplicate id is the one that holds it.
        self._records.sort(key=_source_position)
        return self._records

    def render(self, site: Site, shown: Sequence[SummaryRef], whole: Sequence[SummaryRef]) -> Rendered:
        """Entries of the ``shown`` summaries, and the ``whole`` ones as they were read.

        Each summary is rendered once: a worker lets it go once its entries are
        sent. One asked for again is left out, and the run reads it again from
        its source.
        """
        requests = [_Request(site, [], []) for _ in range(self._workers.size)]
        for summary in shown:
            requests[self._reader_of[summary.source_key]].render.append((summary.source_key, summary.source_line))
        for summary in whole:
            requests[self._reader_of[summary.source_key]].whole.append((summary.source_key, summary.source_line))
        rendered = Rendered({}, {})
        for pack, summaries in self._workers.run(_render_kept, requests):
            rendered.entries.update(dict.fromkeys(pack.ids(), pack))
            rendered.summaries.update((summary.id, summary) for summary in summaries)
        return rendered


@dataclass
class Rendered:
    entries: dict[str, EntryPack]
    """The pack that holds each summary's entries, by id."""
    summaries: dict[str, Summary]


def read_again(source: ObjectStore, reader: SummaryReader, wanted: dict[str, str]) -> dict[str, Summary]:
    """The newest version of each summary in ``wanted`` (id to key), read again from its object.

    By id, not line: the object may have been rewritten since.
    """
    found: dict[str, Summary] = {}
    for key in sorted(set(wanted.values())):
        read = _read_within(source, key, reader.max_object_bytes)
        if not isinstance(read, tuple):
            continue
        for record in reader.read_object(key, read[0]):
            if isinstance(record, Summary) and wanted.get(record.id) == key:
                earlier = found.get(record.id)
                if earlier is None or record.version > earlier.version:
                    found[record.id] = record
    return found


T = TypeVar("T")
R = TypeVar("R")


def spread(
    work: Callable[[T], R], items: Sequence[T], weights: Sequence[int], workers: int, prepare: Callable[[], object]
) -> Iterator[R]:
    """``work`` on every item, in ``workers`` forked processes that share this one's memory as it is now.

    ``prepare`` runs first, here, so that what it builds (a compiled template) is
    built once rather than in every worker.
    """
    if workers > 1:
        prepare()
    with ForkedWorkers(workers, {"work": work, "items": items}) as pool:
        yield from pool.run(_work_on, balanced(weights, pool.size))


def _work_on(memory: _Memory, indexes: Sequence[int]) -> Iterator[Any]:
    work, items = memory["work"], memory["items"]
    for index in indexes:
        yield work(items[index])


def balanced(sizes: Sequence[int], parts: int) -> list[list[int]]:
    """Indexes of ``sizes`` in ``parts`` shares of about the same total, each in order."""
    shares: list[list[int]] = [[] for _ in range(parts)]
    totals = [(0, part) for part in range(parts)]
    for index in sorted(range(len(sizes)), key=sizes.__getitem__, reverse=True):
        total, part = heapq.heappop(totals)
        shares[part].append(index)
        heapq.heappush(totals, (total + sizes[index], part))
    return [sorted(share) for share in shares]


def _source_position(record: SummaryRef | Problem) -> tuple[str, int]:
    if isinstance(record, SummaryRef):
        return record.source_key, record.source_line or 0
    return record.key, record.line or 0


@dataclass
class _Share:
    """The objects one worker reads."""

    keys: list[str]
    fetched: list[_Fetched] | None
    """Their bytes and version as this process fetched them, ``None`` for one gone;
    the list is ``None`` when the worker reads them itself from a local folder."""


_Fetched = tuple[bytes, str] | ObjectTooLarge | None
"""An object's bytes and version; what stopped its reading for its size; ``None``: it is gone."""


def _read_within(source: ObjectStore, key: str, max_bytes: int) -> _Fetched:
    try:
        return source.read(key, max_bytes)
    except ObjectTooLarge as error:
        return error


def _fetch(source: ObjectStore, keys: Sequence[str], max_bytes: int, progress: Progress) -> list[_Fetched]:
    found: list[_Fetched] = []
    with ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="digestpub-read") as pool:
        for done, read in enumerate(pool.map(partial(_read_within, source, max_bytes=max_bytes), keys), start=1):
            found.append(read)
            if done % 256 == 0 or done == len(keys):
                progress("reading", done, len(keys))
    return found


def _read_objects(
    memory: _Memory, share: _Share
) -> Iterator[tuple[list[SummaryRef | Problem], list[tuple[str, str | None]]]]:
    """In a worker: read the objects of ``share``, keep their summaries; yields refs and problems,
    and the version read of each object (``None``: it is gone, deleted since it was listed or never there)."""
    reader: SummaryReader = memory["reader"]
    source: ObjectStore = memory["source"]
    summaries: dict[_Place, Summary] = memory.setdefault("summaries", {})
    records: list[SummaryRef | Problem] = []
    reads: list[tuple[str, str | None]] = []
    for index, key in enumerate(share.keys):
        if share.fetched is None:
            found = _read_within(source, key, reader.max_object_bytes)
        else:
            found, share.fetched[index] = share.fetched[index], None  # each object is freed once it is read
        if isinstance(found, ObjectTooLarge):
            reads.append((key, found.version))
            records.append(reader.too_large(key, found.size))
        else:
            reads.append((key, None if found is None else found[1]))
            for record in () if found is None else reader.read_object(key, found[0]):
                if isinstance(record, Summary):
                    summaries[record.source_key, record.source_line] = record
                    records.append(record.ref())
                else:
                    records.append(record)
        if len(records) >= _BATCH:
            yield records, reads
            records, reads = [], []
    yield records, reads


@dataclass
class _Request:
    """What a run asks of one worker once the feeds are planned."""

    site: Site
    render: list[_Place]
    """The summaries to render entries of."""
    whole: list[_Place]
    """The summaries to send back whole: newsletters log them."""


def _render_kept(memory: _Memory, request: _Request) -> Iterator[tuple[EntryPack, list[Summary]]]:
    """In a worker: render the entries asked for and send back the summaries asked for."""
    summaries: dict[_Place, Summary] = memory.get("summaries", {})
    yield EntryPack([], {}), [summaries[where] for where in request.whole if where in summaries]
    batch: list[Summary] = []
    for where in request.render:
        # Rendered once and sent: the worker keeps neither the entry nor the summary's HTML.
        summary = summaries.pop(where, None)
        if summary is None:
            continue
        batch.append(summary)
        if len(batch) >= _BATCH:
            yield render_entries(request.site, batch), []
            batch = []
    yield render_entries(request.site, batch), []
