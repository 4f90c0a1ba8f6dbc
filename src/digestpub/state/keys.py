"""Where everything lives in the state store: the only module that spells its keys.

Each part of the state has a name, below; its file is the name with the
generation of the run that wrote it (``catalog/ids/0a3.<generation>.json``),
and the head names the current file of every part.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

HEAD_KEY = "catalog/head.json"
"""The one file under its own name: it names every other part's file, and writing it commits a run."""
WINDOWS_KEY = "catalog/windows.jsonl"
RECENT_IDS_KEY = "catalog/ids/recent.json"
KNOWN_IDS_KEY = "catalog/ids/known.bin"
LOCK_KEY = "lock.json"
SEND_LOCK_KEY = "newsletter/send-lock.json"
"""Held by a ``digestpub newsletter`` run while it sends: two at once would together pass send_rate."""
LATEST_REPORT_KEY = "reports/latest.json"
"""Written after every committed run: a state without a head but with this has lost its head."""

TALLIES_KEY = "catalog/tallies.json"
PART_FOLDERS = ("catalog/ids/", "catalog/pages/", "catalog/seen/")
LOG_FOLDER = "catalog/log/"

_GENERATION_FILE = re.compile(r"\.[0-9a-f]{12}\.[a-z]+\Z")


_SEEN_FOLDER = "catalog/seen/"


def seen_key(month: str) -> str:
    """The part of the source objects' version tags (and the ids they held) of one month (``YYYY/MM``)."""
    return f"{_SEEN_FOLDER}{month}.json"


def seen_month(part: str) -> str | None:
    """The month (``YYYY/MM``) of a seen part's name; ``None`` for another part."""
    if not part.startswith(_SEEN_FOLDER):
        return None
    return part.removeprefix(_SEEN_FOLDER).removesuffix(".json")


_PAGES_FOLDER = "catalog/pages/"


def pages_key(shard: str) -> str:
    """The part of the complete archive pages whose names hash to ``shard``."""
    return f"{_PAGES_FOLDER}{shard}.jsonl"


def pages_shard(part: str) -> str | None:
    """The shard of a pages part's name; ``None`` for another part."""
    if not part.startswith(_PAGES_FOLDER):
        return None
    return part.removeprefix(_PAGES_FOLDER).removesuffix(".jsonl")


def shard_key(shard: str) -> str:
    return f"catalog/ids/{shard}.json"


def part_file(key: str, generation: str) -> str:
    """The file of part ``key`` as written by the run of ``generation`` (12 hex digits)."""
    stem, dot, suffix = key.rpartition(".")
    file = f"{stem}.{generation}{dot}{suffix}"
    assert _GENERATION_FILE.search(file)
    return file


def is_part_file(key: str) -> bool:
    """A file of some part of the state (not the head, the log, the lock or a report)."""
    return key.startswith("catalog/") and not key.startswith(LOG_FOLDER) and bool(_GENERATION_FILE.search(key))


def log_key(moment: datetime, run_id: str) -> str:
    """The publish log file of one run, in the folder of its UTC day."""
    utc = moment.astimezone(UTC)
    return f"{log_day_prefix(utc.date())}{utc:%H%M%S}-{run_id[:12]}.jsonl"


def log_day_prefix(day: date) -> str:
    return f"{LOG_FOLDER}{day:%Y/%m/%d}/"


def report_key(started_at: datetime, run_id: str) -> str:
    return f"reports/{started_at:%Y%m%dT%H%M%SZ}-{run_id[:8]}.json"
