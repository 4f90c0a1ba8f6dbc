"""An HTTP proxy on 127.0.0.1 in front of moto's server that fails requests the way S3 and SES can.

For each request a ``Rule`` decides what happens:

- ``"pass"``: forwarded, and moto's answer returned;
- ``"apply_then_500"``: forwarded (moto applies it), then answered 500 InternalError,
  as S3 does when it applied a write but could not say so;
- ``"refuse"``: not forwarded; answered 503 SlowDown;
- ``"drop"``: not forwarded; the connection is closed without an answer;
- ``"apply_then_drop"``: forwarded (moto applies it), then the connection is closed
  without an answer;
- ``"apply_then_hang"``: forwarded, then no answer for ``hang`` seconds (past the
  client's read timeout), then the connection is closed.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

Action = Literal["pass", "apply_then_500", "refuse", "drop", "apply_then_drop", "apply_then_hang"]
Rule = Callable[[str, str], Action]
"""``rule(method, path)``: what to do with one request."""

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
_INTERNAL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)
_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Reduce your request rate.</Message></Error>"
)


@dataclass
class Faults:
    """What the proxy did, by action, and the log of faulted requests."""

    counts: dict[str, int] = field(default_factory=dict)
    faulted: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, action: str, method: str, path: str) -> None:
        with self.lock:
            self.counts[action] = self.counts.get(action, 0) + 1
            if action != "pass":
                self.faulted.append((action, method, path))


def random_faults(seed: int, write_applied_then_500: float, refused: float) -> Rule:
    """Each write applied-then-500 with one probability; any request refused or dropped with another."""
    chooser = random.Random(seed)
    lock = threading.Lock()

    def rule(method: str, path: str) -> Action:
        with lock:
            draw = chooser.random()
        if method == "PUT" and draw < write_applied_then_500:
            return "apply_then_500"
        if draw > 1 - refused:
            return "refuse" if draw > 1 - refused / 2 else "drop"
        return "pass"

    return rule


def once_for(fragment: str, action: Action, method: str = "PUT") -> Rule:
    """``action`` for the first ``method`` request whose path holds ``fragment``; every other request passes."""
    done = threading.Event()

    def rule(request_method: str, path: str) -> Action:
        if request_method == method and fragment in path and not done.is_set():
            done.set()
            return action
        return "pass"

    return rule


@contextmanager
def fault_proxy(upstream: str, rule: Rule, hang: float = 3.0) -> Iterator[tuple[str, Faults]]:
    """A proxy to ``upstream`` (``http://127.0.0.1:port``); yields its endpoint URL and what it did."""
    target = urlsplit(upstream)
    faults = Faults()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return None

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            body = self._body()
            action = rule(self.command, self.path)
            faults.note(action, self.command, self.path)
            if action == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if action == "refuse":
                self._answer(503, [("Content-Type", "application/xml")], _SLOW_DOWN)
                return
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            try:
                headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                status, answer_headers = response.status, response.getheaders()
            finally:
                connection.close()
            if action in ("apply_then_drop", "apply_then_hang"):
                if action == "apply_then_hang":
                    time.sleep(hang)
                self.close_connection = True
                self.connection.close()
            elif action == "apply_then_500":
                self._answer(500, [("Content-Type", "application/xml")], _INTERNAL_ERROR)
            else:
                self._answer(status, answer_headers, answer)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", faults
    finally:
        server.shutdown()
        server.server_close()
