"""A WebSub hub of the tests' own on 127.0.0.1, recording every publish notification."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest


@dataclass
class Hub:
    """A WebSub hub: records each publish notification and answers with ``status(topics)``."""

    status: Callable[[list[str]], int] = lambda topics: 204
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    url: str = ""

    def told(self) -> set[str]:
        """Every topic of an accepted notification."""
        return {
            topic
            for form in self.requests
            if self.status(form.get("hub.url", [])) < 300
            for topic in form.get("hub.url", [])
        }


@pytest.fixture
def hub_server() -> Iterator[Callable[[Hub], Hub]]:
    servers: list[ThreadingHTTPServer] = []

    def start(hub: Hub) -> Hub:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                form = parse_qs(body)
                hub.requests.append(form)
                hub.content_types.append(self.headers["Content-Type"])
                self.send_response(hub.status(form.get("hub.url", [])))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        hub.url = f"http://127.0.0.1:{server.server_port}/hub"
        return hub

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
