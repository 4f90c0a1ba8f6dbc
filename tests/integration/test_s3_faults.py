"""Publishing to S3 through a proxy of the tests' own that fails requests as S3 can.

moto's server (127.0.0.1) stands behind ``tests.fault_proxy``: writes that are
applied and then answered 500, and requests refused (503) or dropped. A run
must complete, or stop with a storage error (exit 1) so that the next one
completes; it must never wait on its own lease (exit 3); and what it publishes
must be byte for byte what a clean build publishes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest

from digestpub.app.locations import open_store
from digestpub.errors import StorageError
from digestpub.model import PublishReport
from digestpub.publish import PublishOptions, publish
from digestpub.site import Site
from tests.conftest import summary
from tests.fault_proxy import Rule, fault_proxy, once_for, random_faults

BASE_URL = "https://aidigest.example/"
_TAGS = ["mllm", "vqa", "agents", "rag", "moe", "speech", "robotics", "diffusion", "rlhf", "benchmark"]


def _site() -> Site:
    return Site(
        title="Ай Дайджест", description="Выжимка", lang="ru", base_url=BASE_URL, api_url=BASE_URL, feed_size=20
    )


def _options(**overrides: Any) -> PublishOptions:
    # A short wait: a run that waited on its own lease would fail the test fast.
    # Corrections leave the feeds at once: a tombstone carries the moment of its run, which a clean build
    # made at another moment cannot match.
    values: dict[str, Any] = {"workers": 1, "lock_wait": timedelta(seconds=2), "correction_days": 0}
    return PublishOptions(**{**values, **overrides})


def _corpus(s3: Any, bucket: str, count: int, first: int = 0) -> None:
    for number in range(first, first + count):
        day = 1 + number % 28
        tags = [_TAGS[number % len(_TAGS)], _TAGS[(number * 3) % len(_TAGS)]]
        document = summary(90000 + number, tags=tags, published_at=f"2026-10-{day:02d}T{number % 24:02d}:00:00Z")
        body = json.dumps(document, ensure_ascii=False).encode()
        s3.put_object(Bucket=bucket, Key=f"summaries/2026/10/{day:02d}/{number}.json", Body=body)


def _run(bucket: str, site: str, state: str, **overrides: Any) -> PublishReport:
    stores = [open_store(f"s3://{bucket}/{prefix}") for prefix in ("summaries", site, state)]
    return publish(*stores, _site(), _options(**overrides))


def _published(s3: Any, bucket: str, prefix: str) -> dict[str, tuple[bytes, str, str]]:
    """Every file under ``prefix``: its bytes, Content-Type and Cache-Control."""
    files = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            found = s3.get_object(Bucket=bucket, Key=item["Key"])
            key = item["Key"].removeprefix(f"{prefix}/")
            files[key] = (found["Body"].read(), found["ContentType"], found.get("CacheControl", ""))
    return files


@pytest.fixture
def s3() -> Any:
    return boto3.client("s3")


@pytest.fixture
def through(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``through(rule)``: from then on, stores opened go through a fault proxy with ``rule``."""
    proxies: list[Any] = []

    def start(rule: Rule) -> Any:
        proxy = fault_proxy(moto_server, rule)
        endpoint, faults = proxy.__enter__()
        proxies.append(proxy)
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        return faults

    yield start
    for proxy in proxies:
        proxy.__exit__(None, None, None)


def _until_complete(bucket: str, attempts: int = 3, **overrides: Any) -> tuple[PublishReport, int]:
    """Runs until one completes; a run may fail with a storage error (exit 1), never with a lock (exit 3)."""
    failures = 0
    for _ in range(attempts):
        try:
            return _run(bucket, "site", "state", **overrides), failures
        except StorageError:
            failures += 1
    raise AssertionError(f"no run completed in {attempts}")


@pytest.mark.parametrize(
    "fragment",
    ["/state/lock.json", "/state/catalog/seen/", "/state/catalog/windows.", "/state/catalog/head.json"],
    ids=["lock", "a-part", "the-windows", "the-head"],
)
def test_a_conditional_write_applied_then_answered_500_is_recognised_as_the_runs_own(
    s3: Any, s3_bucket: str, through: Any, fragment: str
) -> None:
    _corpus(s3, s3_bucket, 40)
    faults = through(once_for(fragment, "apply_then_500"))
    report = _run(s3_bucket, "site", "state")
    assert [action for action, _, _ in faults.faulted] == ["apply_then_500"]
    assert report.summaries_new == 40
    assert open_store(f"s3://{s3_bucket}/state").read("lock.json") is None, "the lease was released"
    # The state it committed is whole: the next run finds nothing new and writes nothing.
    again = _run(s3_bucket, "site", "state")
    assert (again.summaries_new, again.files_written) == (0, 0)


