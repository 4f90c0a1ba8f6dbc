"""CPU-bound stages on every core, for the large runs that need it.

Small runs (the hourly incremental ones) stay in one process: starting workers
costs more than it saves, and some hosts (AWS Lambda) cannot start them at all.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

log = logging.getLogger("digestpub.parallel")

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_chunks(function: Callable[[T], list[R]], chunks: Sequence[T], workers: int) -> list[R]:
    """``function`` over each chunk, in order, flattened; in worker processes when worth it."""
    if workers > 1 and len(chunks) > 1 and "fork" in multiprocessing.get_all_start_methods():
        try:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
                return [result for part in pool.map(function, chunks) for result in part]
        except (OSError, BrokenProcessPool) as error:
            log.info("running in one process: worker processes are not available (%s)", error)
    return [result for chunk in chunks for result in function(chunk)]


def split(items: Sequence[T], parts: int, minimum: int) -> list[Sequence[T]]:
    """``items`` in about ``parts`` slices of at least ``minimum`` each."""
    size = max(minimum, -(-len(items) // max(parts, 1)))
    return [items[start : start + size] for start in range(0, len(items), size)]
