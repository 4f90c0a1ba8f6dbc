"""The token key ring: where it is kept, made only for a store without subscribers, moved out of
the publish state, rotated and retired (stores in memory and, for the folder beside SQLite, on disk)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from digestpub.adapters.folder_store import FolderStore
from digestpub.app.locations import open_key_home
from digestpub.errors import ConfigError, PreconditionFailed
from digestpub.subscriptions.keyring import RING_OBJECT, KeyHome, load_ring, retire, rotate
from digestpub.subscriptions.tokens import make_token, verify_token
from tests.fakes import MemoryStore

SUBSCRIBER = "0f8fad5bd9cb469fa16570867728950e"


def _home() -> KeyHome:
    return KeyHome(MemoryStore("subscribers"), MemoryStore("state"))


def _none() -> bool:
    return False


def _some() -> bool:
    return True


def test_the_setting_wins_and_is_a_ring() -> None:
    home = _home()
    assert load_ring("  a long enough secret value  ", home, _some) == (b"a long enough secret value",)
    assert load_ring("newest-key-0123456789, older-key-0123456789", home, _some) == (
        b"newest-key-0123456789",
        b"older-key-0123456789",
    )
    assert home.store.objects == {} and home.state.objects == {}  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="too short"):
        load_ring("secret", home, _none)
    with pytest.raises(ConfigError, match="key 2 is too short"):
        load_ring("newest-key-0123456789, old", home, _none)


def test_a_key_is_made_once_for_a_store_without_subscribers_and_kept() -> None:
    home = _home()
    first = load_ring(None, home, _none)
    assert len(first) == 1 and len(first[0]) >= 32
    assert home.store.read(RING_OBJECT) is not None
    assert home.state.read(RING_OBJECT) is None, "never in the publish state"
    assert load_ring(None, home, _some) == first
    assert load_ring("", home, _some) == first
    # Copying the kept ring into the setting gives the same keys: old links keep working.
    assert load_ring(home.store.read(RING_OBJECT)[0].decode(), _home(), _some) == first  # type: ignore[index]


def test_with_subscribers_and_no_key_nothing_is_made_and_the_error_says_what_to_do() -> None:
    home = _home()
    with pytest.raises(ConfigError) as refused:
        load_ring(None, home, _some)
    message = str(refused.value)
    assert "memory://subscribers/secrets/token_key does not exist" in message
    assert "403" in message and "token_key" in message and "digestpub keys rotate" in message
    assert home.store.objects == {}  # type: ignore[attr-defined]


def test_a_key_in_the_publish_state_moves_beside_the_subscribers(caplog: pytest.LogCaptureFixture) -> None:
    home = _home()
    home.state.put(RING_OBJECT, b"the-key-of-an-earlier-version-0123\n")
    assert load_ring(None, home, _some) == (b"the-key-of-an-earlier-version-0123",)
    assert home.state.read(RING_OBJECT) is None
    assert home.store.read(RING_OBJECT)[0] == b"the-key-of-an-earlier-version-0123\n"  # type: ignore[index]
    assert "moved the token key" in caplog.text
    assert load_ring(None, home, _some) == (b"the-key-of-an-earlier-version-0123",)


def test_rotate_then_retire() -> None:
    home = _home()
    first = load_ring(None, home, _none)
    old_link = make_token(first, SUBSCRIBER, "unsubscribe")
    ring = rotate(home)
    assert len(ring) == 2 and ring[1:] == first
    assert load_ring(None, home, _some) == ring
    new_link = make_token(ring, SUBSCRIBER, "unsubscribe")
    assert verify_token(ring, old_link, "unsubscribe") == verify_token(ring, new_link, "unsubscribe") == SUBSCRIBER
    assert rotate(home)[1:] == ring
    kept, retired = retire(home, keep=2)
    assert (len(kept), retired) == (2, 1)
    kept, retired = retire(home)
    assert (kept, retired) == ((load_ring(None, home, _some)[0],), 1)
    assert retire(home) == (kept, 0)
    with pytest.raises(ConfigError, match="at least 1"):
        retire(home, keep=0)


def test_rotate_makes_the_first_key_on_purpose_and_retire_needs_one() -> None:
    home = _home()
    with pytest.raises(ConfigError, match="no token key to retire"):
        retire(home)
    made = rotate(home)
    assert len(made) == 1 and load_ring(None, home, _some) == made


class _LosesTheRace(MemoryStore):
    """Another run writes its key between our read and our conditional write."""

    def put(self, key: str, data: bytes, **options: Any) -> str:
        if key == RING_OBJECT and RING_OBJECT not in self.objects:
            super().put(key, b"the-other-runs-key-0123456789", if_none_match=True)
            raise PreconditionFailed("lost")
        return super().put(key, data, **options)


def test_a_race_reads_the_winners_key() -> None:
    home = KeyHome(_LosesTheRace(), MemoryStore("state"))
    assert load_ring(None, home, _none) == (b"the-other-runs-key-0123456789",)


def test_concurrent_first_runs_agree() -> None:
    home = _home()
    rings: list[tuple[bytes, ...]] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        rings.append(load_ring(None, home, _none))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(rings)) == 1


def test_a_damaged_ring_is_a_config_error() -> None:
    home = _home()
    home.store.put(RING_OBJECT, b"short")
    with pytest.raises(ConfigError, match="holds no usable key"):
        load_ring(None, home, _none)


def test_beside_sqlite_the_ring_is_a_private_file_in_its_folder(tmp_path: Path) -> None:
    state = FolderStore(tmp_path / "state")
    home = open_key_home(f"sqlite:///{tmp_path / 'data' / 's.db'}", state)
    ring = load_ring(None, home, _none)
    file = tmp_path / "data" / "secrets" / "token_key"
    assert file.read_bytes() == ring[0] + b"\n"
    assert file.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "state").exists()
    assert open_key_home("dynamodb://subscribers", state).store is state, "the cloud's SSM parameter or the state"
