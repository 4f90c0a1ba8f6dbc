"""Signed tokens for the links in emails: unsubscribe, preferences, confirm.

A token is the URL-safe base64 (no padding) of::

    subscriber_id NUL purpose [NUL binding] MAC

where MAC is the 32-byte HMAC-SHA256, under the token key, of a version label and
what precedes it. It is verified from the key alone (no lookup), in constant time;
anything forged, altered, truncated, re-encoded or made for another purpose raises
``InvalidToken``. The key may be a ring (newest first): the newest signs, and a
token signed with any key of the ring verifies, so links in emails already sent
keep working after a rotation until their key is retired (``keyring``).
Unsubscribe and preference tokens do not expire: a link in an old
email must keep working for as long as the subscriber exists. A confirm token is
bound to one confirmation request (its nonce, kept with the subscriber until it is
used or expires), so the store, not the token, decides whether it still confirms.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from digestpub.errors import ConfigError
from digestpub.errors import InvalidToken as InvalidToken

PURPOSES = frozenset({"unsubscribe", "preferences", "confirm"})
MIN_KEY_LENGTH = 16

KeyRing = tuple[bytes, ...]
"""Token keys, newest first: the newest signs, every one verifies."""
TokenKey = bytes | KeyRing
"""One key, or a ring."""

_LABEL = b"digestpub-token-v1\x00"
_MAC_SIZE = hashlib.sha256().digest_size
_MAX_TOKEN_LENGTH = 512
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\Z")


_SEPARATORS = re.compile(r"[\s,]+")


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, _LABEL + message, hashlib.sha256).digest()


def key_ring(key: TokenKey) -> KeyRing:
    """The ring of ``key``, which is one key or a ring already; ``ValueError`` when it holds no usable key."""
    ring = (key,) if isinstance(key, bytes) else key
    if not ring or not all(ring):
        raise ValueError("the token key is empty")
    return ring


def signing_key(key: TokenKey) -> bytes:
    """The key that signs new links: the newest of the ring."""
    return key_ring(key)[0]


def parse_ring(text: str, where: str) -> KeyRing:
    """Keys separated by whitespace or commas, newest first, as the setting, the SSM parameter and
    the key file hold them (a line without commas whose words are too short is one key with spaces);
    ``ConfigError`` naming ``where`` for a key too short to be safe."""
    whole = text.strip()
    keys = [key for key in _SEPARATORS.split(whole) if key]
    short = [number for number, key in enumerate(keys, start=1) if len(key) < MIN_KEY_LENGTH]
    if short and len(whole) >= MIN_KEY_LENGTH and not any(mark in whole for mark in ",\n"):
        keys, short = [whole], []  # one key with spaces in it, as keys could be before rings
    if not keys or short:
        which = "it holds no key" if not keys else f"key {', '.join(map(str, short))} is too short"
        raise ConfigError(
            f"{where}: {which}; a key is at least {MIN_KEY_LENGTH} random characters, "
            "and several are separated by spaces or commas, newest first"
        )
    return tuple(dict.fromkeys(key.encode("utf-8") for key in keys))


def format_ring(ring: KeyRing) -> bytes:
    """The text of a key file: one key a line, newest first."""
    return b"".join(key + b"\n" for key in ring)


def new_key() -> bytes:
    return secrets.token_urlsafe(32).encode("ascii")


def _check_purpose(purpose: str) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}: use one of {', '.join(sorted(PURPOSES))}")
    return purpose.encode("ascii")


def make_token(key: TokenKey, subscriber_id: str, purpose: str, binding: str = "") -> str:
    """A link token that proves ``subscriber_id`` for ``purpose`` (and ``binding``, such as
    a confirmation request's nonce) to whoever holds ``key`` (of a ring: its newest)."""
    signing = signing_key(key)
    if not subscriber_id or "\x00" in subscriber_id:
        raise ValueError(f"subscriber id {subscriber_id!r} cannot go into a token")
    if "\x00" in binding:
        raise ValueError("a token binding cannot hold NUL")
    message = subscriber_id.encode("utf-8") + b"\x00" + _check_purpose(purpose)
    if binding:
        message += b"\x00" + binding.encode("utf-8")
    return base64.urlsafe_b64encode(message + _mac(signing, message)).rstrip(b"=").decode("ascii")


def verify_token(key: TokenKey, token: str, purpose: str) -> str:
    """The subscriber id the token was made for; ``InvalidToken`` unless it is genuine and for ``purpose``."""
    return read_token(key, token, purpose)[0]


def read_token(key: TokenKey, token: str, purpose: str) -> tuple[str, str]:
    """The subscriber id and the binding (``""`` when none) of a genuine token for ``purpose``,
    signed with any key of the ring."""
    wanted = _check_purpose(purpose)
    ring = key_ring(key)
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH or not _TOKEN_SHAPE.match(token):
        raise InvalidToken("the token is malformed")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("the token is malformed") from None
    # Only the canonical spelling is accepted: no second token for the same bytes.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token or len(raw) <= _MAC_SIZE:
        raise InvalidToken("the token is malformed")
    message, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
    # Each key compared in constant time; which one signed is no secret.
    if not any(hmac.compare_digest(mac, _mac(each, message)) for each in ring):
        raise InvalidToken("the token was not signed with any key of the ring")
    subscriber_id, separator, rest = message.partition(b"\x00")
    token_purpose, _, binding = rest.partition(b"\x00")
    if not separator or not hmac.compare_digest(token_purpose, wanted):
        raise InvalidToken(f"the token is not for {purpose}")
    try:
        return subscriber_id.decode("utf-8"), binding.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidToken("the token is malformed") from None
