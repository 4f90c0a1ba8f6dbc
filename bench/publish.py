"""Publish benchmark: ``digestpub publish`` as a user runs it, a process with its start-up, on the contract's layout.

    python bench/publish.py [--summaries 20000] [--tags 300] [--new 100] [--small 5000] [--large 50000]

The corpus is one ``.json`` object per summary, as the digest's pipeline writes
them, with a ``.jsonl`` row beside them now and then (``corpus.write_corpus``),
tags drawn from a Zipf law. Prints, against the targets:

- a cold run of ``--summaries`` (the median of three): wall seconds, peak RSS
  of the run, peak memory of the run with its worker processes, and the files
  and bytes it wrote, the monthly archives (RFC 5005 documents and month pages)
  among them;
- incremental runs of ``--new`` summaries on that history (the median of three),
  and a run with nothing new;
- ``digestpub --version`` (the median of five): the start-up every run pays;
- incremental runs on ``--small`` and ``--large`` histories, and their ratio.
  Every history ends when the main one does, and the new summaries follow
  it: a run rewrites its month's archives, so a history that ended
  early in a month would be measured against one that ended late in one, and the
  ratio would tell the calendar, not the history.

The first line times a fixed Python loop: shared machines drift, and it tells a
slow hour from a slow change. The last line is every figure as one JSON object,
to keep beside earlier runs.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
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

TARGETS = {"cold_seconds": 8.0, "cold_peak_rss_mb": 400, "incremental_seconds": 0.4, "version_seconds": 0.15}
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


def _bytes_under(folder: Path, within: str = "") -> tuple[int, int]:
    """Files under ``folder`` (those whose path holds ``within``) and their bytes."""
    files = [path for path in folder.rglob("*") if path.is_file() and within in path.relative_to(folder).as_posix()]
    return len(files), sum(path.stat().st_size for path in files)


def incremental(root: Path, history: int, tags: int, new: int, start: datetime) -> dict[str, float | str]:
    """The median of three runs, each with ``new`` more summaries on the history."""
    results = []
    rounds = 3
    for round_number in range(rounds):
        write_corpus(root / "source", new, tags, start_number=history + round_number * new, start=start)
        results.append(publish(root))
    return sorted(results, key=lambda result: float(result["seconds"]))[rounds // 2]


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
        files, size = _bytes_under(root / "dest")
        if name == "main":
            show(f"cold, {history:,}", cold, TARGETS["cold_seconds"])
            print(f"{'':<30} {files:,} files, {size:,} bytes written ({size / 1e6:.0f} MB)")
            archives, archive_size = _bytes_under(root / "dest", "/20")  # feeds/…/archive/YYYY-MM/, …/YYYY/MM/
            print(f"{'':<30} of them monthly archives: {archives:,} files, {archive_size / 1e6:.0f} MB")
            figures.update(cold_seconds=cold["seconds"], cold_peak_rss_mb=cold["peak_rss_mb"],
                           cold_with_workers_mb=cold["with_workers_mb"], cold_bytes=size, cold_files=files,
                           cold_archive_files=archives, cold_archive_bytes=archive_size)  # fmt: skip
        else:
            show(f"cold, {history:,}", cold)
        result = incremental(root, history, tags, new, start)
        show(f"incremental +{new}, {history:,}", result, TARGETS["incremental_seconds"])
        figures[f"incremental_seconds_{name}"] = result["seconds"]
        if name == "main":
            nothing = publish(root)
            show("nothing new", nothing)
            figures["nothing_new_seconds"] = nothing["seconds"]
        shutil.rmtree(root / "source")


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
