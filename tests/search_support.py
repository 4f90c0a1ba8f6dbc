"""Reading a published search index (a Pagefind bundle) back: its records, as its fragments hold them."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from typing import Any

from tests.conftest import summary

FRAGMENT_SIGNATURE = b"pagefind_dcd"


def index_records(paths: Iterable[str], read: Callable[[str], bytes]) -> list[dict[str, Any]]:
    """Every record of the bundle: ``paths`` of its files (under ``pagefind/``), ``read`` gets one's bytes."""
    records = []
    for path in paths:
        if path.endswith(".pf_fragment"):
            data = gzip.decompress(read(path))
            assert data.startswith(FRAGMENT_SIGNATURE), path
            records.append(json.loads(data[len(FRAGMENT_SIGNATURE) :]))
    return records


def found_titles(records: list[dict[str, Any]], word: str) -> set[str]:
    """The titles of the records whose words hold ``word`` (as written, not stemmed)."""
    return {record["meta"]["title"] for record in records if word in record["content"]}


def searched_summaries() -> dict[str, dict[str, Any]]:
    """Three Russian summaries with rare words to look for: one to find, one to edit, one to delete."""
    return {
        "found": summary(
            "2611.08001",
            title="Квазикристаллы в оценке мультимодальных моделей",
            summary="Авторы строят тест из **квазикристаллов** и проверяют, что модели видят симметрию.",
            tags=["mllm", "benchmark"],
            authors=["Ирина Лебедева"],
            published_at="2026-11-22T10:00:00+03:00",
        ),
        "edited": summary(
            "2611.08002",
            title="Гиперболоиды инженера Гарина как бенчмарк",
            summary="Набор задач о гиперболоидах вращения для проверки геометрии.",
            published_at="2026-11-22T10:05:00+03:00",
        ),
        "deleted": summary(
            "2611.08003",
            title="Метаматериалы и внимание",
            summary="Статья о метаматериалах, которую потом удалят.",
            published_at="2026-11-22T10:10:00+03:00",
        ),
    }


def edited_version(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` rewritten: its rare word replaced by another, with a later ``updated_at``."""
    return {
        **document,
        "title": "Эллипсоиды вместо прежней темы",
        "summary": "Набор задач об эллипсоидах вращения для проверки геометрии.",
        "updated_at": "2026-11-23T09:00:00+03:00",
    }
