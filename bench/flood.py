"""Flood benchmark: one ``.jsonl`` object of broken lines through ``digestpub publish``, a process as a user runs it.

    python bench/flood.py [--lines 1000000]

The object holds one good summary and ``--lines`` broken ones (about 11 bytes
each); ``max_object_bytes`` is raised so that it is read at all. Prints the
wall seconds and peak memory of the run that reads it and of the run after
it, which has nothing new but loads the state the first one left, and the
bytes of that state and of the run's report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from publish import _DIGESTPUB, _files, show, timed

DAY = "2026/11/20"
GOOD = {
    "id": "2611.00001",
    "title": "Статья",
    "summary": "Краткий пересказ.",
    "tags": ["mllm"],
    "url": "https://aidigest.example/papers/2611.00001",
    "published_at": "2026-11-20T09:30:00+03:00",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digestpub-flood-") as folder:
        root = Path(folder)
        (root / "source" / DAY).mkdir(parents=True)
        flood = root / "source" / DAY / "flood.jsonl"
        flood.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"id": oops\n' * arguments.lines)
        os.environ["DIGESTPUB_MAX_OBJECT_BYTES"] = str(flood.stat().st_size)
        command = [*_DIGESTPUB, "publish", "--source", str(root / "source"), "--dest", str(root / "dest")]
        command += ["--state", str(root / "state")]
        print(f"{arguments.lines:,} broken lines, {flood.stat().st_size / 1e6:.1f} MB")
        show("flood run", timed(command))
        files = _files(root / "state")
        state = sum(size for size, _ in files.values())
        reports = sum(size for path, (size, _) in files.items() if path.startswith("reports/"))
        print(f"state: {len(files)} files, {(state - reports) / 1e3:,.0f} KB and its reports {reports / 1e3:,.0f} KB")
        show("run after the flood", timed(command))


if __name__ == "__main__":
    main()
