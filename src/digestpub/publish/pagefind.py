"""A Pagefind search bundle from custom records, through the ``pagefind --service`` binary.

The binary comes with the ``pagefind[bin]`` package (or ``PAGEFIND_BINARY_PATH``
names another). Its Python API sleeps between one answer and the next, which
adds up over the records of a large history, so this module speaks the service's
protocol itself: requests and answers are base64 JSON, each ended by a comma,
and a thread writes the records while this one reads the answers.
"""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import orjson

from digestpub.errors import SearchIndexError

ENTRY_FILE = "pagefind-entry.json"
"""The bundle's table of contents: its version and the index of each language."""


@dataclass(frozen=True, slots=True)
class PagefindRecord:
    url: str
    content: str
    language: str
    meta: dict[str, str]


def build_bundle(records: Sequence[PagefindRecord], timeout: float = 600.0) -> dict[str, bytes]:
    """Every file of the bundle (``pagefind.js``, the index chunks, the fragments), by path within it."""
    binary = _executable()
    try:
        process = subprocess.Popen(
            [binary, "--service"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except OSError as error:
        raise SearchIndexError(f"cannot start the Pagefind binary {binary}: {error}") from error
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        return _build(process, records)
    finally:
        timer.cancel()
        process.kill()
        process.wait()


def _build(process: subprocess.Popen[bytes], records: Sequence[PagefindRecord]) -> dict[str, bytes]:
    assert process.stdin is not None and process.stdout is not None
    answers = _answers(process.stdout)
    _send(process.stdin, [_request(1, {"type": "NewIndex", "config": None})])
    index_id = _expect(answers, "NewIndex")["index_id"]
    requests = [
        _request(
            number,
            {
                "type": "AddRecord",
                "index_id": index_id,
                "url": record.url,
                "content": record.content,
                "language": record.language,
                "meta": record.meta,
                "filters": None,
                "sort": None,
            },
        )
        for number, record in enumerate(records, start=2)
    ]
    requests.append(_request(len(records) + 2, {"type": "GetFiles", "index_id": index_id}))
    # The binary answers as it reads: a writer of its own keeps both pipes flowing.
    writer = threading.Thread(target=_send, args=(process.stdin, requests), daemon=True)
    writer.start()
    for _ in records:
        _expect(answers, "IndexedFile")
    files = _expect(answers, "GetFiles")["files"]
    writer.join()
    bundle = {file["path"]: base64.b64decode(file["content"]) for file in files}
    if ENTRY_FILE in bundle:
        # Its languages come in no fixed order: sorted, the same index is the same bytes.
        bundle[ENTRY_FILE] = orjson.dumps(orjson.loads(bundle[ENTRY_FILE]), option=orjson.OPT_SORT_KEYS)
    return bundle


def _executable() -> str:
    from pagefind.service import get_executable

    try:
        found = get_executable()
    except FileNotFoundError as error:
        raise SearchIndexError(f"no Pagefind binary: {error}") from error
    if found is None:
        raise SearchIndexError("no Pagefind binary: install pagefind[bin] or set PAGEFIND_BINARY_PATH")
    return str(found)


def _request(number: int, payload: dict[str, Any]) -> bytes:
    return base64.b64encode(orjson.dumps({"message_id": number, "payload": payload})) + b","


def _send(pipe: IO[bytes], requests: list[bytes]) -> None:
    try:
        for request in requests:
            pipe.write(request)
        pipe.flush()
    except OSError:
        return  # the binary is gone: the reader says so


def _answers(pipe: IO[bytes]) -> Iterator[dict[str, Any]]:
    # The pieces of an answer not yet ended, joined once it ends: the bundle's answer is tens of megabytes.
    pieces: list[bytes] = []
    while chunk := pipe.read1(1 << 16):  # type: ignore[attr-defined]
        *ended, rest = chunk.split(b",")
        for number, message in enumerate(ended):
            if number == 0 and pieces:
                message = b"".join([*pieces, message])
                pieces = []
            if message.strip():
                yield orjson.loads(base64.b64decode(message))
        if rest:
            pieces.append(rest)


def _expect(answers: Iterator[dict[str, Any]], kind: str) -> dict[str, Any]:
    answer = next(answers, None)
    if answer is None:
        raise SearchIndexError("the Pagefind binary stopped before it answered")
    payload: dict[str, Any] = answer.get("payload") or {}
    if payload.get("type") != kind:
        raise SearchIndexError(f"Pagefind answered {payload.get('type')!r}: {payload.get('message', payload)}")
    return payload
