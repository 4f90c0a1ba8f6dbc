"""MIME messages built once per segment and personalised cheaply per recipient.

Each part is base64 with CRLF line breaks, so no line exceeds 998 octets
(RFC 5322) however long MRML's one-line HTML is. The static head of each part
is padded with spaces to a whole number of 57-byte base64 lines and encoded
once; per recipient only the small footer is encoded, and the message is a
join of byte strings: far cheaper than building an ``EmailMessage`` per recipient.
"""

from __future__ import annotations

import binascii
import contextlib
import html
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, parseaddr
from functools import cached_property

from digestpub.model import Subscriber
from digestpub.newsletter.render import EMAIL_MARK, PREFERENCES_MARK, UNSUBSCRIBE_MARK, Segment
from digestpub.site import Site
from digestpub.subscriptions.tokens import TokenKey, make_token

_LINE = 57
"""Bytes per 76-character base64 line."""
CRLF = b"\r\n"


def _base64_lines(data: bytes) -> bytes:
    encoded = binascii.b2a_base64(data, newline=False)
    return CRLF.join([encoded[start : start + 76] for start in range(0, len(encoded), 76)])


def _pad(data: bytes) -> bytes:
    """``data`` grown to whole base64 lines with spaces, kept at the end of its last line.

    Spaces before a final newline are invisible in HTML, where a leading run of
    them would indent the next line.
    """
    missing = -len(data) % _LINE
    if data.endswith(b"\n"):
        return data[:-1] + b" " * missing + b"\n"
    return data + b" " * missing


def _header_value(value: str) -> str:
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")


def address_header(address: str) -> str:
    """An address for a header: the domain in IDNA, a non-ASCII local part as UTF-8 (RFC 6532)."""
    local, _, domain = address.rpartition("@")
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def sender_header(from_address: str) -> tuple[str, str]:
    """``(header value, envelope address)`` from ``Name <address>``."""
    name, address = parseaddr(from_address)
    if not address:
        address = from_address
    envelope = address_header(address)
    if not name:
        return envelope, envelope
    return f"{_header_value(name) if not name.isascii() else _quote(name)} <{envelope}>", envelope


def _quote(name: str) -> str:
    if any(ch in name for ch in '()<>[]:;@\\,."'):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


@dataclass(frozen=True)
class Personal:
    """What one recipient's copy carries that no other does."""

    email: str
    unsubscribe_url: str
    preferences_url: str


class _EncodedSegment:
    def __init__(self, segment: Segment, boundary: str) -> None:
        self.segment = segment
        # The text head's whole base64 lines are encoded once; its last partial line
        # starts each recipient's own text. Padding it with spaces instead would end
        # a line of the text in spaces, which text mail readers show and quote.
        text_head = segment.text_head.encode()
        whole = len(text_head) - len(text_head) % _LINE
        self.text_head_b64 = _base64_lines(text_head[:whole])
        self.text_head_rest = text_head[whole:]
        self.html_head_b64 = _base64_lines(_pad(segment.html_head.encode()))
        self.text_tail = segment.text_tail.encode()
        self.html_tail = segment.html_tail.encode()
        self.subject = _header_value(segment.subject).encode()
        self.boundary = boundary.encode()


class MessageFactory:
    """Builds each recipient's message from its segment."""

    def __init__(
        self,
        site: Site,
        issue_id: str,
        from_address: str,
        token_key: TokenKey,
        *,
        reply_to: str | None = None,
        now: datetime,
    ) -> None:
        self.site = site
        self.issue_id = issue_id
        self.from_header, self.envelope_sender = sender_header(from_address)
        self.reply_to = reply_to
        self.token_key = token_key
        self.date = format_datetime(now)
        self.domain = self.envelope_sender.rpartition("@")[2] or "localhost"
        self._encoded: dict[str, _EncodedSegment] = {}

    @cached_property
    def list_id(self) -> str:
        label = self.site.title if self.site.title.isascii() else "digest"
        return f"{_header_value(label)} <digest.{self.site.authority}>"

    def personal(self, subscriber: Subscriber) -> Personal:
        unsubscribe = make_token(self.token_key, subscriber.id, "unsubscribe")
        preferences = make_token(self.token_key, subscriber.id, "preferences")
        return Personal(
            email=subscriber.email,
            unsubscribe_url=self.site.api(f"unsubscribe?token={unsubscribe}"),
            preferences_url=self.site.api(f"preferences?token={preferences}"),
        )

    def build(self, segment: Segment, subscriber: Subscriber) -> tuple[str, bytes]:
        """``(Message-ID, message bytes)`` for one recipient."""
        encoded = self._encoded.get(segment.key)
        if encoded is None:
            boundary = f"=_digestpub_{uuid.uuid4().hex}"
            encoded = self._encoded[segment.key] = _EncodedSegment(segment, boundary)
        personal = self.personal(subscriber)
        message_id = f"<{self.issue_id}.{subscriber.id}.{uuid.uuid4().hex[:12]}@{self.domain}>"
        text_rest = _personalise(segment.footer_text, personal, escape=False).encode() + encoded.text_tail
        html_rest = _personalise(segment.footer_html, personal, escape=True).encode() + encoded.html_tail
        headers = [
            f"From: {self.from_header}",
            f"To: {address_header(subscriber.email)}",
            "Subject: " + encoded.subject.decode(),
            f"Date: {self.date}",
            f"Message-ID: {message_id}",
            f"List-Id: {self.list_id}",
            f"List-Unsubscribe: <{personal.unsubscribe_url}>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            f"X-Digestpub-Issue: {self.issue_id}",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative; boundary="{encoded.boundary.decode()}"',
        ]
        if self.reply_to:
            headers.insert(1, f"Reply-To: {self.reply_to}")
        delimiter = b"--" + encoded.boundary
        parts: list[bytes] = [
            "\r\n".join(headers).encode(),
            b"",
            delimiter,
            b'Content-Type: text/plain; charset="utf-8"',
            b"Content-Transfer-Encoding: base64",
            b"",
            *([encoded.text_head_b64] if encoded.text_head_b64 else []),
            _base64_lines(encoded.text_head_rest + text_rest),
            delimiter,
            b'Content-Type: text/html; charset="utf-8"',
            b"Content-Transfer-Encoding: base64",
            b"",
            encoded.html_head_b64,
            _base64_lines(html_rest),
            delimiter + b"--",
            b"",
        ]
        return message_id, CRLF.join(parts)


def _personalise(pattern: str, personal: Personal, *, escape: bool) -> str:
    quote = html.escape if escape else str
    return (
        pattern.replace(EMAIL_MARK, quote(personal.email))
        .replace(UNSUBSCRIBE_MARK, quote(personal.unsubscribe_url))
        .replace(PREFERENCES_MARK, quote(personal.preferences_url))
    )


def personal_html(segment: Segment, personal: Personal) -> str:
    """The whole HTML part one recipient gets, as text (for previews)."""
    return segment.html_head + _personalise(segment.footer_html, personal, escape=True) + segment.html_tail
