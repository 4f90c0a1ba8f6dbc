"""CPU-bound stages on every core, for the runs that need it.

Small stages stay in one process: starting workers costs more than it saves.
Where processes cannot be forked, everything runs in one process.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from digestpub.errors import WorkerFailed

log = logging.getLogger("digestpub.parallel")

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


Task = Callable[[dict[Any, Any], T], Iterable[R]]
"""A crew task: ``task(held, argument)`` yields results; ``held`` is its worker's memory, kept between tasks."""


class Crew:
    """Forked worker processes that keep what they hold between tasks.

    A run's workers read the summaries and keep them, so that only small
    references travel to the parent, and later render the entries of the few the
    feeds show: ``run(task, arguments)`` calls ``task(held, arguments[i])`` in
    worker ``i``, whose ``held`` dict is what its earlier tasks left there.
    Every worker's ``held`` starts as ``held``, and workers see the parent as it
    was when the crew started: they are forked, so nothing is copied to them.

    A task yields its results in batches, and each batch reaches the parent as
    soon as it is ready: no worker holds all it made, nor waits for another.

    With one worker, or where processes cannot be forked, the tasks run in this
    process, in order, with one ``held`` dict: ``size`` says how many there are.
    """

    def __init__(self, workers: int, held: dict[Any, Any] | None = None) -> None:
        self._held: dict[Any, Any] = held if held is not None else {}
        self._connections: list[Connection] = []
        self._processes: list[BaseProcess] = []
        self._abandoned = False
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            try:
                self._start(workers)
            except OSError as error:
                self.close()
                log.info("running in one process: worker processes are not available (%s)", error)
            else:
                self._held = {}  # the workers have it

    def _start(self, workers: int) -> None:
        context = multiprocessing.get_context("fork")
        for number in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve, args=(theirs, self._held), name=f"digestpub-worker-{number}", daemon=True
            )
            process.start()
            theirs.close()
            self._connections.append(ours)
            self._processes.append(process)

    @property
    def size(self) -> int:
        return max(1, len(self._processes))

    def run(self, task: Task[T, R], arguments: Sequence[T]) -> Iterator[R]:
        """What ``task`` yields with each argument, in the worker of that index, in the order it arrives."""
        if len(arguments) != self.size:
            raise ValueError(f"a crew of {self.size} takes {self.size} arguments, not {len(arguments)}")
        if not self._processes:
            for argument in arguments:
                yield from task(self._held, argument)
            return
        for connection, argument in zip(self._connections, arguments, strict=True):
            connection.send((task, argument))
        busy = dict(zip(self._connections, self._processes, strict=True))
        self._abandoned = True  # until every worker has said it is done
        while busy:
            for ready in wait(list(busy)):
                assert isinstance(ready, Connection)
                try:
                    outcome, value = ready.recv()
                except EOFError:
                    process = busy[ready]
                    process.join(1)
                    raise WorkerFailed(
                        f"worker process {process.name} ended unexpectedly (exit code {process.exitcode}); "
                        "if memory ran out, run with fewer workers"
                    ) from None
                if outcome == "result":
                    yield value
                elif outcome == "done":
                    del busy[ready]
                else:
                    raise value
        self._abandoned = False

    def close(self) -> None:
        for connection in self._connections:
            with contextlib.suppress(OSError):  # that worker has already gone
                connection.send(None)
            connection.close()
        for process in self._processes:
            # A worker left in the middle of a task would only finish it for nobody.
            process.join(0 if self._abandoned else 5)
            if process.is_alive():
                process.kill()
                process.join()
        self._connections.clear()
        self._processes.clear()
        self._held = {}

    def __enter__(self) -> Crew:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _serve(connection: Connection, held: dict[Any, Any]) -> None:
    while (message := connection.recv()) is not None:
        task, argument = message
        try:
            for result in task(held, argument):
                connection.send(("result", result))
            reply: tuple[str, Any] = ("done", None)
        except Exception as error:
            reply = ("error", error)
        try:
            connection.send(reply)
        except Exception as error:  # an exception that does not pickle: send what it said
            connection.send(("error", WorkerFailed(f"{type(reply[1]).__name__}: {reply[1]} ({error})")))
    connection.close()
