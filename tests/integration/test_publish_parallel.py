"""The parallel paths of a large run give the same bytes and state as one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digestpub.app.locations import open_store
from digestpub.model import PublishReport
from digestpub.publish import PublishOptions, publish
from digestpub.publish import run as publish_run
from digestpub.settings import Settings
from tests.conftest import folder_state_part, summary, write_json


def _corpus(folder: Path, count: int, first: int = 0) -> None:
    for number in range(first, first + count):
        tags = [f"tag{number % 45}", f"tag{(number * 7) % 45}"]
        day = 10 + number % 10
        document = summary(number, tags=tags, published_at=f"2026-11-{day:02d}T{number % 24:02d}:{number % 60:02d}:00Z")
        write_json(folder, f"2026/11/{day:02d}/{number}.json", document)


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _windows(root: Path) -> dict[str, object]:
    """Each feed's items and file hashes; file versions are inode numbers, different in every folder."""
    found = folder_state_part(root / "state", "catalog/windows.jsonl")
    assert found is not None
    lines = found.splitlines()
    windows = [json.loads(line) for line in lines]
    return {
        window["feed"]: (window["items"], {kind: published[0] for kind, published in window["files"].items()})
        for window in windows
    }


def _news(root: Path) -> list[object]:
    """What the runs logged for newsletters, without the moments and run ids that differ.

    Sorted: two runs in the same second may name their log files in either order.
    """
    lines = []
    for path in (root / "state" / "catalog" / "log").rglob("*.jsonl"):
        lines.extend({**json.loads(line), "logged_at": None} for line in path.read_bytes().splitlines())
    return sorted(lines, key=lambda line: json.dumps(line, sort_keys=True))


def _run(tmp: Path, name: str, workers: int) -> PublishReport:
    site = Settings.load(base_url="https://digest.example/").site()
    options = PublishOptions(workers=workers)
    stores = [
        open_store(str(tmp / "source")),
        open_store(str(tmp / name / "dest")),
        open_store(str(tmp / name / "state")),
    ]
    return publish(*stores, site, options)


def _outcome(report: PublishReport) -> tuple[object, ...]:
    problems = [(problem.key, problem.line, problem.outcome, problem.reason) for problem in report.problems]
    return report.summaries_new, report.summaries_updated, report.summaries_unchanged, problems


@pytest.fixture(autouse=True)
def _workers_for_any_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # The corpus here is small; the crew of readers starts only for large reads.
    monkeypatch.setattr(publish_run, "_PARALLEL_READ_BYTES", 0)


def test_parallel_runs_write_what_one_process_writes(tmp_path: Path) -> None:
    # 45 tags: enough touched feeds for worker processes; 1,500 entries: enough to render in parallel.
    source = tmp_path / "source"
    _corpus(source, 1_500)
    # Problems that span the workers' shares: a copy of an id under another key,
    # an edit in a later object, and a broken object.
    write_json(source, "2026/11/19/zz-copy.json", summary(7, tags=["tag7"], published_at="2026-11-17T07:07:00Z"))
    edited = summary(8, tags=["tag8"], published_at="2026-11-18T08:08:00Z", updated_at="2026-11-21T00:00:00Z")
    write_json(source, "2026/11/21/edit.json", {**edited, "title": "Исправленная статья"})
    (source / "2026/11/21/broken.json").write_text("{not json", encoding="utf-8")
    serial = _run(tmp_path, "serial", workers=1)
    parallel = _run(tmp_path, "parallel", workers=2)
    assert _outcome(parallel) == _outcome(serial)
    assert serial.skipped == 2  # the copy and the broken object
    assert _files(tmp_path / "parallel" / "dest") == _files(tmp_path / "serial" / "dest")
    assert _news(tmp_path / "parallel") == _news(tmp_path / "serial") != []

    # An incremental run on top: the workers cut the entries they kept out of the files
    # they wrote, and handed back the same windows.
    _corpus(tmp_path / "source", 60, first=1_500)
    assert _outcome(_run(tmp_path, "parallel", workers=2)) == _outcome(_run(tmp_path, "serial", workers=1))
    assert _files(tmp_path / "parallel" / "dest") == _files(tmp_path / "serial" / "dest")
    assert _windows(tmp_path / "parallel") == _windows(tmp_path / "serial")
    assert _news(tmp_path / "parallel") == _news(tmp_path / "serial")

    # And a run with nothing new writes nothing in either.
    for name, workers in (("serial", 1), ("parallel", 2)):
        stores = [open_store(str(tmp_path / "source")), open_store(str(tmp_path / name / "dest"))]
        stores.append(open_store(str(tmp_path / name / "state")))
        report = publish(
            *stores, Settings.load(base_url="https://digest.example/").site(), PublishOptions(workers=workers)
        )
        assert report.files_written == 0


