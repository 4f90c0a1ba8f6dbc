"""An incremental run in a warm process, as a cloud function runs it after its first call.

    python bench/warm_publish.py ROOT --history 20000 --tags 300 --new 100 --start 2026-01-01

``ROOT`` holds ``source``, ``dest`` and ``state`` of a published history of
``--history`` summaries. In one process: a run of ``--new`` summaries (it pays
the imports and warms the caches), then another of ``--new`` more, timed, with
the destination's reads and writes counted (in one process, so that forked
writers do not take the counts with them). Prints one JSON object: the timed
run's seconds, the files and bytes it wrote (archive documents among them) and
the published files it read back.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import write_corpus
from digestpub.app.locations import open_store
from digestpub.model import ObjectInfo
from digestpub.ports import ObjectStore
from digestpub.publish import publish
from digestpub.publish.options import PublishOptions
from digestpub.settings import Settings

_ARCHIVE_DOCUMENT = re.compile(r"/archive/\d+/(atom|rss)\.xml\Z")


class CountingStore:
    """A store that counts what a run reads from it and writes to it."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.reset()

    def reset(self) -> None:
        self.reads, self.read_bytes = 0, 0
        self.writes: dict[str, int] = {}

    @property
    def url(self) -> str:
        return self.inner.url

    @property
    def is_local(self) -> bool:
        return self.inner.is_local

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix, start_after)

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, str] | None:
        found = self.inner.read(key, max_bytes)
        if found is not None:
            self.reads += 1
            self.read_bytes += len(found[0])
        return found

    def put(self, key: str, data: bytes, **options: object) -> str:
        self.writes[key] = len(data)
        return self.inner.put(key, data, **options)  # type: ignore[arg-type]

    def delete(self, key: str) -> None:
        self.inner.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--history", type=int, required=True)
    parser.add_argument("--tags", type=int, required=True)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--start", type=datetime.fromisoformat, required=True)
    arguments = parser.parse_args()
    root: Path = arguments.root
    settings = Settings.load()
    site = settings.site()
    source, state = open_store(str(root / "source")), open_store(str(root / "state"))
    dest = CountingStore(open_store(str(root / "dest")))
    for round_number in range(2):
        first = arguments.history + round_number * arguments.new
        write_corpus(root / "source", arguments.new, arguments.tags, start_number=first, start=arguments.start)
        dest.reset()
        started = time.perf_counter()
        report = publish(source, dest, state, site, PublishOptions(workers=1))
        seconds = time.perf_counter() - started
    archives = {key: size for key, size in dest.writes.items() if _ARCHIVE_DOCUMENT.search(key)}
    print(
        json.dumps(
            {
                "warm_seconds": round(seconds, 4),
                "line": report.summary_line(),
                "files_written": len(dest.writes),
                "bytes_written": sum(dest.writes.values()),
                "archive_files_written": len(archives),
                "archive_bytes_written": sum(archives.values()),
                "files_read_back": dest.reads,
                "bytes_read_back": dest.read_bytes,
            }
        )
    )


if __name__ == "__main__":
    main()
