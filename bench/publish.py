"""Publish benchmark: a cold run of 50,000 summaries, then incremental runs.

    python bench/publish.py [--summaries 50000] [--tags 500] [--small 5000] [--new 100]

Prints wall seconds, peak RSS and files written for each run. Each run is a
fresh process, as the CLI and the cloud function are, so peak RSS is that run's;
beside it, the peak memory of the run with its worker processes. The first line
times a fixed Python loop and a replace of 460 files (what an incremental run
writes), once as a run does it and once with the old files kept: shared machines
drift, and these tell a slow hour from a slow change.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import write_corpus

_RUN = """
import json, sys, time
from digestpub.adapters import open_store
from digestpub.publish import publish
from digestpub.settings import Settings
settings = Settings.load(source=sys.argv[1], dest=sys.argv[2], state=sys.argv[3])
started = time.perf_counter()
report = publish(open_store(settings.source), open_store(settings.dest), open_store(settings.state), settings.site())
print(json.dumps({
    "seconds": time.perf_counter() - started,
    # VmHWM, not ru_maxrss: the latter keeps the parent's size from before exec.
    "peak_rss_mb": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024,
    "line": report.summary_line(),
}))
"""


def run(root: Path, label: str) -> dict[str, object]:
    # Start each run with the disk settled, as a scheduled run would: not while the
    # kernel still writes back the hundreds of megabytes the run before left.
    os.sync()
    watch = _MemoryWatch()
    process = subprocess.Popen(
        [sys.executable, "-c", _RUN, str(root / "source"), str(root / "dest"), str(root / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output, errors = process.communicate()
    watch.stop()
    if process.returncode:
        raise SystemExit(f"{label} failed:\n{errors}")
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    print(
        f"{label:<34} {result['seconds']:7.2f} s  peak RSS {result['peak_rss_mb']:6.0f} MB"
        f" (with its workers {watch.peak_mb:4.0f} MB)  {result['line']}"
    )
    return result


class _MemoryWatch:
    """The peak anonymous memory of a run and its workers, sampled every 10 ms.

    From the machine's ``AnonPages``, less what it was before the run: that counts
    a page the forked workers share with the run once, where summing the
    processes' RSS would count it in each, and it costs nothing to read, where
    walking each process's pages would slow the run it measures.
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


def scenario(history: int, tags: int, new: int, label: str, *, cold: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="digestpub-bench-") as folder:
        root = Path(folder)
        started = time.perf_counter()
        write_corpus(root / "source", history, tags)
        print(f"  (generated {history:,} summaries in {time.perf_counter() - started:.1f} s)")
        result = run(root, f"cold, {history:,} summaries")
        if cold:
            files = sum(1 for path in (root / "dest").rglob("*") if path.is_file())
            size = sum(path.stat().st_size for path in (root / "dest").rglob("*") if path.is_file())
            print(f"{'':<34} {files:,} files, {size / 1e6:.0f} MB under dest")
        del result
        write_corpus(root / "source", new, tags, start_number=history)
        run(root, f"incremental, +{new} on {history:,}")
        run(root, f"nothing new, on {history + new:,}")
        shutil.rmtree(root / "source")


def _reference_seconds() -> float:
    started = time.perf_counter()
    total = 0
    for step in range(5_000_000):
        total += step * step % 7
    return time.perf_counter() - started


def _reference_replace_seconds(files: int = 460, size: int = 140_000, *, keep_old: bool = False) -> float:
    """Replacing ``files`` files of ``size`` bytes by atomic rename, as an incremental run does.

    On this disk it drifts more than the CPU does, and an incremental run spends
    most of its time on it. With ``keep_old`` a second link keeps each replaced
    file, so the rename frees no blocks: the difference is what freeing them costs.
    On a disk mounted with online discard, freeing waits for the discard, and in
    the disk's slow spells that is most of the time.
    """
    with tempfile.TemporaryDirectory(prefix="digestpub-bench-disk-") as folder:
        paths = [Path(folder) / f"file-{number}" for number in range(files)]
        kept = Path(folder) / "kept"
        kept.mkdir()
        for path in paths:
            path.write_bytes(os.urandom(size))
            if keep_old:
                os.link(path, kept / path.name)
        os.sync()
        body = os.urandom(size)
        started = time.perf_counter()
        for path in paths:
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_bytes(body)
            temporary.replace(path)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summaries", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--tags", type=int, default=500)
    parser.add_argument("--new", type=int, default=100)
    arguments = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; a 5M-step Python loop takes "
        f"{_reference_seconds():.2f} s; replacing 460 files of 140 KB {_reference_replace_seconds():.2f} s "
        f"({_reference_replace_seconds(keep_old=True):.2f} s when the old files are kept); "
        f"peak RSS of this process so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    scenario(arguments.summaries, arguments.tags, arguments.new, "large", cold=True)
    scenario(arguments.small, arguments.tags, arguments.new, "small", cold=False)


if __name__ == "__main__":
    main()