def test_a_deletion_read_by_workers_publishes_the_copy_one_process_publishes(tmp_path: Path) -> None:
    # The copy is read by a second round of reads, after the first found the original gone.
    source = tmp_path / "source"
    _corpus(source, 300)
    original = source / "2026/11/17/7.json"
    assert json.loads(original.read_text(encoding="utf-8"))["id"] == "2611.00007"
    copy = summary(7, tags=["tag7"], published_at="2026-11-17T07:07:00Z", title="Копия статьи номер 7")
    write_json(source, "2026/11/19/zz-copy.json", copy)
    for name, workers in (("serial", 1), ("parallel", 2)):
        _run(tmp_path, name, workers)
    original.unlink()

    reports = {}
    for name, workers in (("serial", 1), ("parallel", 2)):
        stores = [open_store(str(tmp_path / "source")), open_store(str(tmp_path / name / "dest"))]
        stores.append(open_store(str(tmp_path / name / "state")))
        site = Settings.load(base_url="https://digest.example/").site()
        reports[name] = publish(*stores, site, PublishOptions(workers=workers, full_scan=True))

    assert reports["parallel"].objects_read == reports["serial"].objects_read == 1  # the copy
    assert _outcome(reports["parallel"]) == _outcome(reports["serial"])
    assert _files(tmp_path / "parallel" / "dest") == _files(tmp_path / "serial" / "dest")
    page = (tmp_path / "parallel" / "dest" / "tags" / "tag7" / "index.html").read_text(encoding="utf-8")
    assert "Копия статьи номер 7" in page


def test_workers_parse_what_this_process_fetched_from_s3(s3_bucket: str, tmp_path: Path) -> None:
    # Over a network the run fetches the objects itself and hands each worker its share.
    import boto3

    corpus = tmp_path / "corpus"
    _corpus(corpus, 200)
    (corpus / "2026/11/21/broken.json").parent.mkdir(parents=True, exist_ok=True)
    (corpus / "2026/11/21/broken.json").write_text("{not json", encoding="utf-8")
    client = boto3.client("s3")
    for path in corpus.rglob("*.json"):
        client.put_object(Bucket=s3_bucket, Key=f"summaries/{path.relative_to(corpus)}", Body=path.read_bytes())

    reports = {}
    for name, workers in (("serial", 1), ("parallel", 2)):
        stores = [open_store(f"s3://{s3_bucket}/summaries"), open_store(str(tmp_path / name / "dest"))]
        stores.append(open_store(str(tmp_path / name / "state")))
        site = Settings.load(base_url="https://digest.example/").site()
        reports[name] = publish(*stores, site, PublishOptions(workers=workers))

    assert reports["serial"].objects_read == 201
    assert reports["serial"].summaries_new == 200
    assert _outcome(reports["parallel"]) == _outcome(reports["serial"])
    assert _files(tmp_path / "parallel" / "dest") == _files(tmp_path / "serial" / "dest")
    assert _news(tmp_path / "parallel") == _news(tmp_path / "serial") != []


def test_a_file_a_worker_cannot_read_fails_the_run_as_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digestpub.adapters.folder_store import FolderStore
    from digestpub.errors import StorageError

    _corpus(tmp_path / "source", 200)
    read = FolderStore.read

    def failing_read(self: FolderStore, key: str, max_bytes: int | None = None) -> tuple[bytes, str] | None:
        if key == "2026/11/15/105.json":
            raise StorageError(f"cannot read {key}: Input/output error")
        return read(self, key, max_bytes)

    monkeypatch.setattr(FolderStore, "read", failing_read)
    for name, workers in (("serial", 1), ("parallel", 2)):
        with pytest.raises(StorageError, match=r"2026/11/15/105\.json: Input/output error"):
            _run(tmp_path, name, workers)
        # Nothing committed: the next run, with the file readable, publishes everything.
        assert not (tmp_path / name / "state" / "catalog" / "head.json").exists()
    monkeypatch.setattr(FolderStore, "read", read)
    reports = {name: _run(tmp_path, name, workers) for name, workers in (("serial", 1), ("parallel", 2))}
    assert reports["parallel"].summaries_new == reports["serial"].summaries_new == 200
    assert _files(tmp_path / "parallel" / "dest") == _files(tmp_path / "serial" / "dest")


def test_many_keys_named_without_a_listing_are_read_by_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Named keys have no listed size: each counts as about one summary, so enough of them start workers.
    monkeypatch.setattr(publish_run, "_PARALLEL_READ_BYTES", 30 * publish_run._NAMED_OBJECT_BYTES)
    started: list[int] = []
    source_class = publish_run.SummarySource

    def recording(reader: object, source: object, workers: int) -> object:
        started.append(workers)
        return source_class(reader, source, workers)  # type: ignore[arg-type]

    monkeypatch.setattr(publish_run, "SummarySource", recording)
    source = tmp_path / "source"
    _corpus(source, 10)
    # Objects of an old day: the next runs list only recent days, so only naming them reads them.
    keys = [f"2026/10/01/old-{number}.json" for number in range(100, 140)]
    for number, key in zip(range(100, 140), keys, strict=True):
        write_json(source, key, summary(number, tags=["tag1"], published_at="2026-10-01T08:00:00Z"))
    site = Settings.load(base_url="https://digest.example/").site()
    for name, count in (("few", 20), ("many", 40)):
        stores = [open_store(str(source)), open_store(str(tmp_path / name / "dest"))]
        stores.append(open_store(str(tmp_path / name / "state")))
        (source / "2026/10").rename(tmp_path / "aside")
        assert publish(*stores, site, PublishOptions(workers=2)).summaries_new == 10
        (tmp_path / "aside").rename(source / "2026/10")
        started.clear()
        report = publish(*stores, site, PublishOptions(workers=2, keys=tuple(keys[:count])))
        assert (report.full_scan, report.objects_read, report.summaries_new) == (False, count, count)
        assert started == [1 if count == 20 else 2]
