"""A seeded synthetic corpus of summaries, shaped like the digest's own."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

_WORDS = [
    "модель",
    "обучение",
    "данные",
    "мультимодальный",
    "агент",
    "оценка",
    "бенчмарк",
    "внимание",
    "трансформер",
    "эксперт",
    "маршрутизация",
    "токен",
    "контекст",
    "видео",
    "изображение",
    "текст",
    "вывод",
    "рассуждение",
    "дистилляция",
    "квантизация",
    "память",
    "скорость",
    "точность",
    "задача",
    "метод",
    "результат",
]


def _paragraph(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def summary_document(rng: random.Random, number: int, tags: list[str], moment: datetime) -> dict[str, object]:
    summary_id = f"2611.{number:05d}"
    text = (
        f"**Что сделали.** {_paragraph(rng, 40)}\n\n"
        f"- {_paragraph(rng, 12)}\n- {_paragraph(rng, 12)}\n- {_paragraph(rng, 10)}\n\n"
        f"{_paragraph(rng, 50)} [Код](https://github.com/example/{number})."
    )
    return {
        "id": summary_id,
        "title": f"{_paragraph(rng, 8)} ({number})",
        "summary": text,
        "tags": tags,
        "url": f"https://aidigest.example/papers/{summary_id}",
        "published_at": moment.isoformat(),
        "authors": ["A. Author", "B. Author"],
        "paper_url": f"https://arxiv.org/abs/{summary_id}",
    }


def zipf_tags(rng: random.Random, tag_count: int) -> tuple[list[str], list[float]]:
    names = [f"tag{index:03d}" for index in range(tag_count)]
    weights = [1.0 / (rank + 1) for rank in range(tag_count)]
    return names, weights


def write_corpus(
    folder: Path,
    count: int,
    tag_count: int,
    *,
    seed: int = 7,
    start_number: int = 0,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    per_day: int = 150,
    rows_every: int = 100,
) -> None:
    """``count`` summaries, ``per_day`` a day from ``start``: one ``.json`` object each, as the
    digest's pipeline writes them, except every ``rows_every``-th, which is a row of its
    day's ``.jsonl`` batch, so that both layouts of the contract are read."""
    rng = random.Random(seed + start_number)
    names, weights = zipf_tags(rng, tag_count)
    rows: dict[Path, list[str]] = {}
    for offset in range(count):
        number = start_number + offset
        moment = start + timedelta(days=number // per_day, minutes=number % per_day)
        tags = sorted(set(rng.choices(names, weights, k=rng.randint(1, 4))))
        text = json.dumps(summary_document(rng, number, tags, moment), ensure_ascii=False)
        day = folder / moment.strftime("%Y/%m/%d")
        if number % rows_every == rows_every - 1:
            rows.setdefault(day / f"batch-{start_number:06d}.jsonl", []).append(text)
            continue
        day.mkdir(parents=True, exist_ok=True)
        (day / f"{number:06d}.json").write_text(text, encoding="utf-8")
    for path, lines in rows.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
