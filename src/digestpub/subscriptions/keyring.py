"""Where the token keys live, and how they change: a ring, newest first.

Every unsubscribe and preference link in every email ever sent was signed with
one of these keys, so they must outlive anything a run may lose. Locally the
ring is a private file beside the subscriber store (``secrets/token_key`` in its
folder), never in the publish state, which a run may rebuild and a user may
move away; a key an earlier version kept in the state moves there on first use.
The ``token_key`` setting (in the cloud, the SSM parameter) holds the same text
and wins. A new key is made only where no subscriber exists yet: with
subscribers and no key, a run stops (``ConfigError``) rather than break every link.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from digestpub.errors import ConfigError, PreconditionFailed, StorageError
from digestpub.ports import ObjectStore
from digestpub.private import SECRETS_PREFIX
from digestpub.subscriptions.tokens import KeyRing, format_ring, new_key, parse_ring

log = logging.getLogger("digestpub.keys")

RING_OBJECT = SECRETS_PREFIX + "token_key"
"""The ring's key in its store (the same in the publish state, where earlier versions kept it)."""
_WRITE_ATTEMPTS = 10


@dataclass(frozen=True)
class KeyHome:
    """The store that keeps the ring, and the publish state, where an older key may still be."""

    store: ObjectStore
    state: ObjectStore

    @property
    def where(self) -> str:
        return f"{self.store.url.rstrip('/')}/{RING_OBJECT}"

    @property
    def moves_from_state(self) -> bool:
        return self.store.url != self.state.url


def load_ring(secret: str | None, home: KeyHome, has_subscribers: Callable[[], bool]) -> KeyRing:
    """The token keys: from the setting, else the kept ring (moved out of the state if it is there),
    else a new one, made only while ``has_subscribers()`` is false."""
    if secret is not None and secret.strip():
        return parse_ring(secret, "token_key")
    ring = _kept(home)
    if ring is not None:
        return ring
    if has_subscribers():
        raise ConfigError(
            f"the token key is missing ({home.where} does not exist) but the subscriber store holds subscribers: "
            "every unsubscribe and preference link in the emails already sent was signed with it, and a new key "
            "would make them all answer 403. Restore that file (or set token_key to the key), or run "
            "`digestpub keys rotate` to start a new key on purpose"
        )
    return _create(home)


def rotate(home: KeyHome) -> KeyRing:
    """A new newest key; the older ones still verify until retired."""
    return _update(home, lambda ring: (new_key(), *ring))


def retire(home: KeyHome, keep: int = 1) -> tuple[KeyRing, int]:
    """Keep the newest ``keep`` keys; returns the ring and how many keys were retired."""
    if keep < 1:
        raise ConfigError("--keep must be at least 1: the newest key signs every new link")
    before: list[int] = []

    def newest(ring: KeyRing) -> KeyRing:
        before.append(len(ring))
        return ring[:keep]

    ring = _update(home, newest, must_exist=True)
    return ring, before[-1] - len(ring)


def _kept(home: KeyHome) -> KeyRing | None:
    found = _read(home.store)
    if found is not None:
        return found[0]
    if not home.moves_from_state:
        return None
    legacy = _read(home.state)
    if legacy is None:
        return None
    ring = _put_new(home, legacy[0])
    home.state.delete(RING_OBJECT)
    log.warning("moved the token key from the publish state to %s", home.where)
    return ring


def _create(home: KeyHome) -> KeyRing:
    ring = _put_new(home, (new_key(),))
    log.info("made a new token key in %s", home.where)
    return ring


def _put_new(home: KeyHome, ring: KeyRing) -> KeyRing:
    """Write ``ring`` where none is; two first runs at once agree on one (the loser reads the winner's)."""
    try:
        home.store.put(RING_OBJECT, format_ring(ring), content_type="text/plain", if_none_match=True)
    except PreconditionFailed:
        found = _read(home.store)
        if found is None:
            raise StorageError(f"{home.where} exists but cannot be read back") from None
        return found[0]
    return ring


def _update(home: KeyHome, change: Callable[[KeyRing], KeyRing], *, must_exist: bool = False) -> KeyRing:
    """Write ``change(ring)`` over the ring as read; each write is conditional on that version."""
    for _attempt in range(_WRITE_ATTEMPTS):
        _kept(home)  # a key still in the state moves first
        found = _read(home.store)
        if found is None and must_exist:
            raise ConfigError(f"there is no token key to retire: {home.where} does not exist")
        ring = change(() if found is None else found[0])
        try:
            home.store.put(
                RING_OBJECT,
                format_ring(ring),
                content_type="text/plain",
                if_match=None if found is None else found[1],
                if_none_match=found is None,
            )
        except PreconditionFailed:
            continue
        return ring
    raise StorageError(f"{home.where} kept changing while the keys were changed; try again")


def _read(store: ObjectStore) -> tuple[KeyRing, str] | None:
    found = store.read(RING_OBJECT)
    if found is None:
        return None
    where = f"{store.url.rstrip('/')}/{RING_OBJECT}"
    try:
        text = found[0].decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    try:
        return parse_ring(text, where), found[1]
    except ConfigError:
        raise ConfigError(
            f"{where} holds no usable key; restore it, or delete it and run `digestpub keys rotate` "
            "to make a new one (links in emails already sent then stop working)"
        ) from None
