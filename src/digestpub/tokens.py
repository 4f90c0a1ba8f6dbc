"""Signed tokens for the links in emails: unsubscribe, preferences, confirm.

A token is the URL-safe base64 (no padding) of::

    subscriber_id NUL purpose [NUL binding] MAC

where MAC is the 32-byte HMAC-SHA256, under the token key, of a version label and
what precedes it. It is verified from the key alone (no lookup), in constant time;
anything forged, altered, truncated, re-encoded or made for another purpose raises
``InvalidToken``. Unsubscribe and preference tokens do not expire: a link in an old
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
from typing import TYPE_CHECKING

from digestpub.errors import ConfigError, PreconditionFailed, StorageError
from digestpub.errors import InvalidToken as InvalidToken
from digestpub.private import SECRETS_PREFIX

if TYPE_CHECKING:
    from digestpub.ports import ObjectStore


PURPOSES = frozenset({"unsubscribe", "preferences", "confirm"})
TOKEN_KEY_OBJECT = SECRETS_PREFIX + "token_key"  # where the key is kept, not the key
MIN_KEY_LENGTH = 16

_LABEL = b"digestpub-token-v1\x00"
_MAC_SIZE = hashlib.sha256().digest_size
_MAX_TOKEN_LENGTH = 512
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\Z")


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, _LABEL + message, hashlib.sha256).digest()


def _check_purpose(purpose: str) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}: use one of {', '.join(sorted(PURPOSES))}")
    return purpose.encode("ascii")


def make_token(key: bytes, subscriber_id: str, purpose: str, binding: str = "") -> str:
    """A link token that proves ``subscriber_id`` for ``purpose`` (and ``binding``, such as
    a confirmation request's nonce) to whoever holds ``key``."""
    if not key:
        raise ValueError("the token key is empty")
    if not subscriber_id or "\x00" in subscriber_id:
        raise ValueError(f"subscriber id {subscriber_id!r} cannot go into a token")
    if "\x00" in binding:
        raise ValueError("a token binding cannot hold NUL")
    message = subscriber_id.encode("utf-8") + b"\x00" + _check_purpose(purpose)
    if binding:
        message += b"\x00" + binding.encode("utf-8")
    return base64.urlsafe_b64encode(message + _mac(key, message)).rstrip(b"=").decode("ascii")


def verify_token(key: bytes, token: str, purpose: str) -> str:
    """The subscriber id the token was made for; ``InvalidToken`` unless it is genuine and for ``purpose``."""
    return read_token(key, token, purpose)[0]


def read_token(key: bytes, token: str, purpose: str) -> tuple[str, str]:
    """The subscriber id and the binding (``""`` when none) of a genuine token for ``purpose``."""
    wanted = _check_purpose(purpose)
    if not key:
        raise ValueError("the token key is empty")
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
    if not hmac.compare_digest(mac, _mac(key, message)):
        raise InvalidToken("the token was not signed with this key")
    subscriber_id, separator, rest = message.partition(b"\x00")
    token_purpose, _, binding = rest.partition(b"\x00")
    if not separator or not hmac.compare_digest(token_purpose, wanted):
        raise InvalidToken(f"the token is not for {purpose}")
    try:
        return subscriber_id.decode("utf-8"), binding.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidToken("the token is malformed") from None


def key_from_setting(secret: str | None, state_store: ObjectStore) -> bytes:
    """The token key: the ``token_key`` setting, or else one generated once and kept in state.

    The kept key is text (``secrets/token_key`` in the state store), so copying it
    into the ``token_key`` setting gives the same key and keeps old links working.
    Two first runs at once agree on one key: the loser of the conditional write reads
    the winner's.
    """
    if secret is not None and secret.strip():
        if len(secret.strip()) < MIN_KEY_LENGTH:
            raise ConfigError(f"token_key is too short: use at least {MIN_KEY_LENGTH} random characters")
        return secret.strip().encode("utf-8")
    kept = _read_kept_key(state_store)
    if kept is not None:
        return kept
    generated = secrets.token_urlsafe(32)
    try:
        state_store.put(TOKEN_KEY_OBJECT, generated.encode("ascii"), content_type="text/plain", if_none_match=True)
    except PreconditionFailed:
        kept = _read_kept_key(state_store)
        if kept is None:
            raise StorageError(f"{state_store.url}: {TOKEN_KEY_OBJECT} exists but cannot be read back") from None
        return kept
    return generated.encode("ascii")


def _read_kept_key(state_store: ObjectStore) -> bytes | None:
    found = state_store.read(TOKEN_KEY_OBJECT)
    if found is None:
        return None
    try:
        text = found[0].decode("utf-8").strip()
    except UnicodeDecodeError:
        text = ""
    if len(text) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"{state_store.url}: {TOKEN_KEY_OBJECT} is not a usable key; "
            "restore it, or delete it to make a new one (old links then stop working)"
        )
    return text.encode("utf-8")
