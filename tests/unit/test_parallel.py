"""Forked workers that keep their memory between tasks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from digestpub.errors import StorageError, WorkerFailed
from digestpub.publish.parallel import ForkedWorkers


def _keep(memory: dict[str, Any], numbers: list[int]) -> Iterator[list[int]]:
    memory["kept"] = numbers
    for number in numbers:
        yield [number * 10]


def _recall(memory: dict[str, Any], offset: int) -> Iterator[tuple[int, list[int]]]:
    yield os.getpid(), [number + offset for number in memory["kept"]]


def _from_start(memory: dict[str, Any], _: None) -> Iterator[str]:
    yield memory["given"]


def _fail(memory: dict[str, Any], _: None) -> Iterator[int]:
    yield 1
    raise StorageError("the store said no")


def _die(memory: dict[str, Any], _: None) -> Iterator[int]:
    os._exit(3)
    yield 0  # pragma: no cover


def _endless(memory: dict[str, Any], _: None) -> Iterator[bytes]:
    while True:
        yield b"x" * 100_000


def test_each_worker_keeps_what_its_earlier_tasks_left() -> None:
    with ForkedWorkers(2) as workers:
        assert workers.size == 2
        batches = list(workers.run(_keep, [[1, 2], [3]]))
        assert sorted(batch[0] for batch in batches) == [10, 20, 30]
        recalled = dict(workers.run(_recall, [100, 200]))
    assert sorted(recalled.values()) == [[101, 102], [203]]
    assert os.getpid() not in recalled and len(recalled) == 2


def test_workers_start_with_what_they_are_given() -> None:
    with ForkedWorkers(2, {"given": "от родителя"}) as workers:
        assert list(workers.run(_from_start, [None, None])) == ["от родителя", "от родителя"]


def test_one_worker_runs_in_this_process() -> None:
    with ForkedWorkers(1, {"given": "here"}) as workers:
        assert workers.size == 1
        assert list(workers.run(_keep, [[5, 6]])) == [[50], [60]]
        assert list(workers.run(_recall, [1])) == [(os.getpid(), [6, 7])]
        assert list(workers.run(_from_start, [None])) == ["here"]


def test_a_task_takes_one_argument_per_worker() -> None:
    with ForkedWorkers(2) as workers, pytest.raises(ValueError, match="takes 2 arguments"):
        list(workers.run(_from_start, [None]))


def test_an_error_in_a_worker_is_raised_here_with_its_type() -> None:
    with ForkedWorkers(2) as workers, pytest.raises(StorageError, match="the store said no"):
        list(workers.run(_fail, [None, None]))


def test_a_worker_that_dies_is_reported() -> None:
    with ForkedWorkers(2) as workers, pytest.raises(WorkerFailed, match="exit code 3"):
        list(workers.run(_die, [None, None]))


def test_leaving_a_task_early_stops_its_workers_at_once() -> None:
    started = time.monotonic()
    with ForkedWorkers(2) as workers:
        for _ in workers.run(_endless, [None, None]):
            break
    assert time.monotonic() - started < 4


_PARENT = """
import os, sys, time
from digestpub.publish.parallel import ForkedWorkers

def wait_forever(memory, _):
    yield os.getpid()
    time.sleep(600)
    yield 0

with ForkedWorkers(2) as workers:
    for pid in workers.run(wait_forever, [None, None]):
        print(pid, flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_exit_when_their_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        workers = [int(parent.stdout.readline()) for _ in range(2)]
        assert all(_alive(pid) for pid in workers)
    finally:
        parent.kill()
        parent.wait()
    # Orphans are re-parented to init, which reaps them; 5 s is ten of their checks.
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "workers outlived their killed parent"