def test_a_run_completes_through_a_few_percent_of_faults_with_a_clean_builds_bytes(
    s3: Any, s3_bucket: str, through: Any
) -> None:
    _corpus(s3, s3_bucket, 300)
    clean = _run(s3_bucket, "clean-site", "clean-state")
    assert clean.summaries_new == 300

    # Writes are a sixth of a cold run's requests here: more of them fail, so that several do.
    faults = through(random_faults(seed=15, write_applied_then_500=0.08, refused=0.03))
    report, failures = _until_complete(s3_bucket)
    assert report.summaries_new == 300 or failures, report.summary_line()
    refused = faults.counts.get("refuse", 0) + faults.counts.get("drop", 0)
    assert faults.counts.get("apply_then_500", 0) >= 2 and refused >= 5, faults.counts
    assert _published(s3, s3_bucket, "site") == _published(s3, s3_bucket, "clean-site")

    # Incremental runs through the same faults: new summaries and an edit.
    _corpus(s3, s3_bucket, 30, first=300)
    edited = summary(90007, tags=["vqa"], title="Правка", published_at="2026-10-08T07:00:00Z")
    edited["updated_at"] = "2026-10-30T10:00:00Z"
    s3.put_object(Bucket=s3_bucket, Key="summaries/2026/10/08/7.json", Body=json.dumps(edited).encode())
    # A full scan: the new objects are in old day folders, which an hourly run does not list.
    _until_complete(s3_bucket, full_scan=True)
    through(lambda method, path: "pass")
    clean_again = _run(s3_bucket, "clean-site", "clean-state", full_scan=True)
    assert (clean_again.summaries_new, clean_again.summaries_updated) == (30, 1)
    assert _published(s3, s3_bucket, "site") == _published(s3, s3_bucket, "clean-site")
    nothing = _run(s3_bucket, "site", "state", full_scan=True)
    assert (nothing.summaries_new, nothing.summaries_updated, nothing.files_written) == (0, 0, 0)


def test_a_deleted_head_is_refused_until_a_rebuild(s3: Any, s3_bucket: str) -> None:
    _corpus(s3, s3_bucket, 20)
    _run(s3_bucket, "site", "state")
    s3.delete_object(Bucket=s3_bucket, Key="state/catalog/head.json")
    with pytest.raises(StorageError, match=r"catalog/head\.json is missing but its parts remain; .*--rebuild"):
        _run(s3_bucket, "site", "state")
    assert open_store(f"s3://{s3_bucket}/state").read("lock.json") is None
    assert _run(s3_bucket, "site", "state", rebuild=True).summaries_new == 20
    assert _run(s3_bucket, "site", "state").summaries_new == 0


def test_a_deletion_run_that_fails_before_its_commit_is_completed_by_the_next_with_a_clean_builds_bytes(
    s3: Any, s3_bucket: str, through: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _corpus(s3, s3_bucket, 60)
    _run(s3_bucket, "site", "state")
    before = _published(s3, s3_bucket, "site")
    gone = ["2026/10/05/4.json", "2026/10/17/16.json"]
    for key in gone:
        s3.delete_object(Bucket=s3_bucket, Key=f"summaries/{key}")
    # The head is never written: the run has changed the site (some files, perhaps
    # all) but not the state, as a function that reached its time limit would.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    faults = through(lambda method, path: "refuse" if method == "PUT" and path.endswith("/head.json") else "pass")
    with pytest.raises(StorageError):
        _run(s3_bucket, "site", "state", keys=tuple(gone))
    assert faults.counts.get("refuse", 0) >= 2
    assert _published(s3, s3_bucket, "site") != before, "the failed run had written feeds"
    assert open_store(f"s3://{s3_bucket}/state").read("lock.json") is None, "the lease was released"

    # The next run, through a few percent of faults, does the deletion again and completes.
    through(random_faults(seed=7, write_applied_then_500=0.08, refused=0.03))
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    report, failures = _until_complete(s3_bucket, keys=tuple(gone))
    assert report.summaries_deleted == 2 or failures, report.summary_line()

    through(lambda method, path: "pass")
    # A clean build that keeps each summary on the page the state gave it: a deletion leaves a gap, not a shift.
    for found in s3.list_objects_v2(Bucket=s3_bucket, Prefix="state/catalog/").get("Contents", []):
        copy = found["Key"].replace("state/", "clean-state/", 1)
        s3.copy_object(Bucket=s3_bucket, Key=copy, CopySource={"Bucket": s3_bucket, "Key": found["Key"]})
    clean = _run(s3_bucket, "clean-site", "clean-state", rebuild=True)
    assert clean.summaries_new == 58
    assert _published(s3, s3_bucket, "site") == _published(s3, s3_bucket, "clean-site")
    nothing = _run(s3_bucket, "site", "state", keys=tuple(gone))
    assert (nothing.summaries_deleted, nothing.files_written) == (0, 0)
