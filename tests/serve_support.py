"""``digestpub serve`` as a subprocess on 127.0.0.1, over a digest published from the examples."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

from digestpub.adapters.folder_store import FolderStore
from digestpub.publish import PublishOptions, publish
from digestpub.settings import Settings
from tests.conftest import EXAMPLES
from tests.local_ports import free_port as free_port  # the tests import it from here too


def serve_env(root: Path, base_url: str, **settings: str) -> dict[str, str]:
    """The environment of a local digest in ``root``: only the settings given here count."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DIGESTPUB_", "AWS_"))}
    env.update(
        {
            "DIGESTPUB_SOURCE": str(EXAMPLES),
            "DIGESTPUB_DEST": str(root / "public"),
            "DIGESTPUB_STATE": str(root / "state"),
            "DIGESTPUB_SUBSCRIBERS": f"sqlite:///{root / 's.db'}",
            "DIGESTPUB_MAILER": f"outbox:{root / 'outbox'}",
            "DIGESTPUB_BASE_URL": base_url,
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
        }
    )
    env.update({f"DIGESTPUB_{name.upper()}": value for name, value in settings.items()})
    return env


def publish_examples(root: Path, base_url: str) -> Path:
    """The examples published into ``root/public``; returns that folder."""
    dest, state = root / "public", root / "state"
    settings = Settings.load(source=str(EXAMPLES), dest=str(dest), state=str(state), base_url=base_url)
    report = publish(
        FolderStore(EXAMPLES), FolderStore(dest), FolderStore(state), settings.site(), PublishOptions(workers=1)
    )
    assert report.summaries_new > 0 and (dest / "tags" / "mllm" / "index.html").is_file()
    return dest


def run_digestpub(
    root: Path, env: dict[str, str], *arguments: str, umask: int = -1
) -> subprocess.CompletedProcess[str]:
    """One ``digestpub`` command in ``root``, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "digestpub", *arguments],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        umask=umask,
    )


@contextmanager
def running_serve(
    root: Path,
    env: dict[str, str],
    port: int,
    umask: int = -1,
    *,
    before: Sequence[str] = (),
    after: Sequence[str] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """``digestpub [before] serve --port port [after]`` in ``root``, answering before this yields; killed after.

    What it printed and logged is in ``root / "serve.log"``.
    """
    base_url = f"http://127.0.0.1:{port}/"
    log_path = root / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "digestpub", *before, "serve", "--port", str(port), *after],
            env=env,
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            umask=umask,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                if server.poll() is not None:
                    raise AssertionError(f"digestpub serve exited with {server.returncode}: {log_path.read_text()}")
                try:
                    if requests.get(base_url, timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"digestpub serve did not answer on {base_url}")
                time.sleep(0.1)
            yield server
        finally:
            server.kill()
            server.wait(timeout=10)
