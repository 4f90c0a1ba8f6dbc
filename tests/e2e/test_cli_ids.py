"""Entry ids that never move, run as a process: the id authority is fixed at a site's first run.

Moving ``base_url`` moves every link and no id; an ``id_authority`` that would
change the ids of an existing site is refused (exit 2) with how to mean it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import summary, write_json
from tests.e2e.test_cli import _env, feed_json, one_line, run

OLD = "https://old.example/digest/"
NEW = "https://new.example/"


def _publish(tmp_path: Path, *extra: str) -> list[str]:
    return ["publish", "--source", "source", "--dest", "dest", "--state", "state", *extra]


def _items(tmp_path: Path) -> list[dict[str, str]]:
    items = feed_json(tmp_path / "dest")["items"]
    assert isinstance(items, list)
    return items


def _head_authority(tmp_path: Path) -> object:
    return json.loads((tmp_path / "state/catalog/head.json").read_text(encoding="utf-8")).get("id_authority")


def test_a_moved_base_url_moves_links_and_keeps_every_id(tmp_path: Path) -> None:
    write_json(tmp_path / "source", "2026/11/20/a.json", summary("2611.00001", tags=["mllm"]))
    assert run(tmp_path, *_publish(tmp_path, "--base-url", OLD)).returncode == 0
    before = _items(tmp_path)
    atom_before = (tmp_path / "dest/feeds/atom.xml").read_text(encoding="utf-8")
    write_json(tmp_path / "source", "2026/11/21/b.json", summary("2611.00002", tags=["mllm"]))

    moved = run(tmp_path, *_publish(tmp_path, "--base-url", NEW))

    assert moved.returncode == 0, moved.stderr
    after = {item["id"]: item for item in _items(tmp_path)}
    assert [item["id"] for item in before] == ["tag:old.example,2026:summary/2611.00001"]
    assert set(after) == {"tag:old.example,2026:summary/2611.00001", "tag:old.example,2026:summary/2611.00002"}
    assert feed_json(tmp_path / "dest")["home_page_url"] == NEW
    atom = (tmp_path / "dest/feeds/atom.xml").read_text(encoding="utf-8")
    assert "<id>tag:old.example,2026:feed/all</id>" in atom_before
    assert "<id>tag:old.example,2026:feed/all</id>" in atom
    assert 'href="https://new.example/feeds/atom.xml"' in atom
    assert "old.example/digest" not in atom, "every link moved with base_url"
    assert _head_authority(tmp_path) == "old.example,2026"


def test_an_id_authority_that_would_change_the_ids_of_a_site_exits_2_and_changes_nothing(tmp_path: Path) -> None:
    write_json(tmp_path / "source", "2026/11/20/a.json", summary("2611.00001"))
    assert run(tmp_path, *_publish(tmp_path, "--base-url", OLD)).returncode == 0
    head_before = (tmp_path / "state/catalog/head.json").read_bytes()
    write_json(tmp_path / "source", "2026/11/21/b.json", summary("2611.00002"))

    refused = run(tmp_path, *_publish(tmp_path), env=_env(DIGESTPUB_ID_AUTHORITY="new.example"))

    assert refused.returncode == 2, refused.stdout + refused.stderr
    message = one_line(refused.stderr)
    assert "id_authority is 'new.example,2026'" in message
    assert "'old.example,2026'" in message
    assert "Remove the id_authority setting" in message and "--rebuild" in message
    assert (tmp_path / "state/catalog/head.json").read_bytes() == head_before
    assert [item["id"] for item in _items(tmp_path)] == ["tag:old.example,2026:summary/2611.00001"]

    flag = run(tmp_path, *_publish(tmp_path, "--id-authority", "new.example"))
    assert flag.returncode == 2 and "id_authority is 'new.example,2026'" in one_line(flag.stderr)
    same = run(tmp_path, *_publish(tmp_path), env=_env(DIGESTPUB_ID_AUTHORITY="old.example,2026"))
    assert same.returncode == 0, same.stderr
    meant = run(tmp_path, *_publish(tmp_path, "--rebuild"), env=_env(DIGESTPUB_ID_AUTHORITY="new.example"))
    assert meant.returncode == 0, meant.stderr
    assert {item["id"] for item in _items(tmp_path)} == {
        "tag:new.example,2026:summary/2611.00001",
        "tag:new.example,2026:summary/2611.00002",
    }
    assert _head_authority(tmp_path) == "new.example,2026"


def test_a_new_site_takes_its_id_authority_from_the_setting_and_keeps_it(tmp_path: Path) -> None:
    write_json(tmp_path / "source", "2026/11/20/a.json", summary("2611.00001"))
    (tmp_path / "digestpub.toml").write_text('id_authority = "digest.example,2024"\n', encoding="utf-8")

    first = run(tmp_path, "--config", "digestpub.toml", *_publish(tmp_path))

    assert first.returncode == 0, first.stderr
    assert [item["id"] for item in _items(tmp_path)] == ["tag:digest.example,2024:summary/2611.00001"]
    assert _head_authority(tmp_path) == "digest.example,2024"
    # Without the setting, the site keeps what its first run fixed.
    write_json(tmp_path / "source", "2026/11/21/b.json", summary("2611.00002"))
    assert run(tmp_path, *_publish(tmp_path, "--base-url", NEW)).returncode == 0
    assert {item["id"] for item in _items(tmp_path)} == {
        "tag:digest.example,2024:summary/2611.00001",
        "tag:digest.example,2024:summary/2611.00002",
    }


def test_a_site_from_before_authorities_were_kept_keeps_the_ids_it_has(tmp_path: Path) -> None:
    write_json(tmp_path / "source", "2026/11/20/a.json", summary("2611.00001"))
    assert run(tmp_path, *_publish(tmp_path, "--base-url", OLD)).returncode == 0
    head = tmp_path / "state/catalog/head.json"
    older = json.loads(head.read_text(encoding="utf-8"))
    del older["id_authority"]
    head.write_text(json.dumps(older), encoding="utf-8")

    assert run(tmp_path, *_publish(tmp_path, "--base-url", OLD)).returncode == 0
    assert _head_authority(tmp_path) == "old.example,2026"
    assert run(tmp_path, *_publish(tmp_path, "--base-url", NEW, "--full-scan")).returncode == 0
    assert [item["id"] for item in _items(tmp_path)] == ["tag:old.example,2026:summary/2611.00001"]


def test_an_id_authority_that_is_no_host_exits_2_naming_the_setting(tmp_path: Path) -> None:
    refused = run(tmp_path, *_publish(tmp_path), env=_env(DIGESTPUB_ID_AUTHORITY="https://x.example/"))

    assert refused.returncode == 2
    assert "id_authority" in one_line(refused.stderr)
