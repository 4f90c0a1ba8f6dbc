"""Checking summary files before they are uploaded, with the rules ``publish`` applies.

Each file goes through the same ``SummaryReader`` as a publish run, and the ids
through the same merge, so a file that passes here is published as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from digestpub.errors import ConfigError
from digestpub.model import Problem, ProblemCounts, Summary, SummaryRef
from digestpub.publish.ingest import SummaryReader, readable_key, refused_key, summary_key
from digestpub.publish.plan import merge
from digestpub.publish.tagging import shared_slugs

_KEY_PARTS = 4
"""``YYYY/MM/DD/<name>.json``: the tail of a path that makes it a summary key."""
_SUFFIXES = {".json": False, ".jsonl": True}
"""Whether a file of each suffix holds JSON Lines."""


@dataclass
class CheckResult(ProblemCounts):
    files: int = 0
    summaries: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing here would be skipped; cleaned text is published, so it passes."""
        return self.skipped == 0


def check_paths(paths: Sequence[Path], reader: SummaryReader, exclude: Sequence[str] = ()) -> CheckResult:
    """Every summary file named or under a folder named, minus what ``exclude`` matches.

    A glob in ``exclude`` matches a file's path as shown (``a/2026/11/20/x.json``)
    or one line of it (``a/2026/11/20/x.jsonl:3``). A path that does not exist
    raises ``ConfigError``.
    """
    result = CheckResult()
    refs: list[SummaryRef] = []  # what the merge needs, without the text: a large folder stays small

    def wanted(where: str) -> bool:
        return not any(fnmatchcase(where, pattern) for pattern in exclude)

    for path, lines in _summary_files(paths):
        shown = readable_key(path.as_posix())
        if not wanted(shown):
            continue
        result.files += 1
        refused = refused_key(path.as_posix())
        if refused is not None:
            result.problems.append(refused)
            continue
        if lines is None:
            result.problems.append(
                Problem(key=shown, reason="not a summary file: publish reads only <name>.json and <name>.jsonl")
            )
            continue
        size = _size(path)
        if size > reader.max_object_bytes:
            result.problems.append(reader.too_large(shown, size))
            continue
        for record in reader.read_summaries(shown, _read(path), lines=lines):
            where = record.where() if isinstance(record, Problem) else _where(record)
            if not wanted(where):
                continue
            if isinstance(record, Problem):
                result.problems.append(record)
            else:
                refs.append(record.ref())
    result.summaries = len(refs)
    # Ids across the files checked, as one run would see them; the state's ids are not known here.
    result.problems.extend(merge(refs, lambda _: None).duplicates)
    result.problems.extend(shared_slugs(refs, {}))
    return result


def _where(summary: Summary) -> str:
    key, line = summary.source_key, summary.source_line
    return f"{key}:{line}" if line is not None else key


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None


def _summary_files(paths: Iterable[Path]) -> Iterator[tuple[Path, bool | None]]:
    """Each file to check, and whether it holds JSON Lines (``None``: it is no summary file).

    Under a folder, only what ``publish`` would read counts: keys ending in
    ``YYYY/MM/DD/<name>.json`` or ``.jsonl``. A file named on its own is checked
    by its suffix, since the pipeline may not have given it its key yet.
    """
    for path in paths:
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                kind = _is_jsonl_key(found)
                if kind is not None and found.is_file():
                    yield found, kind
        elif path.is_file():
            kind = _is_jsonl_key(path)
            yield path, kind if kind is not None else _SUFFIXES.get(path.suffix)
        else:
            raise ConfigError(f"{path} does not exist")


def _is_jsonl_key(path: Path) -> bool | None:
    found = summary_key("/".join(path.parts[-_KEY_PARTS:]))
    return None if found is None else found[1] == "jsonl"
