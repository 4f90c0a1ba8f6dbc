"""Search index benchmark: what the index costs a site of ``--summaries`` summaries (the contract's layout).

    python bench/search.py [--summaries 20000] [--tags 300] [--new 100] [--group-shards N] [--keep DIR]

Publishes the seeded corpus of ``bench/publish.py`` as a process with the
``search`` setting at its default (every run), then ``--new`` more summaries,
then an edit of one old summary, and prints for each run its wall seconds, the
seconds of the index build (from the run's report), and what it wrote of the
index: files and bytes under ``pagefind/`` in ``dest`` (and which bundles) and
under ``search/`` in the state. ``--group-shards`` publishes with that many
shards of records per bundle instead of the default, to compare sizes;
``--keep`` leaves the site in DIR (to search it in a browser). The feed
pipeline's own figures are ``bench/publish.py``'s, which runs with search off.
The last line is every figure as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import write_corpus
from publish import CORPUS_START, PER_DAY, _files, _reference_seconds, _written, timed

_DIGESTPUB = [sys.executable, "-m", "digestpub"]
_OLD_SUMMARY = 1_500
"""The number of the summary the edit rewrites: in an old bundle whatever the group size."""


def _digestpub(group_shards: int | None) -> list[str]:
    if group_shards is None:
        return _DIGESTPUB
    patched = (
        f"import digestpub.publish.search as s; s._GROUP_SHARDS = {group_shards}; "
        "from digestpub.app.cli import main; main()"
    )
    return [sys.executable, "-c", patched]


def run(root: Path, group_shards: int | None = None, *arguments: str) -> dict[str, float | str]:
    result = timed(
        [*_digestpub(group_shards), "publish", "--source", str(root / "source"), "--dest", str(root / "dest"),
         "--state", str(root / "state"), *arguments]
    )  # fmt: skip
    report = json.loads((root / "state" / "reports" / "latest.json").read_text(encoding="utf-8"))
    result["index_seconds"] = report["seconds"].get("search_index", 0.0)
    return result


def _under(files: dict[str, tuple[int, int]], prefix: str) -> dict[str, tuple[int, int]]:
    return {path: found for path, found in files.items() if path.startswith(prefix)}


def _bundles(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """The bundles a run wrote files of."""
    written = {path for path, found in after.items() if before.get(path) != found and path.count("/") > 1}
    return sorted({path.split("/")[1] for path in written if path.startswith("pagefind/")})


def _edit_old(source: Path) -> str:
    """The key of the summary edited: a run reads an old day again when ``--keys`` names it."""
    (path,) = source.rglob(f"{_OLD_SUMMARY:06d}.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    document["summary"] += " Исправлено: добавлен абзац о квазикристаллах."
    document["updated_at"] = "2027-06-01T00:00:00+00:00"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path.relative_to(source).as_posix()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summaries", type=int, default=20_000)
    parser.add_argument("--tags", type=int, default=300)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--group-shards", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None)
    arguments = parser.parse_args()
    group_shards = arguments.group_shards
    print(f"reference loop: {_reference_seconds():.3f} s")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="digestpub-bench-search-") as folder:
        root = Path(folder)
        write_corpus(root / "source", arguments.summaries, arguments.tags, start=CORPUS_START, per_day=PER_DAY)
        cold = run(root, group_shards)
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
        more = run(root, group_shards)
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
            incremental_bundles=len(_bundles(before_dest, after_dest)),
            incremental_records_bytes=records_written["bytes"],
            incremental_all_files=_written(before_dest, after_dest)["files"],
            incremental_all_bytes=_written(before_dest, after_dest)["bytes"],
        )
        print(f"incremental +{arguments.new}: {more['seconds']:.1f} s (wall {time.perf_counter() - started:.1f} s), "
              f"of it the index {more['index_seconds']:.1f} s")  # fmt: skip
        print(f"  index: {index_written['files']} files written ({index_written['bytes'] / 1e6:.2f} MB), "
              f"{len(gone)} deleted; records: {records_written['bytes'] / 1e6:.2f} MB; every file written: "
              f"{figures['incremental_all_files']:.0f} ({figures['incremental_all_bytes'] / 1e6:.1f} MB)")  # fmt: skip
        listed = json.loads((root / "dest" / "pagefind" / "bundles.json").read_bytes())["bundles"]
        figures["bundles"] = len(listed)
        print(f"  bundles written: {', '.join(_bundles(before_dest, after_dest))} of {len(listed)}")

        key = _edit_old(root / "source")
        before_dest = _files(root / "dest")
        edited = run(root, group_shards, "--keys", key)
        after_dest = _files(root / "dest")
        edit_written = _written(_under(before_dest, "pagefind/"), _under(after_dest, "pagefind/"))
        figures.update(
            edit_seconds=float(edited["seconds"]),
            edit_index_seconds=float(edited["index_seconds"]),
            edit_index_files=edit_written["files"],
            edit_index_bytes=edit_written["bytes"],
        )
        print(f"edit of summary {_OLD_SUMMARY}: {edited['seconds']:.1f} s, of it the index "
              f"{edited['index_seconds']:.1f} s; {edit_written['files']} files written "
              f"({edit_written['bytes'] / 1e6:.2f} MB)")  # fmt: skip
        print(f"  bundles written: {', '.join(_bundles(before_dest, after_dest))}")
        nothing = run(root, group_shards)
        figures["nothing_new_seconds"] = float(nothing["seconds"])
        print(f"nothing new: {nothing['seconds']:.2f} s, index {nothing['index_seconds']:.1f} s")
        if arguments.keep is not None:
            shutil.copytree(root, arguments.keep, dirs_exist_ok=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
