"""Publish benchmark: a cold run of 50,000 summaries, then incremental runs.

    python bench/publish.py [--summaries 50000] [--tags 500] [--small 5000] [--new 100]

Prints wall seconds, peak RSS and files written for each run. Each run is a
fresh process, as the CLI and the cloud function are, so peak RSS is that run's.
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
    process = subprocess.Popen(
        [sys.executable, "-c", _RUN, str(root / "source"), str(root / "dest"), str(root / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watch = _MemoryWatch(process.pid)
    output, errors = process.communicate()
    watch.stop()
    if process.returncode:
        raise SystemExit(f"{label} failed:\n{errors}")
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    print(
        f"{label:<34} {result['seconds']:7.2f} s  peak RSS {result['peak_rss_mb']:6.0f} MB"
        f" (all processes {watch.peak_mb:4.0f} MB PSS)  {result['line']}"
    )
    return result


class _MemoryWatch:
    """The peak of the summed PSS of a process and its workers, sampled every 20 ms.

    PSS, not RSS: forked workers share most of their pages with the run, and RSS
    would count those once per process.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            total = sum(_pss_kb(pid) for pid in _tree(self.pid))
            self.peak_mb = max(self.peak_mb, total / 1024)


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for found in pids:
        try:
            for task in Path(f"/proc/{found}/task").iterdir():
                pids.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:  # it ended while we looked
            continue
    return pids


def _pss_kb(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:  # it ended while we looked
        return 0
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summaries", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--tags", type=int, default=500)
    parser.add_argument("--new", type=int, default=100)
    arguments = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, peak RSS of this process so far "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    scenario(arguments.summaries, arguments.tags, arguments.new, "large", cold=True)
    scenario(arguments.small, arguments.tags, arguments.new, "small", cold=False)


if __name__ == "__main__":
    main()
