"""Publish benchmark: ``digestpub publish`` as a user runs it, a process with its start-up, on the contract's layout.

    python bench/publish.py [--summaries 20000] [--tags 300] [--new 100] [--small 5000] [--large 50000]

The corpus is one ``.json`` object per summary, as the digest's pipeline writes
them, with a ``.jsonl`` row beside them now and then (``corpus.write_corpus``),
tags drawn from a Zipf law. Prints, against the targets:

- a cold run of ``--summaries`` (the median of three): wall seconds, peak RSS
  of the run, peak memory of the run with its worker processes, the files and
  bytes it wrote, the archive pages among them, and the largest web page;
- incremental runs of ``--new`` summaries on that history (the median of three)
  with the files and bytes each wrote (archive documents among them), a run
  with nothing new, and an incremental run in a warm process
  (``warm_publish.py``, as a cloud function runs it) with the published files
  it read back;
- ``digestpub --version`` (the median of five): the start-up every run pays;
- incremental runs on ``--small`` and ``--large`` histories, and their ratio.
  Every history ends when the main one does, and the new summaries follow it.

The first line times a fixed Python loop: shared machines drift, and it tells a
slow hour from a slow change. The last line is every figure as one JSON object,
to keep beside earlier runs. The search index is off here (unless
``DIGESTPUB_SEARCH`` says otherwise): ``bench/search.py`` measures it.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import write_corpus

TARGETS = {
    "cold_seconds": 8.0,
    "cold_peak_rss_mb": 400,
    "incremental_seconds": 0.7,
    "warm_incremental_seconds": 0.3,
    "nothing_new_seconds": 0.3,
    "version_seconds": 0.15,
}
INCREMENTAL_LIMITS = {"files": 500, "bytes": 70e6, "archive_bytes": 5e6}
"""What one incremental run of 100 may write: files, bytes, and bytes of archive documents."""
LARGEST_PAGE_LIMIT = 500_000
"""No web page a phone has to open is larger."""
HISTORY_RATIO_TARGET = 1.5
CORPUS_START = datetime(2026, 1, 1, tzinfo=UTC)
PER_DAY = 150
_DIGESTPUB = [shutil.which("digestpub") or sys.executable, *([] if shutil.which("digestpub") else ["-m", "digestpub"])]
"""The installed command, as a user runs it."""


def timed(arguments: list[str]) -> dict[str, float | str]:
    """Run one command to its end: wall seconds, its peak RSS, and the peak of it with its workers."""
    os.sync()  # start with the disk settled, as a scheduled run would
    watch = _MemoryWatch()
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(arguments, stdout=out, stderr=err, text=True)
        # wait4, not wait: it gives this process's own peak RSS.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        watch.stop()
        out.seek(0)
        err.seek(0)
        output, errors = out.read(), err.read()
    if process.returncode:
        raise SystemExit(f"{' '.join(arguments)} exited {process.returncode}:\n{errors}")
    return {
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "with_workers_mb": watch.peak_mb,
        "line": output.strip().splitlines()[-1] if output.strip() else "",
    }


def publish(root: Path, site: str = "") -> dict[str, float | str]:
    """One run from ``root/source`` into the ``dest`` and ``state`` folders named by ``site``."""
    return timed(
        [*_DIGESTPUB, "publish", "--source", str(root / "source"), "--dest", str(root / f"dest{site}"),
         "--state", str(root / f"state{site}")]
    )  # fmt: skip


def show(label: str, result: dict[str, float | str], target: float | None = None) -> None:
    verdict = "" if target is None else (" ok" if float(result["seconds"]) <= target else f" OVER {target} s")
    print(
        f"{label:<30} {result['seconds']:6.2f} s{verdict:<12} peak RSS {result['peak_rss_mb']:5.0f} MB"
        f" (with workers {result['with_workers_mb']:4.0f} MB)  {result['line']}"
    )


class _MemoryWatch:
    """The peak anonymous memory of a run and its workers, sampled every 10 ms.

    From the machine's ``AnonPages``, less what it was before the run: that counts
    a page the forked workers share with the run once, where summing the
    processes' RSS would count it in each. Other work on the machine adds to it.
    """

    def __init__(self) -> None:
        self.baseline_kb = _anonymous_kb()
        self.peak_mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self.peak_mb = max(self.peak_mb, (_anonymous_kb() - self.baseline_kb) / 1024)


def _anonymous_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("AnonPages:"):
            return int(line.split()[1])
    raise RuntimeError("no AnonPages in /proc/meminfo")


_ARCHIVE_DOCUMENT = re.compile(r"/archive/\d+/(atom|rss)\.xml\Z")


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: its size and modification time, by path."""
    found = {}
    for path in folder.rglob("*"):
        if path.is_file():
            status = path.stat()
            found[path.relative_to(folder).as_posix()] = (status.st_size, status.st_mtime_ns)
    return found


