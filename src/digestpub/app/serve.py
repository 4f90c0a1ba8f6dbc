"""``digestpub serve``: the local twin of the cloud, on one port.

Static files come from the ``dest`` folder, with the content types, ``ETag`` and
``Last-Modified`` that S3 gives them (and 304 answers to conditional GETs).
Requests to the subscription endpoints become API Gateway v2 events for the same
``web.Endpoints`` the cloud function runs, so every link in a local page or outbox
email works. Each request runs on its own thread; what one request reads lives
only on its own handler and ``Request``.

Every request that cannot be read as sent gets a 4xx and a short page, never a
dropped connection: a ``Content-Length`` that is not a number, one over the body
limit (the body is then drained a moment so the client reads the answer), a
path with control characters or over the length limit.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import mimetypes
import socket
import time
import uuid
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from digestpub.errors import BadRequest
from digestpub.render import feed_formats
from digestpub.site import HTML_TYPE, OPML_TYPE
from digestpub.subscriptions.endpoints import ROUTES, Endpoints
from digestpub.subscriptions.request import check_path, declared_length, etag_matches

log = logging.getLogger("digestpub.app.serve")

LISTEN_BACKLOG = 256
"""Connections the kernel holds while every thread is busy: a burst of subscribes waits, not resets."""
_SOCKET_TIMEOUT = 10.0
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 16 * 1024 * 1024


def content_type(name: str) -> str:
    """The Content-Type publish gives a file on S3: feeds by their name, pages and OPML by suffix."""
    kind = feed_formats.of_file(name)
    if kind is not None:
        return kind.content_type
    if name.endswith(".html"):
        return HTML_TYPE
    if name.endswith(".opml"):
        return OPML_TYPE
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def split_target(target: str) -> tuple[str, str]:
    """The path and query of a request target. A target that starts with ``//`` is a path
    (``urlsplit`` would read a host from it, and a redirect could then leave the site)."""
    if not target.startswith("/"):
        parts = urlsplit(target)  # absolute form, as proxies send it
        return parts.path or "/", parts.query
    path, _, query = target.partition("#")[0].partition("?")
    return path, query


def http_event(method: str, target: str, headers: dict[str, str], body: bytes, client: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for one local request.

    The body goes base64-encoded, as API Gateway sends bodies it does not know to be text.
    """
    path, query = split_target(target)
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {name.lower(): value for name, value in headers.items()},
        "requestContext": {
            "accountId": "local",
            "apiId": "local",
            "domainName": headers.get("Host", "localhost"),
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": client,
                "userAgent": headers.get("User-Agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def make_server(host: str, port: int, root: Path, endpoints: Endpoints, api_prefix: str = "/") -> ThreadingHTTPServer:
    """A threaded HTTP server for ``root`` and the subscription routes under ``api_prefix``."""
    prefix = "/" + api_prefix.strip("/")
    prefix = "" if prefix == "/" else prefix
    root = root.resolve()

    class Handler(BaseHTTPRequestHandler):
        server_version = "digestpub"
        default_request_version = "HTTP/1.0"  # answer even a garbled request line with a status line
        timeout = _SOCKET_TIMEOUT  # a client that stops sending frees its thread

        def _route(self) -> str | None:
            path = split_target(self.path)[0]
            if prefix and path.startswith(prefix + "/"):
                path = path[len(prefix) :]
            return path if path in ROUTES else None

        def _body(self) -> bytes:
            """The request's body; ``BadRequest`` if it cannot be read as declared."""
            if "Transfer-Encoding" in self.headers:
                raise BadRequest(411, "send the body with a Content-Length")
            # Two Content-Length headers join into a value that is no number: refused.
            length = declared_length(", ".join(self.headers.get_all("Content-Length") or []))
            try:
                body = self.rfile.read(length) if length else b""
            except TimeoutError:
                raise BadRequest(408, f"the body did not arrive within {_SOCKET_TIMEOUT:.0f} seconds") from None
            if len(body) < length:
                raise BadRequest(400, "the body ended before its Content-Length")
            return body

        def _api(self, method: str, route: str) -> None:
            body = self._body()
            query = split_target(self.path)[1]
            target = route + ("?" + query if query else "")
            response = endpoints.handle(http_event(method, target, dict(self.headers), body, self.client_address[0]))
            self._send(response["statusCode"], response["headers"], response["body"].encode("utf-8"), method == "HEAD")

        def _send(self, status: int, headers: dict[str, str], data: bytes, head: bool = False) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)

        def _refuse(self, status: int, reason: str, *, allow: str = "") -> None:
            response = endpoints.refusal(status, reason).to_event_response()
            headers = {**response["headers"], **({"Allow": allow} if allow else {})}
            self.close_connection = True
            self._send(status, headers, response["body"].encode("utf-8"), self.command == "HEAD")

        def _drain(self) -> None:
            # Closing a socket with unread bytes sends a reset, which can destroy the
            # answer before the client reads it: read (and drop) a bounded while first.
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(_LINGER_SECONDS)
                deadline, drained = time.monotonic() + _LINGER_SECONDS, 0
                while drained < _LINGER_BYTES and time.monotonic() < deadline:
                    chunk = self.connection.recv(65536)
                    if not chunk:
                        break
                    drained += len(chunk)
            except OSError:
                pass

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # http.server's own refusals (a garbled request line, overlong headers) get our page too.
            self._refuse(code, message or explain or "the request could not be read")

        def _answer(self, method: str) -> None:
            try:
                check_path(split_target(self.path)[0])
                route = self._route()
                if route is not None:
                    self._api(method, route)
                elif method == "POST":
                    self._refuse_post()
                else:
                    self._static(head=method == "HEAD")
            except BadRequest as error:
                self._refuse(error.status, error.reason)
                self._drain()  # the body may be there unread
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                self.close_connection = True
            except Exception:
                log.exception("serve: %s %s failed", method, self.path[:200])
                self._refuse(500, "the server failed on this request")

        def _refuse_post(self) -> None:
            self._body()
            self._refuse(405, "only the subscription endpoints take a POST", allow="GET, HEAD")

        def do_GET(self) -> None:
            self._answer("GET")

        def do_HEAD(self) -> None:
            self._answer("HEAD")

        def do_POST(self) -> None:
            self._answer("POST")

        def _static(self, head: bool) -> None:
            path = split_target(self.path)[0]
            try:
                target = (root / unquote(path).lstrip("/")).resolve()
                if not target.is_relative_to(root):
                    raise FileNotFoundError(path)
                if target.is_dir():
                    if not path.endswith("/"):
                        # One leading slash: "//name/" would send the browser to another host.
                        self._send(301, {"Location": "/" + path.lstrip("/") + "/"}, b"", head)
                        return
                    target = target / "index.html"
                data = target.read_bytes()
                modified = target.stat().st_mtime
            except (OSError, ValueError):
                self._refuse(404, "there is no such file")
                return
            self._send_file(data, modified, content_type(target.name), head)

        def _send_file(self, data: bytes, modified: float, kind: str, head: bool) -> None:
            tag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'  # as S3's ETag
            headers = {"ETag": tag, "Last-Modified": formatdate(modified, usegmt=True)}
            if _not_modified(self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since"), tag, modified):
                self._send(304, headers, b"", head=True)
                return
            self._send(200, {"Content-Type": kind, **headers}, data, head)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # The path alone: a query carries link tokens, which are as good as a password.
            path = split_target(getattr(self, "path", "") or "/")[0][:200]
            log.info(
                '%s "%s %s" %s',
                self.address_string(),
                self.command or "-",
                path,
                int(code) if isinstance(code, int) else code,
            )

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return _Server((host, port), Handler)


def _not_modified(if_none_match: str | None, if_modified_since: str | None, tag: str, modified: float) -> bool:
    """RFC 9110 §13.1: If-None-Match (weak comparison) decides; If-Modified-Since only without it."""
    if if_none_match is not None:
        return etag_matches(if_none_match, tag)
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # an unreadable date is ignored, as RFC 9110 says
    return int(modified) <= since
