"""CPU-bound stages on every core, for the runs that need it.

Small stages stay in one process: starting workers costs more than it saves.
Where processes cannot be forked, everything runs in one process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from digestpub.errors import WorkerFailed

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

log = logging.getLogger("digestpub.publish.parallel")

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


Task = Callable[[dict[Any, Any], T], Iterable[R]]
"""``task(memory, argument)`` yields results; ``memory`` is its worker's dict, kept between tasks."""

_PARENT_CHECK_SECONDS = 0.5


class ForkedWorkers:
    """Forked worker processes, each with a memory (a dict) kept between tasks.

    ``run(task, arguments)`` calls ``task(memory, arguments[i])`` in worker ``i``,
    whose ``memory`` is what its earlier tasks left there. Every worker's memory
    starts as ``memory``, and workers see the parent as it was when they
    started: they are forked, so nothing is copied to them. A worker whose
    parent dies exits within a second, whatever it was doing.

    A task yields its results in batches, and each batch reaches the parent as
    soon as it is ready: no worker holds all it made, nor waits for another.

    With one worker, or where processes cannot be forked, the tasks run in this
    process, in order, with one memory: ``size`` says how many there are.
    """

    def __init__(self, workers: int, memory: dict[Any, Any] | None = None) -> None:
        self._memory: dict[Any, Any] = memory if memory is not None else {}
        self._connections: list[Connection] = []
        self._processes: list[BaseProcess] = []
        self._abandoned = False
        if workers > 1 and _can_fork():
            try:
                self._start(workers)
            except OSError as error:
                self.close()
                log.info("running in one process: worker processes are not available (%s)", error)
            else:
                self._memory = {}  # the workers have it

    def _start(self, workers: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        for number in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve, args=(theirs, self._memory, os.getpid()), name=f"digestpub-worker-{number}", daemon=True
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
            raise ValueError(f"a pool of {self.size} workers takes {self.size} arguments, not {len(arguments)}")
        if not self._processes:
            for argument in arguments:
                yield from task(self._memory, argument)
            return
        from multiprocessing.connection import Connection, wait

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
        self._memory = {}

    def __enter__(self) -> ForkedWorkers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _can_fork() -> bool:
    # Imported here: a run that needs no workers does not pay for multiprocessing's start-up.
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _serve(connection: Connection, memory: dict[Any, Any], parent: int) -> None:
    # A killed parent closes no pipe that a worker waits on (its siblings hold
    # copies of the parent's ends), so each worker watches for it itself.
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    while (message := connection.recv()) is not None:
        task, argument = message
        try:
            for result in task(memory, argument):
                connection.send(("result", result))
            reply: tuple[str, Any] = ("done", None)
        except Exception as error:
            reply = ("error", error)
        try:
            connection.send(reply)
        except Exception as error:  # an exception that does not pickle: send what it said
            connection.send(("error", WorkerFailed(f"{type(reply[1]).__name__}: {reply[1]} ({error})")))
    connection.close()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(1)
