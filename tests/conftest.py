"""Shared fixtures: sample summaries, a moto S3 server on 127.0.0.1, the Atom schema, the HTML checker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "summaries"
# RFC 4287's RELAX NG schema, kept beside the checkout (a worktree finds it a folder further up).
ATOM_SCHEMA_PATH = Path("shared", "schemas", "atom.rng")
ATOM_SCHEMA = next(
    (folder / ATOM_SCHEMA_PATH for folder in REPO.parents if (folder / ATOM_SCHEMA_PATH).is_file()),
    REPO.parent / ATOM_SCHEMA_PATH,
)
# The Nu Html Checker (validator.nu), from npm: package.json lists it and `npm ci` installs it.
NU_HTML_CHECKER = REPO / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"


# The contract's Content-Type of each feed (§2), by path in dest.
FEED_TYPES = {
    "feeds/rss.xml": "application/rss+xml; charset=utf-8",
    "feeds/atom.xml": "application/atom+xml; charset=utf-8",
    "feeds/feed.json": "application/feed+json; charset=utf-8",
    "feeds/tags/mllm/rss.xml": "application/rss+xml; charset=utf-8",
    "feeds/tags/mllm/atom.xml": "application/atom+xml; charset=utf-8",
    "feeds/tags/mllm/feed.json": "application/feed+json; charset=utf-8",
}


def summary(number: int | str, **fields: Any) -> dict[str, Any]:
    """A valid summary document; ``fields`` override or add fields (None removes one)."""
    summary_id = f"2611.{number:05d}" if isinstance(number, int) else number
    document: dict[str, Any] = {
        "id": summary_id,
        "title": f"Статья номер {number}",
        "summary": f"**Что сделали.** Краткий пересказ статьи {number}.\n\n- пункт\n- ещё пункт",
        "tags": ["mllm"],
        "url": f"https://aidigest.example/papers/{summary_id}",
        "published_at": f"2026-11-20T{8 + (hash(str(number)) % 10):02d}:{int(str(number)[-2:] or 0) % 60:02d}:00+03:00",
    }
    for name, value in fields.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return document


def state_part(read: Callable[[str], bytes | None], key: str) -> bytes | None:
    """A part of the publish state, from the file its head names for it (``read`` gets a file by key)."""
    head = read("catalog/head.json")
    assert head is not None, "no state"
    file = json.loads(head)["parts"].get(key)
    return None if file is None else read(file)


def folder_state_part(state: Path, key: str) -> bytes | None:
    return state_part(lambda file: (state / file).read_bytes() if (state / file).is_file() else None, key)


def write_json(folder: Path, key: str, document: Any) -> Path:
    path = folder / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def atom_schema() -> Any:
    """The RELAX NG schema of Atom (RFC 4287), from the project's shared folder."""
    if not ATOM_SCHEMA.is_file():
        pytest.skip(f"no {ATOM_SCHEMA_PATH} beside this checkout or above it: put RFC 4287's RELAX NG schema there")
    from lxml import etree

    return etree.RelaxNG(etree.parse(str(ATOM_SCHEMA)))


def html_problems(pages: list[Path]) -> list[str]:
    """What the Nu Html Checker finds wrong in ``pages``, errors and warnings alike.

    Skips the calling test when the checker cannot run here, saying what is missing.
    """
    java = shutil.which("java")
    if java is None:
        pytest.skip("java is not installed (the Nu Html Checker runs on it): `apt-get install default-jre-headless`")
    if not NU_HTML_CHECKER.is_file():
        pytest.skip(f"{NU_HTML_CHECKER.relative_to(REPO)} is missing; `npm ci` installs the Nu Html Checker")
    assert pages, "no pages to check"
    result = subprocess.run(
        [java, "-jar", str(NU_HTML_CHECKER), "--format", "json", *map(str, pages)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # The report goes to stderr; the exit status only repeats whether it holds errors.
    try:
        messages = json.loads(result.stderr)["messages"]
    except (ValueError, KeyError):
        pytest.fail(f"the Nu Html Checker did not report (exit {result.returncode}): {result.stderr[-2000:]}")
    return [
        f"{message.get('url', '?')}:{message.get('lastLine', '?')}: {message['type']}: {message['message']}"
        f" in {message.get('extract', '')!r}"
        for message in messages
    ]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode: real HTTP on 127.0.0.1; boto3 finds it via AWS_ENDPOINT_URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {name: os.environ.get(name) for name in _AWS_ENV}
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield endpoint
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_PROFILE")


@pytest.fixture
def s3_bucket(moto_server: str) -> Iterator[str]:
    """A fresh, empty bucket on the moto server; moto is reset afterwards."""
    import boto3
    import requests

    name = f"digestpub-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    yield name
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Any]]:
    """``start(port=None, **answers)`` runs aiosmtpd on 127.0.0.1: see ``newsletter_support.Recorder``."""
    from tests.newsletter_support import smtp_servers

    with smtp_servers() as start:
        yield start


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Groups for ``--dist loadgroup``: what shares a costly setup runs in one worker, everything else anywhere.

    The browser tests share one worker, one Chromium at a time; the tests of a module
    with a module- or class-scoped fixture run together, so that each worker does not build it again.
    """
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.xdist_group("chromium"))
        elif _uses_a_shared_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def _uses_a_shared_fixture(item: pytest.Item) -> bool:
    definitions = getattr(item, "_fixtureinfo", None)
    if definitions is None:
        return False
    return any(
        definition.scope in ("module", "class")
        for chain in definitions.name2fixturedefs.values()
        for definition in chain
    )
