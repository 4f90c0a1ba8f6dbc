"""``publish.plan`` decides deletions and moves: pure functions over what the state recorded."""

from __future__ import annotations

from digestpub.model import SummaryRef
from digestpub.publish.plan import holdings, lost_ids, merge
from digestpub.site import ALL_FEED
from digestpub.state.parts import IdEntry

V1, V2 = "2026-11-20T08:00:00.000000+00:00", "2026-11-22T08:00:00.000000+00:00"


def _ref(summary_id: str, key: str, version: str = V1, digest: str = "d1", line: int | None = None) -> SummaryRef:
    return SummaryRef(summary_id, version, V1, digest, key, line, ("MLLM",), ("mllm",))


def _entry(key: str, version: str = V1, digest: str = "d1", slugs: tuple[str, ...] = ("mllm",)) -> IdEntry:
    return IdEntry(version, key, digest, list(slugs), list(range(1 + len(slugs))))


def test_an_id_lost_by_the_key_it_was_published_from_is_removed_everywhere() -> None:
    recorded = {"a": _entry("2026/11/20/a.json", slugs=("mllm", "vqa"))}

    changes = merge([], recorded.get, {"2026/11/20/a.json": {"a"}})

    assert changes.deleted == ["a"] and changes.accepted == []
    assert changes.removals == {ALL_FEED: {"a"}, "mllm": {"a"}, "vqa": {"a"}}
    assert changes.earlier == recorded, "its pages are found from where the state placed it"
    assert changes.tag_counts == {"mllm": -1, "vqa": -1}


def test_an_id_lost_by_a_key_that_held_only_a_copy_stays() -> None:
    recorded = {"a": _entry("2026/11/22/a-edit.json", version=V2)}

    changes = merge([], recorded.get, {"2026/11/20/a.json": {"a"}, "2026/11/21/never.json": {"b"}})

    assert (changes.deleted, changes.inserts, changes.tag_counts) == ([], {}, {})


def test_an_id_read_under_another_key_moved_even_in_the_same_version() -> None:
    recorded = {"a": _entry("2026/11/20/a.json")}
    moved = _ref("a", "2026/11/23/a.json")

    changes = merge([moved], recorded.get, {"2026/11/20/a.json": {"a"}})
    stayed = merge([moved], recorded.get, {})

    assert (changes.deleted, changes.accepted, changes.change_of, changes.duplicates) == (
        [],
        [moved],
        {"a": "updated"},
        [],
    )
    assert changes.tag_counts == {}, "the same tags: no count changes"
    assert [problem.reason[:16] for problem in stayed.duplicates] == ["duplicate id 'a'"], "both keys hold it"


def test_holdings_and_lost_ids() -> None:
    refs = [_ref("a", "k.jsonl", line=1), _ref("b", "k.jsonl", line=2), _ref("a", "k.jsonl", line=3)]

    assert holdings(refs) == {"k.jsonl": ["a", "b"]}
    assert lost_ids(["a", "b", "c"], ["a", "b"], whole=True) == {"c"}
    assert lost_ids(["a", "b", "c"], ["a"], whole=False) == set()
