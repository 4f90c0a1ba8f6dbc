"""The combined feed's rules: which tags a request names, which items the union keeps, and the refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from digestpub.errors import BadRequest, StorageError
from digestpub.publish.combined import CombinedFeeds, UnknownFeedTags, newest_items, requested_slugs
from digestpub.settings import Settings
from digestpub.subscriptions.endpoints import Endpoints
from tests.fakes import MemoryStore

SITE = Settings.load(base_url="https://digest.example/", api_url="https://api.digest.example/", feed_size=3).site()


def _item(number: int, day: int, *, modified: str = "", tags: tuple[str, ...] = ("mllm",)) -> dict[str, Any]:
    published = f"2026-11-{day:02d}T10:00:00+03:00"
    return {
        "id": f"tag:digest.example,2026:summary/{number}",
        "title": f"Статья {number}",
        "content_html": f"<p>{number}</p>",
        "date_published": published,
        "date_modified": modified or published,
        "tags": list(tags),
    }


def _ids(chosen: list[Any]) -> list[str]:
    return [entry.item["id"].rpartition("/")[2] for entry in chosen]


def test_tags_come_comma_separated_repeated_or_both_as_slugs_or_names() -> None:
    assert requested_slugs(["vqa,MLLM", "Мультимодальность", " vqa "]) == {
        "mllm": "MLLM",
        "multimodalnost": "Мультимодальность",
        "vqa": "vqa",
    }


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([], "at least one tag"),
        ([" , ,"], "at least one tag"),
        ([",".join(f"t{number}" for number in range(21))], "21 tags: a feed follows at most 20"),
        (["x" * 101], "longer than 100 characters"),
    ],
)
def test_a_request_with_no_tag_too_many_or_an_overlong_one_is_refused(values: list[str], reason: str) -> None:
    with pytest.raises(BadRequest, match=reason) as refused:
        requested_slugs(values)
    assert refused.value.status == 400


def test_twenty_tags_are_enough() -> None:
    assert len(requested_slugs([",".join(f"t{number}" for number in range(20))])) == 20


def test_the_union_keeps_the_newest_items_each_once_in_its_newest_version() -> None:
    feeds = {
        "mllm": [_item(5, 25), _item(4, 24), _item(2, 22, modified="2026-11-23T09:00:00+03:00"), _item(1, 21)],
        "vqa": [_item(4, 24), _item(3, 23), _item(2, 22, modified="2026-11-28T09:00:00+03:00")],
    }
    chosen = newest_items(feeds, 4)
    assert _ids(chosen) == ["5", "4", "3", "2"]  # by date_published: the edit of 2 does not move it up
    two = chosen[-1]
    assert two.item["date_modified"] == "2026-11-28T09:00:00+03:00"
    assert two.holders == ("vqa", "mllm")  # its newest version's feed is read first
    assert chosen[1].holders == ("mllm", "vqa")


def test_offsets_are_compared_as_moments_not_as_text() -> None:
    early = _item(1, 20) | {"date_published": "2026-11-20T23:30:00-05:00"}  # 04:30 UTC on the 21st
    late = _item(2, 21) | {"date_published": "2026-11-21T06:00:00+03:00"}  # 03:00 UTC on the 21st
    assert _ids(newest_items({"mllm": [late, early]}, 2)) == ["1", "2"]


def _published(store: MemoryStore, slug: str, items: list[dict[str, Any]]) -> None:
    document = {"version": "https://jsonfeed.org/version/1.1", "title": slug, "items": items}
    store.put(f"feeds/tags/{slug}/feed.json", json.dumps(document).encode())


def _atom(items: list[dict[str, Any]]) -> bytes:
    entries = "".join(
        f"<entry><id>{item['id']}</id><title>{item['title']}</title><updated>{item['date_modified']}</updated></entry>"
        for item in items
    )
    return f'<feed xmlns="http://www.w3.org/2005/Atom">{entries}</feed>'.encode()


def test_unknown_tags_and_formats_are_refused_by_name() -> None:
    store = MemoryStore()
    _published(store, "mllm", [_item(1, 21)])
    feeds = CombinedFeeds(store, SITE, "public, max-age=60")
    with pytest.raises(UnknownFeedTags) as unknown:
        feeds.build(["mllm,Nope", "???"], "atom")
    assert unknown.value.tags == ["???", "Nope"] and unknown.value.status == 400
    with pytest.raises(BadRequest, match="unknown format 'html'"):
        feeds.build(["mllm"], "html")


def test_an_entry_a_newer_run_took_out_of_the_document_is_left_out_not_invented(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    items = [_item(2, 22), _item(1, 21)]
    _published(store, "mllm", items)
    store.put("feeds/tags/mllm/atom.xml", _atom(items[1:]))  # rewritten between the two reads
    body = CombinedFeeds(store, SITE, "").build(["mllm"], "atom").body.decode()
    assert "summary/1<" in body and "summary/2<" not in body
    assert "summary/2 is in no atom document" in caplog.text


def _feed_request(query: str) -> dict[str, Any]:
    """The HTTP API (payload 2.0) event of ``GET /feed?query``, as little of it as the endpoints read."""
    return {
        "version": "2.0",
        "rawPath": "/feed",
        "rawQueryString": query,
        "headers": {},
        "requestContext": {"http": {"method": "GET", "path": "/feed"}},
    }


def test_an_entry_lost_by_its_newest_feed_is_cut_from_another_feed_that_holds_it() -> None:
    store = MemoryStore()
    shared = _item(1, 21, tags=("mllm", "vqa"))
    _published(store, "mllm", [shared])
    _published(store, "vqa", [shared])
    store.put("feeds/tags/mllm/atom.xml", _atom([]))
    store.put("feeds/tags/vqa/atom.xml", _atom([shared]))
    body = CombinedFeeds(store, SITE, "").build(["mllm,vqa"], "atom").body.decode()
    assert body.count("summary/1</id>") == 1


def test_tags_with_no_summary_left_give_an_empty_valid_feed() -> None:
    store = MemoryStore()
    _published(store, "mllm", [])
    for kind in ("atom", "rss", "json"):
        built = CombinedFeeds(store, SITE, "").build(["mllm"], kind)
        assert b"summary/" not in built.body, kind
    assert json.loads(CombinedFeeds(store, SITE, "").build(["mllm"], "json").body)["items"] == []


def test_a_damaged_tag_feed_is_a_storage_error_and_the_endpoint_answers_503() -> None:
    store = MemoryStore()
    store.put("feeds/tags/mllm/feed.json", b"{not json")
    with pytest.raises(StorageError):
        CombinedFeeds(store, SITE, "").build(["mllm"], "json")
    endpoints = Endpoints(
        lambda: pytest.fail("no subscription use case is needed"), SITE, lambda: CombinedFeeds(store, SITE, "")
    )
    assert endpoints.handle(_feed_request("tags=mllm&format=json"))["statusCode"] == 503


def test_without_feeds_the_endpoint_is_not_there() -> None:
    endpoints = Endpoints(lambda: pytest.fail("unused"), SITE)
    assert endpoints.handle(_feed_request("tags=mllm"))["statusCode"] == 404
