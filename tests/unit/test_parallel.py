"""The crew of forked workers that keep what they hold between tasks."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from digestpub.errors import StorageError, WorkerFailed
from digestpub.parallel import Crew


def _keep(held: dict[str, Any], numbers: list[int]) -> Iterator[list[int]]:
    held["kept"] = numbers
    for number in numbers:
        yield [number * 10]


def _recall(held: dict[str, Any], offset: int) -> Iterator[tuple[int, list[int]]]:
    yield os.getpid(), [number + offset for number in held["kept"]]


def _from_start(held: dict[str, Any], _: None) -> Iterator[str]:
    yield held["given"]


def _fail(held: dict[str, Any], _: None) -> Iterator[int]:
    yield 1
    raise StorageError("the store said no")


def _die(held: dict[str, Any], _: None) -> Iterator[int]:
    os._exit(3)
    yield 0  # pragma: no cover


def _endless(held: dict[str, Any], _: None) -> Iterator[bytes]:
    while True:
        yield b"x" * 100_000


def test_each_worker_keeps_what_its_earlier_tasks_left() -> None:
    with Crew(2) as crew:
        assert crew.size == 2
        batches = list(crew.run(_keep, [[1, 2], [3]]))
        assert sorted(batch[0] for batch in batches) == [10, 20, 30]
        recalled = dict(crew.run(_recall, [100, 200]))
    assert sorted(recalled.values()) == [[101, 102], [203]]
    assert os.getpid() not in recalled and len(recalled) == 2


def test_workers_start_with_what_they_are_given() -> None:
    with Crew(2, {"given": "от родителя"}) as crew:
        assert list(crew.run(_from_start, [None, None])) == ["от родителя", "от родителя"]


def test_one_worker_runs_in_this_process() -> None:
    with Crew(1, {"given": "here"}) as crew:
        assert crew.size == 1
        assert list(crew.run(_keep, [[5, 6]])) == [[50], [60]]
        assert list(crew.run(_recall, [1])) == [(os.getpid(), [6, 7])]
        assert list(crew.run(_from_start, [None])) == ["here"]


def test_a_task_takes_one_argument_per_worker() -> None:
    with Crew(2) as crew, pytest.raises(ValueError, match="takes 2 arguments"):
        list(crew.run(_from_start, [None]))


def test_an_error_in_a_worker_is_raised_here_with_its_type() -> None:
    with Crew(2) as crew, pytest.raises(StorageError, match="the store said no"):
        list(crew.run(_fail, [None, None]))


def test_a_worker_that_dies_is_reported() -> None:
    with Crew(2) as crew, pytest.raises(WorkerFailed, match="exit code 3"):
        list(crew.run(_die, [None, None]))


def test_leaving_a_task_early_stops_its_workers_at_once() -> None:
    started = time.monotonic()
    with Crew(2) as crew:
        for _ in crew.run(_endless, [None, None]):
            break
    assert time.monotonic() - started < 4
