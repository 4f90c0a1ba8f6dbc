"""``digestpub serve``: the local twin of the cloud, on one port.

Static files come from the ``dest`` folder; requests to the subscription
endpoints become API Gateway v2 events for the same routes the cloud function
runs (``web.build_app``), so every link in a local page or outbox email works.
"""

from __future__ import annotations

import logging
import mimetypes
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from digestpub.web import ROUTES

log = logging.getLogger("digestpub.serve")
_TYPES = {".xml": "application/xml; charset=utf-8", ".json": "application/feed+json; charset=utf-8"}
_TYPES.update({".opml": "text/x-opml; charset=utf-8", ".html": "text/html; charset=utf-8"})


def http_event(method: str, target: str, headers: dict[str, str], body: bytes, client: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for one local request."""
    parts = urlsplit(target)
    now = time.time()
    text = body.decode("utf-8", errors="replace")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": {name.lower(): value for name, value in headers.items()},
        "queryStringParameters": dict(parse_qsl(parts.query, keep_blank_values=True)) or None,
        "requestContext": {
            "accountId": "local",
            "apiId": "local",
            "domainName": headers.get("Host", "localhost"),
            "http": {
                "method": method,
                "path": parts.path,
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
        "body": text,
        "isBase64Encoded": False,
    }


class _LambdaContext:
    function_name = "digestpub-serve"
    memory_limit_in_mb = 0
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:digestpub-serve"
    aws_request_id = "local"


def make_server(
    host: str, port: int, root: Path, app: APIGatewayHttpResolver, api_prefix: str = "/"
) -> ThreadingHTTPServer:
    """A threaded HTTP server for ``root`` and the subscription routes under ``api_prefix``."""
    prefix = "/" + api_prefix.strip("/")
    prefix = "" if prefix == "/" else prefix

    class Handler(BaseHTTPRequestHandler):
        server_version = "digestpub"

        def _route(self) -> str | None:
            path = urlsplit(self.path).path
            if prefix and path.startswith(prefix + "/"):
                path = path[len(prefix) :]
            return path if path in ROUTES else None

        def _api(self, method: str) -> None:
            route = self._route()
            assert route is not None
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            query = urlsplit(self.path).query
            event = http_event(
                method, route + ("?" + query if query else ""), dict(self.headers), body, self.client_address[0]
            )
            result = app.resolve(event, _LambdaContext())  # type: ignore[arg-type]
            payload = result.get("body") or ""
            data = payload.encode() if isinstance(payload, str) else payload
            self.send_response(int(result.get("statusCode", 500)))
            for name, value in (result.get("headers") or {}).items():
                self.send_header(name, value)
            for name, values in (result.get("multiValueHeaders") or {}).items():
                for value in values:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self._route():
                self._api("GET")
                return
            self._static(head=False)

        def do_HEAD(self) -> None:
            self._static(head=True)

        def do_POST(self) -> None:
            if self._route():
                self._api("POST")
                return
            self.send_error(405)

        def _static(self, head: bool) -> None:
            relative = unquote(urlsplit(self.path).path).lstrip("/")
            target = (root / relative).resolve()
            if not target.is_relative_to(root.resolve()):
                self.send_error(404)
                return
            if target.is_dir():
                if not self.path.split("?")[0].endswith("/"):
                    self.send_response(301)
                    self.send_header("Location", self.path.split("?")[0] + "/")
                    self.end_headers()
                    return
                target = target / "index.html"
            if not target.is_file():
                self.send_error(404)
                return
            data = target.read_bytes()
            kind = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return ThreadingHTTPServer((host, port), Handler)
