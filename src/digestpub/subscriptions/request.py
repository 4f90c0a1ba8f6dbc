"""One subscription request, read from an API Gateway HTTP API (payload 2.0) event and checked.

A handler gets everything about its request in one immutable ``Request``, so two
requests served at once (``digestpub serve`` runs each on its own thread) share
nothing. Whatever cannot be read as sent raises ``BadRequest`` with the 4xx to
answer: a body over ``MAX_BODY_BYTES``, bytes that are not UTF-8, JSON that is
not an object of strings, too many fields, an overlong or garbled path or query.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl, unquote

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from digestpub.errors import BadRequest

MAX_BODY_BYTES = 64 * 1024
"""A subscription form is a few hundred bytes; nothing bigger is read."""
MAX_PATH_LENGTH = 2048
MAX_QUERY_LENGTH = 2048
"""A link token is at most 512 characters (``tokens``); the rest is room for tracking tags."""
MAX_FIELDS = 32

_TOO_LARGE = f"the body is larger than {MAX_BODY_BYTES // 1024} KB"
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Names in lowercase."""
    form: Mapping[str, str]
    """The body's fields (POST only), whichever of the three encodings it came in."""
    query_pairs: tuple[tuple[str, str], ...] = ()
    """The query's fields in order, a name given twice included (a GET form's ticked boxes)."""

    @property
    def token(self) -> str:
        return self.query.get("token", "")

    def query_values(self, name: str) -> list[str]:
        """Every value the query gives ``name``, in order."""
        return [value for field, value in self.query_pairs if field == name]


def read_request(raw: Mapping[str, Any]) -> Request:
    """The request an HTTP API event carries; ``BadRequest`` if it cannot be read as sent."""
    event = APIGatewayProxyEventV2(dict(raw))
    method = event.request_context.http.method.upper()
    path = event.raw_path or "/"
    check_path(path)
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    query_pairs = _pairs(event.raw_query_string or "", "query", MAX_QUERY_LENGTH)
    body = _body(event)
    form = _form(headers.get("content-type", ""), body) if method == "POST" else {}
    return Request(
        method=method, path=path, query=dict(query_pairs), headers=headers, form=form, query_pairs=tuple(query_pairs)
    )


def check_path(path: str) -> None:
    """``BadRequest`` for a path no handler should see: overlong, or with control characters once decoded."""
    if len(path) > MAX_PATH_LENGTH:
        raise BadRequest(414, f"the path is longer than {MAX_PATH_LENGTH} characters")
    if not unquote(path).isprintable():
        raise BadRequest(400, "the path holds control characters")


def etag_matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110 §13.1.2: whether an ``If-None-Match`` value names ``tag`` (weak comparison) or is ``*``."""
    wanted = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return "*" in wanted or tag in wanted


def declared_length(content_length: str | None) -> int:
    """The body length a ``Content-Length`` header declares; ``BadRequest`` unless it is a
    number of bytes within ``MAX_BODY_BYTES``."""
    declared = (content_length or "0").strip()
    if not declared.isdigit() or not declared.isascii():
        raise BadRequest(400, f"Content-Length {declared[:40]!r} is not a number of bytes")
    length = int(declared)
    if length > MAX_BODY_BYTES:
        raise BadRequest(413, _TOO_LARGE)
    return length


def _body(event: APIGatewayProxyEventV2) -> bytes:
    text = event.body or ""
    # Checked before decoding too: base64 or not, a body this long is refused unread.
    if len(text) > MAX_BODY_BYTES * 4 // 3 + 4:
        raise BadRequest(413, _TOO_LARGE)
    if event.is_base64_encoded:
        try:
            body = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(400, "the body is not valid base64") from None
    else:
        body = text.encode("utf-8", "surrogatepass")
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(413, _TOO_LARGE)
    return body


def _form(content_type: str, body: bytes) -> dict[str, str]:
    kind = content_type.split(";")[0].strip().lower()
    if kind == _MULTIPART:
        return _multipart_fields(content_type, body)
    if kind == "application/json" or kind.endswith("+json"):
        return _json_fields(body)
    if kind in ("", _FORM):
        return _fields(_text(body, "body"), "body", MAX_BODY_BYTES)
    raise BadRequest(415, f"a form is sent as {_FORM}, {_MULTIPART} or application/json, not {kind}")


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, f"the {what} is not UTF-8") from None


def _fields(encoded: str, what: str, limit: int) -> dict[str, str]:
    """URL-encoded fields; a name given twice keeps its last value, as a form's last input wins."""
    return dict(_pairs(encoded, what, limit))


def _pairs(encoded: str, what: str, limit: int) -> list[tuple[str, str]]:
    """URL-encoded fields in order, each name as often as it is given."""
    if len(encoded) > limit:
        raise BadRequest(414 if what == "query" else 413, f"the {what} is longer than {limit} characters")
    try:
        pairs = parse_qsl(encoded, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise BadRequest(400, f"the {what} is not UTF-8 once percent-decoded") from None
    except ValueError:
        raise BadRequest(400, f"the {what} has more than {MAX_FIELDS} fields") from None
    return pairs


def _json_fields(body: bytes) -> dict[str, str]:
    try:
        data = json.loads(_text(body, "body"))
    except RecursionError:
        raise BadRequest(400, "the JSON body is nested too deeply") from None
    except ValueError:
        raise BadRequest(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest(400, "the JSON body must be an object of fields")
    if len(data) > MAX_FIELDS:
        raise BadRequest(400, f"the body has more than {MAX_FIELDS} fields")
    fields: dict[str, str] = {}
    for name, value in data.items():
        if isinstance(value, str):
            fields[name] = value
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            fields[name] = " ".join(value)
        else:
            raise BadRequest(400, f"JSON field {name[:40]!r} must be a string or a list of strings")
    return fields


def _multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The plain fields of a multipart/form-data body (no files are expected here)."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise BadRequest(400, "the multipart body has no parts (is the boundary right?)")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = _text(payload, "body").strip()
        if len(fields) > MAX_FIELDS:
            raise BadRequest(400, f"the body has more than {MAX_FIELDS} fields")
    return fields
