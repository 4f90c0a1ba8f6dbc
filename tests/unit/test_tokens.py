"""Link tokens: a round trip, and every way of tampering with one is refused."""

from __future__ import annotations

import base64
import random

import pytest

from digestpub.errors import ConfigError
from digestpub.subscriptions.tokens import (
    PURPOSES,
    InvalidToken,
    format_ring,
    make_token,
    parse_ring,
    read_token,
    verify_token,
)

KEY = b"k" * 32
SUBSCRIBER = "0f8fad5bd9cb469fa16570867728950e"


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@pytest.mark.parametrize("purpose", sorted(PURPOSES))
def test_round_trip(purpose: str) -> None:
    token = make_token(KEY, SUBSCRIBER, purpose)
    assert verify_token(KEY, token, purpose) == SUBSCRIBER
    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_round_trip_of_any_id() -> None:
    for subscriber_id in ("1", "подписчик-7", "a.b:c#d", "x" * 100):
        assert verify_token(KEY, make_token(KEY, subscriber_id, "confirm"), "confirm") == subscriber_id


def test_same_input_same_token() -> None:
    assert make_token(KEY, SUBSCRIBER, "unsubscribe") == make_token(KEY, SUBSCRIBER, "unsubscribe")


def test_wrong_purpose() -> None:
    token = make_token(KEY, SUBSCRIBER, "confirm")
    for purpose in ("unsubscribe", "preferences"):
        with pytest.raises(InvalidToken):
            verify_token(KEY, token, purpose)


def test_wrong_key() -> None:
    token = make_token(KEY, SUBSCRIBER, "unsubscribe")
    with pytest.raises(InvalidToken):
        verify_token(b"another key of enough length!!", token, "unsubscribe")


def test_forged_without_the_key() -> None:
    # Someone who knows the format but not the key: a MAC of their own choosing.
    message = SUBSCRIBER.encode() + b"\x00unsubscribe"
    for mac in (b"\x00" * 32, random.Random(1).randbytes(32)):
        with pytest.raises(InvalidToken):
            verify_token(KEY, _encode(message + mac), "unsubscribe")


def test_other_subscriber_with_this_mac() -> None:
    raw = _raw(make_token(KEY, SUBSCRIBER, "unsubscribe"))
    other = b"1" * len(SUBSCRIBER) + raw[len(SUBSCRIBER) :]
    with pytest.raises(InvalidToken):
        verify_token(KEY, _encode(other), "unsubscribe")


def test_purpose_swapped_in_the_token() -> None:
    raw = _raw(make_token(KEY, SUBSCRIBER, "confirm"))
    swapped = raw.replace(b"\x00confirm", b"\x00unsubscribe")
    with pytest.raises(InvalidToken):
        verify_token(KEY, _encode(swapped), "unsubscribe")


@pytest.mark.parametrize("part", ["id", "purpose", "mac"])
def test_altered_in_each_part(part: str) -> None:
    raw = bytearray(_raw(make_token(KEY, SUBSCRIBER, "preferences")))
    position = {"id": 3, "purpose": len(SUBSCRIBER) + 3, "mac": len(raw) - 5}[part]
    raw[position] ^= 0x01
    with pytest.raises(InvalidToken):
        verify_token(KEY, _encode(bytes(raw)), "preferences")


@pytest.mark.parametrize("keep", [0, 1, 10, 40, -1, -2, -3])
def test_truncated(keep: int) -> None:
    token = make_token(KEY, SUBSCRIBER, "unsubscribe")
    with pytest.raises(InvalidToken):
        verify_token(KEY, token[:keep], "unsubscribe")


def test_extended() -> None:
    token = make_token(KEY, SUBSCRIBER, "unsubscribe")
    for extra in ("A", "AA", "AAAA", "=", "=="):
        with pytest.raises(InvalidToken):
            verify_token(KEY, token + extra, "unsubscribe")


@pytest.mark.parametrize(
    "garbage",
    ["", "not a token", "!!!!", "Zm9v", "a" * 2000, "токен", "abc\n", "abc.def", "\x00", "a/b+c"],
)
def test_garbage(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        verify_token(KEY, garbage, "unsubscribe")


def test_not_a_string() -> None:
    with pytest.raises(InvalidToken):
        verify_token(KEY, None, "unsubscribe")  # type: ignore[arg-type]


def test_unknown_purpose_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="purpose"):
        make_token(KEY, SUBSCRIBER, "unsubcribe")
    with pytest.raises(ValueError, match="purpose"):
        verify_token(KEY, make_token(KEY, SUBSCRIBER, "confirm"), "confrim")