def _written(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    changed = {path: size for path, (size, mtime) in after.items() if before.get(path, (0, 0))[1] != mtime}
    archives = [size for path, size in changed.items() if _ARCHIVE_DOCUMENT.search(path)]
    return {"files": len(changed), "bytes": sum(changed.values()), "archive_bytes": sum(archives)}


def incremental(root: Path, history: int, tags: int, new: int, start: datetime) -> dict[str, float | str]:
    """The median of three runs, each with ``new`` more summaries on the history, with what it wrote."""
    results = []
    rounds = 3
    for round_number in range(rounds):
        write_corpus(root / "source", new, tags, start_number=history + round_number * new, start=start)
        before = _files(root / "dest")
        result = publish(root)
        result.update(_written(before, _files(root / "dest")))
        results.append(result)
    return sorted(results, key=lambda result: float(result["seconds"]))[rounds // 2]


def warm_incremental(root: Path, history: int, tags: int, new: int, start: datetime) -> dict[str, float | str]:
    script = Path(__file__).resolve().parent / "warm_publish.py"
    arguments = [sys.executable, str(script), str(root), "--history", str(history), "--tags", str(tags)]
    arguments += ["--new", str(new), "--start", start.isoformat()]
    found: dict[str, float | str] = json.loads(subprocess.run(arguments, check=True, capture_output=True).stdout)
    return found


def cold_then_incremental(
    history: int, tags: int, new: int, figures: dict[str, object], name: str, ends_with: int
) -> None:
    """A cold run of ``history`` summaries, then incremental runs; the history ends where one of ``ends_with`` would."""
    start = CORPUS_START + timedelta(days=(ends_with - history) // PER_DAY)
    with tempfile.TemporaryDirectory(prefix="digestpub-bench-") as folder:
        root = Path(folder)
        started = time.perf_counter()
        write_corpus(root / "source", history, tags, start=start, per_day=PER_DAY)
        print(f"  ({history:,} summaries over {tags} tags written in {time.perf_counter() - started:.1f} s)")
        cold = publish(root)
        if name == "main":
            # The median of three: the target sits within this machine's run-to-run spread. Each
            # into folders of its own, kept to the end: a deletion's freed blocks slow what follows.
            colds = [cold, publish(root, "-2"), publish(root, "-3")]
            cold = sorted(colds, key=lambda result: float(result["seconds"]))[1]
        files = _files(root / "dest")
        if name == "main":
            show(f"cold, {history:,}", cold, TARGETS["cold_seconds"])
            size = sum(file_size for file_size, _ in files.values())
            print(f"{'':<30} {len(files):,} files, {size:,} bytes written ({size / 1e6:.0f} MB)")
            archives = [file_size for path, (file_size, _) in files.items() if "/archive/" in path]
            print(f"{'':<30} of them archive pages: {len(archives):,} files, {sum(archives) / 1e6:.0f} MB")
            largest = max((file_size, path) for path, (file_size, _) in files.items() if path.endswith(".html"))
            verdict = "ok" if largest[0] <= LARGEST_PAGE_LIMIT else f"OVER {LARGEST_PAGE_LIMIT:,}"
            print(f"{'':<30} largest web page: {largest[1]}, {largest[0]:,} bytes {verdict}")
            figures.update(cold_seconds=cold["seconds"], cold_peak_rss_mb=cold["peak_rss_mb"],
                           cold_with_workers_mb=cold["with_workers_mb"], cold_bytes=size, cold_files=len(files),
                           cold_archive_files=len(archives), cold_archive_bytes=sum(archives),
                           largest_page_bytes=largest[0])  # fmt: skip
        else:
            show(f"cold, {history:,}", cold)
        result = incremental(root, history, tags, new, start)
        show(f"incremental +{new}, {history:,}", result, TARGETS["incremental_seconds"])
        figures[f"incremental_seconds_{name}"] = result["seconds"]
        if name == "main":
            _show_written(result)
            figures.update({f"incremental_{what}": result[what] for what in INCREMENTAL_LIMITS})
            nothing = publish(root)
            show("nothing new", nothing, TARGETS["nothing_new_seconds"])
            figures["nothing_new_seconds"] = nothing["seconds"]
            warm = warm_incremental(root, history + 3 * new, tags, new, start)
            verdict = "ok" if float(warm["warm_seconds"]) <= TARGETS["warm_incremental_seconds"] else "OVER"
            print(f"{'incremental, warm process':<30} {warm['warm_seconds']:6.2f} s {verdict:<10} "
                  f"read back {warm['files_read_back']} files ({int(warm['bytes_read_back']) / 1e6:.1f} MB); "
                  f"{warm['line']}")  # fmt: skip
            figures.update({f"warm_{key}": value for key, value in warm.items() if key != "line"})
        shutil.rmtree(root / "source")


def _show_written(result: dict[str, float | str]) -> None:
    verdicts = [
        f"{what} {float(result[what]):,.0f}" + ("" if float(result[what]) <= limit else f" OVER {limit:,.0f}")
        for what, limit in INCREMENTAL_LIMITS.items()
    ]
    print(f"{'':<30} wrote: {', '.join(verdicts)}")


def _compile_package() -> None:
    """Bytecode for every digestpub module, as installing its wheel writes it.

    An editable install (or ``PYTHONDONTWRITEBYTECODE``) leaves none, and every
    run would then compile the modules it imports: a user's run does not.
    """
    spec = importlib.util.find_spec("digestpub")
    if spec is None or spec.origin is None:
        raise SystemExit("digestpub is not installed in this environment")
    compileall.compile_dir(Path(spec.origin).parent, quiet=1)


def _reference_seconds() -> float:
    started = time.perf_counter()
    total = 0
    for step in range(5_000_000):
        total += step * step % 7
    return time.perf_counter() - started


def main() -> None:
    # The feed pipeline's figures: the search index has its own (bench/search.py).
    os.environ.setdefault("DIGESTPUB_SEARCH", "off")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summaries", type=int, default=20_000)
    parser.add_argument("--tags", type=int, default=300)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--large", type=int, default=50_000)
    parser.add_argument("--skip-history", action="store_true", help="Leave out the small and large histories.")
    arguments = parser.parse_args()
    _compile_package()
    reference = _reference_seconds()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; a 5M-step Python loop takes {reference:.2f} s")
    figures: dict[str, object] = {"reference_loop_seconds": reference, "summaries": arguments.summaries,
                                  "tags": arguments.tags}  # fmt: skip
    version = sorted((timed([*_DIGESTPUB, "--version"]) for _ in range(5)), key=lambda result: float(result["seconds"]))
    show("digestpub --version", version[2], TARGETS["version_seconds"])
    figures["version_seconds"] = version[2]["seconds"]
    main_history = arguments.summaries
    cold_then_incremental(main_history, arguments.tags, arguments.new, figures, "main", main_history)
    if not arguments.skip_history:
        cold_then_incremental(arguments.small, arguments.tags, arguments.new, figures, "small", main_history)
        cold_then_incremental(arguments.large, arguments.tags, arguments.new, figures, "large", main_history)
        ratio = float(figures["incremental_seconds_large"]) / float(figures["incremental_seconds_small"])  # type: ignore[arg-type]
        verdict = "ok" if ratio <= HISTORY_RATIO_TARGET else f"OVER {HISTORY_RATIO_TARGET}"
        print(f"incremental, {arguments.large:,} vs {arguments.small:,} history: {ratio:.2f}x {verdict}")
        figures["history_ratio"] = ratio
    print(json.dumps({name: round(value, 4) if isinstance(value, float) else value for name, value in figures.items()}))


if __name__ == "__main__":
    main()
