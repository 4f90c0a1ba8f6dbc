"""Search index benchmark: what the index costs a site of ``--summaries`` summaries (the contract's layout).

    python bench/search.py [--summaries 20000] [--tags 300] [--new 100]

Publishes the seeded corpus of ``bench/publish.py`` as a process with the
``search`` setting at its default (every run), then ``--new`` more summaries,
and prints for each run its wall seconds, the seconds of the index build (from
the run's report), and what it wrote of the index: files and bytes under
``pagefind/`` in ``dest`` and under ``search/`` in the state. The feed
pipeline's own figures are ``bench/publish.py``'s, which runs with search off.
The last line is every figure as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import write_corpus
from publish import CORPUS_START, PER_DAY, _files, _reference_seconds, _written, timed

_DIGESTPUB = [sys.executable, "-m", "digestpub"]


def run(root: Path) -> dict[str, float | str]:
    result = timed(
        [*_DIGESTPUB, "publish", "--source", str(root / "source"), "--dest", str(root / "dest"),
         "--state", str(root / "state")]
    )  # fmt: skip
    report = json.loads((root / "state" / "reports" / "latest.json").read_text(encoding="utf-8"))
    result["index_seconds"] = report["seconds"].get("search_index", 0.0)
    return result


def _under(files: dict[str, tuple[int, int]], prefix: str) -> dict[str, tuple[int, int]]:
    return {path: found for path, found in files.items() if path.startswith(prefix)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summaries", type=int, default=20_000)
    parser.add_argument("--tags", type=int, default=300)
    parser.add_argument("--new", type=int, default=100)
    arguments = parser.parse_args()
    print(f"reference loop: {_reference_seconds():.3f} s")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="digestpub-bench-search-") as folder:
        root = Path(folder)
        write_corpus(root / "source", arguments.summaries, arguments.tags, start=CORPUS_START, per_day=PER_DAY)
        cold = run(root)
        index = _under(_files(root / "dest"), "pagefind/")
        records = _under(_files(root / "state"), "search/")
        figures.update(
            cold_seconds=float(cold["seconds"]),
            cold_index_seconds=float(cold["index_seconds"]),
            index_files=len(index),
            index_bytes=sum(size for size, _ in index.values()),
            records_bytes=sum(size for size, _ in records.values()),
        )
        print(f"cold, {arguments.summaries:,}: {cold['seconds']:.1f} s, of it the index {cold['index_seconds']:.1f} s")
        print(f"  index: {len(index):,} files, {figures['index_bytes'] / 1e6:.1f} MB; records in the state: "
              f"{figures['records_bytes'] / 1e6:.1f} MB")  # fmt: skip

        write_corpus(root / "source", arguments.new, arguments.tags, start_number=arguments.summaries,
                     start=CORPUS_START)  # fmt: skip
        before_dest, before_state = _files(root / "dest"), _files(root / "state")
        started = time.perf_counter()
        more = run(root)
        after_dest, after_state = _files(root / "dest"), _files(root / "state")
        index_written = _written(_under(before_dest, "pagefind/"), _under(after_dest, "pagefind/"))
        records_written = _written(_under(before_state, "search/"), _under(after_state, "search/"))
        gone = set(_under(before_dest, "pagefind/")) - set(after_dest)
        figures.update(
            incremental_seconds=float(more["seconds"]),
            incremental_index_seconds=float(more["index_seconds"]),
            incremental_index_files=index_written["files"],
            incremental_index_bytes=index_written["bytes"],
            incremental_index_deleted=len(gone),
            incremental_records_bytes=records_written["bytes"],
            incremental_all_files=_written(before_dest, after_dest)["files"],
            incremental_all_bytes=_written(before_dest, after_dest)["bytes"],
        )
        print(f"incremental +{arguments.new}: {more['seconds']:.1f} s (wall {time.perf_counter() - started:.1f} s), "
              f"of it the index {more['index_seconds']:.1f} s")  # fmt: skip
        print(f"  index: {index_written['files']} files written ({index_written['bytes'] / 1e6:.2f} MB), "
              f"{len(gone)} deleted; records: {records_written['bytes'] / 1e6:.2f} MB; every file written: "
              f"{figures['incremental_all_files']:.0f} ({figures['incremental_all_bytes'] / 1e6:.1f} MB)")  # fmt: skip
        nothing = run(root)
        figures["nothing_new_seconds"] = float(nothing["seconds"])
        print(f"nothing new: {nothing['seconds']:.2f} s, index {nothing['index_seconds']:.1f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