def test_bad_inputs_to_make() -> None:
    with pytest.raises(ValueError, match="empty"):
        make_token(b"", SUBSCRIBER, "confirm")
    with pytest.raises(ValueError, match="id"):
        make_token(KEY, "", "confirm")
    with pytest.raises(ValueError, match="id"):
        make_token(KEY, "a\x00b", "confirm")


def test_random_mutations_are_all_refused() -> None:
    """Property-style: any change to a genuine token's text is refused, never accepted."""
    rng = random.Random(20261120)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.~ я"
    for _ in range(3000):
        subscriber_id = rng.randbytes(16).hex()
        purpose = rng.choice(sorted(PURPOSES))
        token = make_token(KEY, subscriber_id, purpose)
        chars = list(token)
        for _ in range(rng.randint(1, 3)):
            operation = rng.choice(("replace", "insert", "delete", "swap"))
            at = rng.randrange(len(chars))
            if operation == "replace":
                chars[at] = rng.choice(alphabet)
            elif operation == "insert":
                chars.insert(at, rng.choice(alphabet))
            elif operation == "delete" and len(chars) > 1:
                del chars[at]
            elif operation == "swap":
                other = rng.randrange(len(chars))
                chars[at], chars[other] = chars[other], chars[at]
        mutated = "".join(chars)
        if mutated == token:
            continue
        with pytest.raises(InvalidToken):
            verify_token(KEY, mutated, purpose)


def test_random_byte_flips_are_all_refused() -> None:
    rng = random.Random(7)
    token = make_token(KEY, SUBSCRIBER, "unsubscribe")
    raw = _raw(token)
    for _ in range(2000):
        flipped = bytearray(raw)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        with pytest.raises(InvalidToken):
            verify_token(KEY, _encode(bytes(flipped)), "unsubscribe")


# Key rings


def test_a_ring_signs_with_its_newest_key_and_verifies_with_each() -> None:
    old, new = b"o" * 32, b"n" * 32
    signed_before = make_token(old, SUBSCRIBER, "unsubscribe")
    ring = (new, old)
    signed_now = make_token(ring, SUBSCRIBER, "unsubscribe")
    assert signed_now == make_token(new, SUBSCRIBER, "unsubscribe"), "the newest key signs"
    for token in (signed_before, signed_now):
        assert verify_token(ring, token, "unsubscribe") == SUBSCRIBER
    with pytest.raises(InvalidToken, match="any key"):
        verify_token((new,), signed_before, "unsubscribe")  # its key retired
    with pytest.raises(InvalidToken):
        verify_token(ring, make_token(b"x" * 32, SUBSCRIBER, "unsubscribe"), "unsubscribe")
    with pytest.raises(ValueError, match="empty"):
        verify_token((), signed_now, "unsubscribe")


def test_a_ring_is_read_from_text_newest_first() -> None:
    text = " first-key-0123456789,\n second-key-0123456789  first-key-0123456789 "
    assert parse_ring(text, "token_key") == (b"first-key-0123456789", b"second-key-0123456789")
    assert parse_ring(format_ring((b"a" * 20, b"b" * 20)).decode(), "file") == (b"a" * 20, b"b" * 20)
    with pytest.raises(ConfigError, match="token_key: key 2 is too short"):
        parse_ring("a-long-enough-key-0123,short", "token_key")
    # A line of short words is one key with spaces, as a key could be before rings.
    assert parse_ring(" correct horse battery staple ", "token_key") == (b"correct horse battery staple",)
    with pytest.raises(ConfigError, match="holds no key"):
        parse_ring(" , ", "token_key")


def test_a_bound_token_carries_its_binding() -> None:
    token = make_token(KEY, SUBSCRIBER, "confirm", "nonce-1")
    assert read_token(KEY, token, "confirm") == (SUBSCRIBER, "nonce-1")
    assert verify_token(KEY, token, "confirm") == SUBSCRIBER
    assert read_token(KEY, make_token(KEY, SUBSCRIBER, "confirm"), "confirm") == (SUBSCRIBER, "")
    assert make_token(KEY, SUBSCRIBER, "confirm", "nonce-2") != token
    with pytest.raises(InvalidToken):
        verify_token(KEY, token, "unsubscribe")
    with pytest.raises(ValueError, match="NUL"):
        make_token(KEY, SUBSCRIBER, "confirm", "a\x00b")


def test_a_binding_cannot_be_swapped() -> None:
    """The MAC covers the binding: another request's nonce cannot be put into a token."""
    raw = _raw(make_token(KEY, SUBSCRIBER, "confirm", "nonce-1"))
    swapped = raw.replace(b"nonce-1", b"nonce-2")
    token = base64.urlsafe_b64encode(swapped).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        read_token(KEY, token, "confirm")
