"""What a summary gives the search index: plain words, its language, and the URL of its card."""

from __future__ import annotations

from datetime import UTC, datetime

from pytest import MonkeyPatch

from digestpub.model import Summary
from digestpub.publish import search
from digestpub.publish.search import SearchChanges, SearchRecords, SearchText, card_url, pagefind_record, search_text
from digestpub.site import Site, search_content_type
from tests.fakes import MemoryStore

SITE = Site(
    "Ай Дайджест", "", "ru", "https://aidigest.example/digest/", "https://aidigest.example/digest/", search=True
)


def _summary(**fields: object) -> Summary:
    values: dict[str, object] = {
        "id": "2611.00001",
        "title": "Трансформеры читают оси",
        "summary_markdown": "**Что сделали.** Модель <em>смотрит</em> на оси &amp; подписи.\n\n- пункт",
        "url": "https://arxiv.org/abs/2611.00001",
        "published_at": datetime(2026, 11, 20, 23, 30, tzinfo=UTC),
        "lang": "ru",
        "source_key": "2026/11/20/a.json",
        "tags": ("MLLM", "Оси"),
        "tag_slugs": ("mllm", "osi"),
        "authors": ("Анна Морозова",),
    }
    values.update(fields)
    return Summary(**values)  # type: ignore[arg-type]


def test_the_text_is_plain_words_and_the_language_is_the_summarys() -> None:
    text = search_text(SITE, _summary())
    assert text.text == "Что сделали. Модель смотрит на оси & подписи. пункт"
    assert text.lang == "ru"
    assert text.date == "2026-11-20"
    assert search_text(SITE, _summary(lang="en-GB")).lang == "en"


def test_the_date_is_the_sites_own() -> None:
    site = Site("t", "", "ru", SITE.base_url, SITE.base_url, timezone="Europe/Moscow")
    assert search_text(site, _summary()).date == "2026-11-21"


def test_a_record_holds_title_text_tags_and_authors_and_links_its_card() -> None:
    summary = _summary()
    record = pagefind_record(SITE, summary.id, 3, search_text(SITE, summary))
    assert record.url == f"/digest/archive/3/#{SITE.card_anchor(summary.id)}"
    for words in ("Трансформеры читают оси", "смотрит", "MLLM", "Оси", "Анна Морозова"):
        assert words in record.content
    assert "<" not in record.content
    assert record.language == "ru"
    assert record.meta == {"title": "Трансформеры читают оси", "date": "2026-11-20", "tags": "MLLM, Оси"}


def test_the_card_url_is_the_page_of_everything_with_a_stable_anchor() -> None:
    anchor = SITE.card_anchor("2611.00001")
    assert anchor == SITE.card_anchor("2611.00001") != SITE.card_anchor("2611.00002")
    assert anchor.startswith("s-") and len(anchor) == 18
    assert card_url(SITE, "2611.00001", 1) == f"/digest/archive/1/#{anchor}"


def test_content_types_of_the_bundle() -> None:
    assert search_content_type("pagefind.js") == "text/javascript; charset=utf-8"
    assert search_content_type("wasm.ru.pagefind") == "application/wasm"
    assert search_content_type("fragment/ru_1a2b.pf_fragment") == "application/octet-stream"
    assert search_content_type("index/ru_1a2b.pf_index") == "application/octet-stream"
    assert search_content_type("pagefind.ru_1a2b.pf_meta") == "application/octet-stream"
    assert search_content_type("pagefind-entry.json") == "application/json"


def _text(title: str) -> SearchText:
    return SearchText(title, "слова", "ru", "2026-11-20", (), ())


def test_a_group_is_stale_when_its_shards_change_and_gone_when_they_are_empty(monkeypatch: MonkeyPatch) -> None:
    monkeypatch.setattr(search, "_SHARD_POSITIONS", 5)
    monkeypatch.setattr(search, "_GROUP_SHARDS", 2)
    state = MemoryStore()
    records = SearchRecords(state)
    records.apply(SearchChanges({f"id{place}": (place, _text(f"t{place}")) for place in range(23)}))
    assert sorted(records.shards) == ["00000", "00001", "00002", "00003", "00004"]
    generations = records.generations()
    assert sorted(generations) == ["00000", "00001", "00002"]
    assert records.stale() == generations
    for group, generation in generations.items():
        records.mark_built(group, {"built": generation, "files": {}, "languages": {"ru": 1}})
    assert SearchRecords(state).stale() == {}

    # An edit in the oldest group, a new summary in the newest: only those two are out of date.
    again = SearchRecords(state)
    again.apply(SearchChanges({"id3": (3, _text("правка")), "id23": (23, _text("новая"))}))
    assert sorted(again.stale()) == ["00000", "00002"]
    assert "правка" in {text.title for _, _, text in again.of_group("00000")}

    # Every summary of the middle group deleted: its bundle is to go.
    again.apply(SearchChanges(gone={f"id{place}": place for place in range(10, 20)}))
    assert again.stale()["00001"] is None
