"""Unit tests of ``SummaryReader.read_object``: bytes in, summaries and problems out."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from digestpub.model import Problem, Summary
from digestpub.publish.ingest import SummaryReader
from tests.conftest import summary

KEY = "2026/11/20/paper.json"
JSONL = "2026/11/20/batch.jsonl"
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def doc(summary_id: str = "2611.00001", **fields: Any) -> dict[str, Any]:
    """A valid summary (``fields`` override; None removes a field)."""
    base = {
        "id": summary_id,
        "title": f"Статья {summary_id}",
        "url": f"https://aidigest.example/papers/{summary_id}",
        "published_at": "2026-11-20T10:00:00+03:00",
    }
    return summary(1, **{**base, **fields})


def encode(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def jsonl(*lines: Any, end: bytes = b"\n", sep: bytes = b"\n") -> bytes:
    out = []
    for line in lines:
        if isinstance(line, bytes):
            out.append(line)
        elif isinstance(line, str):
            out.append(line.encode())
        else:
            out.append(encode(line))
    return sep.join(out) + end


def read(data: bytes, key: str = KEY, **reader: Any) -> tuple[list[Summary], list[Problem]]:
    records = list(SummaryReader(**reader).read_object(key, data))
    summaries = [record for record in records if isinstance(record, Summary)]
    problems = [record for record in records if isinstance(record, Problem)]
    assert len(summaries) + len(problems) == len(records)
    return summaries, problems


def read_one(document: Any, **reader: Any) -> tuple[Summary, list[Problem]]:
    summaries, problems = read(encode(document), **reader)
    assert len(summaries) == 1, problems
    return summaries[0], problems


def skipped(document: Any, key: str = KEY) -> Problem:
    data = document if isinstance(document, bytes) else encode(document)
    summaries, problems = read(data, key)
    assert summaries == []
    assert len(problems) == 1, problems
    assert problems[0].outcome == "skipped"
    assert problems[0].key == key
    return problems[0]


# --- a valid summary ---------------------------------------------------------------


def test_valid_summary_is_read_with_every_field() -> None:
    document = doc(
        "2611.00042",
        title="  Мультимодальные   модели  ",
        summary="**Что сделали.** Текст.\n\n- пункт",
        tags=["MLLM", "Мультимодальность"],
        updated_at="2026-11-21T09:30:00Z",
        lang="en",
        authors=["Анна Иванова", "  ", "Bob"],
        paper_url="https://arxiv.org/abs/2611.00042",
        code_url="https://github.com/example/repo",
        image_url="https://aidigest.example/img/1.png",
        unknown_field={"nested": [1, 2]},
    )
    record, problems = read_one(document)
    assert problems == []
    assert record.id == "2611.00042"
    assert record.title == "Мультимодальные модели"
    assert "<strong>Что сделали.</strong>" in record.summary_html
    assert "<li>пункт</li>" in record.summary_html
    assert record.tags == ("MLLM", "Мультимодальность")
    assert record.tag_slugs == ("mllm", "multimodalnost")
    assert record.url == "https://aidigest.example/papers/2611.00042"
    assert record.published_at == datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    assert record.published_at.utcoffset() == timedelta(hours=3)
    assert record.updated_at == datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    assert record.version == record.updated_at
    assert record.lang == "en"
    assert record.authors == ("Анна Иванова", "Bob")
    assert record.paper_url == "https://arxiv.org/abs/2611.00042"
    assert record.code_url == "https://github.com/example/repo"
    assert record.image_url == "https://aidigest.example/img/1.png"
    assert record.source_key == KEY
    assert record.source_line is None
    assert record.digest


def test_defaults_for_optional_fields() -> None:
    record, problems = read_one(doc(tags=None))
    assert problems == []
    assert record.tags == () and record.tag_slugs == ()
    assert record.lang == "ru"
    assert record.updated_at is None
    assert record.version == record.published_at
    assert record.authors == ()
    assert record.paper_url is None and record.code_url is None and record.image_url is None


def test_default_language_comes_from_the_reader() -> None:
    record, _ = read_one(doc(), default_lang="en")
    assert record.lang == "en"


def test_optional_fields_may_be_null() -> None:
    record, problems = read_one(
        doc(updated_at=None, lang=None) | {"authors": None, "paper_url": None, "updated_at": None}
    )
    assert problems == []
    assert record.updated_at is None and record.authors == () and record.paper_url is None


def test_digest_tells_new_text_from_a_reread() -> None:
    first, _ = read_one(doc())
    again, _ = read_one(doc())
    edited, _ = read_one(doc(title="Новый заголовок"))
    assert first.digest == again.digest
    assert first.digest != edited.digest


def test_tags_are_deduplicated_case_insensitively_and_shown_as_first_written() -> None:
    record, problems = read_one(doc(tags=["MLLM", "mllm", " Mllm ", "RL"]))
    assert problems == []
    assert record.tags == ("MLLM", "RL")
    assert record.tag_slugs == ("mllm", "rl")


def test_tricky_tags_get_safe_slugs_and_keep_their_names() -> None:
    record, problems = read_one(doc(tags=["../../x", "a/b", "with space", "Мультимодальность"]))
    assert problems == []
    assert record.tags == ("../../x", "a/b", "with space", "Мультимодальность")
    assert record.tag_slugs == ("x", "a-b", "with-space", "multimodalnost")


def test_updated_at_equal_to_published_at_is_fine() -> None:
    record, problems = read_one(doc(updated_at="2026-11-20T07:00:00Z"))
    assert problems == []
    assert record.version == record.published_at


# --- keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "README.md",
        "2026/11/x.json",
        "2026/x.json",
        "x.json",
        "2026/11/20/nested/x.json",
        "prefix/2026/11/20/x.json",
        "2026/11/20/x.txt",
        "2026/11/20/x.json.bak",
        "2026/11/20/x.JSON",
        "2026/11/20/.json",
        "26/11/20/x.json",
        "2026/11/20.json",
    ],
)
def test_keys_that_are_not_summaries_yield_nothing(key: str) -> None:
    # Not even a problem, however bad the bytes.
    assert list(SummaryReader().read_object(key, b"\xff{not json")) == []
    assert list(SummaryReader().read_object(key, encode(doc()))) == []


@pytest.mark.parametrize("key", ["2026/11/20/a.json", "2026/01/02/2611.00001v2.json", "2026/11/20/with space.json"])
def test_summary_keys_are_read(key: str) -> None:
    summaries, problems = read(encode(doc()), key)
    assert problems == [] and len(summaries) == 1
    assert summaries[0].source_key == key


# --- skipped: one row per rule ----------------------------------------------------------

SKIPPED: list[Any] = [
    pytest.param(b'{"id": "x", "title": ', ("invalid json",), id="truncated-json"),
    pytest.param(b"", ("invalid json",), id="empty-object"),
    pytest.param(b"{'id': 'x'}", ("invalid json",), id="single-quotes"),
    pytest.param(encode(doc()) + b"\n{}", ("invalid json",), id="two-documents-in-json"),
    pytest.param(b'{"id": "x", "title": "a\x01b"}', ("invalid json",), id="raw-control-character"),
    pytest.param(b"NaN", ("object",), id="nan"),
    pytest.param(b"[1, 2]", ("object", "list"), id="list"),
    pytest.param(b'"a string"', ("object", "str"), id="string"),
    pytest.param(b"42", ("object", "int"), id="number"),
    pytest.param(b"null", ("object",), id="null"),
    pytest.param(b"true", ("object",), id="bool"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, ("json",), id="deeply-nested"),
    pytest.param(b'{"id": "\xff\xfe"}', ("utf-8",), id="not-utf8"),
    pytest.param("Статья".encode("cp1251"), ("utf-8",), id="cp1251"),
    pytest.param(encode(doc()).decode().encode("utf-16"), ("utf-8",), id="utf-16"),
    *[
        pytest.param(encode(doc(**{name: None})), (name, "required"), id=f"missing-{name}")
        for name in ("id", "title", "summary", "url", "published_at")
    ],
    pytest.param(encode(doc(id="")), ("id",), id="empty-id"),
    pytest.param(encode(doc(id="   ")), ("id", "blank"), id="blank-id"),
    pytest.param(encode(doc(id="x" * 201)), ("id",), id="id-too-long"),
    pytest.param(encode(doc(id=2611)), ("id", "string"), id="id-number"),
    pytest.param(encode(doc(title="")), ("title",), id="empty-title"),
    pytest.param(encode(doc(title="  \n\t ")), ("title",), id="blank-title"),
    pytest.param(encode(doc(title="<b></b><script>x</script>")), ("title",), id="title-only-markup"),
    pytest.param(encode(doc(title=2611)), ("title", "string"), id="title-number"),
    pytest.param(encode(doc(title=["a"])), ("title",), id="title-list"),
    pytest.param(encode(doc(summary="")), ("summary",), id="empty-summary"),
    pytest.param(encode(doc(summary={"text": "x"})), ("summary",), id="summary-object"),
    pytest.param(encode(doc(tags="mllm")), ("tags", "list"), id="tags-string"),
    pytest.param(encode(doc(tags=["ok", 5])), ("tags",), id="tag-number"),
    pytest.param(encode(doc(tags=[f"t{i}" for i in range(21)])), ("tags", "20"), id="21-tags"),
    pytest.param(encode(doc(tags=[f"t{i}" for i in range(100)])), ("tags", "20"), id="100-tags"),
    pytest.param(encode(doc(authors="Иван Петров")), ("authors", "list"), id="authors-string"),
    pytest.param(encode(doc(authors=["a", None])), ("authors",), id="author-null"),
    pytest.param(encode(doc(url=5)), ("url",), id="url-number"),
    pytest.param(encode(doc(published_at=1763622000)), ("published_at",), id="published-at-number"),
    pytest.param(encode(doc(published_at="2026-11-20T10:00:00")), ("published_at", "offset"), id="naive-datetime"),
    pytest.param(encode(doc(published_at="2026-11-20")), ("published_at",), id="date-only"),
    pytest.param(encode(doc(published_at="20 Nov 2026")), ("published_at", "rfc 3339"), id="not-rfc3339"),
    pytest.param(
        encode(doc(published_at="Fri, 20 Nov 2026 10:00:00 +0300")),
        ("published_at", "rfc 3339"),
        id="rfc2822",
    ),
    pytest.param(encode(doc(published_at="2026-11-31T10:00:00+03:00")), ("published_at",), id="impossible-date"),
    pytest.param(encode(doc(published_at="")), ("published_at",), id="empty-published-at"),
    pytest.param(encode(doc(updated_at="2026-11-21T10:00:00")), ("updated_at", "offset"), id="naive-updated-at"),
    pytest.param(encode(doc(updated_at="tomorrow")), ("updated_at",), id="bad-updated-at"),
    pytest.param(
        encode(doc(updated_at="2026-11-19T10:00:00+03:00")),
        ("updated_at", "earlier"),
        id="updated-before-published",
    ),
    pytest.param(
        encode(doc(updated_at="2026-11-20T09:59:59+03:00")),
        ("updated_at", "earlier"),
        id="updated-a-second-early",
    ),
    pytest.param(encode(doc(lang="русский")), ("lang",), id="lang-not-bcp47"),
    pytest.param(encode(doc(lang="")), ("lang",), id="lang-empty"),
    pytest.param(encode(doc(summary="очень длинно " * 90_000)), ("summary", "limit"), id="2mb-summary"),
    *[
        pytest.param(encode(doc(**{name: value})), (name,), id=f"{name}-{label}")
        for name in ("url", "paper_url", "code_url", "image_url")
        for label, value in {
            "javascript": "javascript:alert(1)",
            "data": "data:text/html,<script>alert(1)</script>",
            "relative": "/papers/2611.00001",
            "ftp": "ftp://aidigest.example/x",
            "no-host": "https://",
            "spaces": "https://aidigest.example/with space",
            "no-scheme": "aidigest.example/papers/x",
        }.items()
    ],
]


@pytest.mark.parametrize(("data", "words"), SKIPPED)
def test_bad_object_is_skipped_with_a_reason(data: bytes, words: tuple[str, ...]) -> None:
    problem = skipped(data)
    assert problem.line is None
    reason = problem.reason.lower()
    for word in words:
        assert word in reason, problem.reason


def test_not_utf8_reason_names_the_byte() -> None:
    problem = skipped(b'{"id": "\xff"}')
    assert "0xff" in problem.reason
    assert "byte 8" in problem.reason


def test_invalid_json_reason_says_where() -> None:
    problem = skipped(b'{\n  "id": "x",\n  "title": oops\n}')
    assert "line 3" in problem.reason


def test_several_broken_rules_are_all_named() -> None:
    problem = skipped(doc(title=5, tags="x", url=None))
    for name in ("title", "tags", "url"):
        assert name in problem.reason


def test_summary_size_limit_is_configurable_and_counts_bytes() -> None:
    reader = {"max_summary_bytes": 1_024}
    at_limit = "я" * 512  # 1,024 bytes in UTF-8
    summaries, problems = read(encode(doc(summary=at_limit)), **reader)
    assert len(summaries) == 1 and problems == []
    summaries, problems = read(encode(doc(summary=at_limit + "x")), **reader)
    assert summaries == []
    assert [problem.outcome for problem in problems] == ["skipped"]
    assert "1,025" in problems[0].reason and "1,024" in problems[0].reason


def test_twenty_tags_and_a_200_character_id_are_allowed() -> None:
    record, problems = read_one(doc("x" * 200, tags=[f"t{i}" for i in range(20)]))
    assert problems == []
    assert len(record.tags) == 20


# --- timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T10:00:00+03:00", datetime(2026, 11, 20, 7, tzinfo=UTC)),
        ("2026-11-20T07:00:00Z", datetime(2026, 11, 20, 7, tzinfo=UTC)),
        ("2026-11-20T07:00:00+00:00", datetime(2026, 11, 20, 7, tzinfo=UTC)),
        ("2026-11-20T07:00:00.123456Z", datetime(2026, 11, 20, 7, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-20T02:00:00-05:00", datetime(2026, 11, 20, 7, tzinfo=UTC)),
        ("2026-11-20 10:00:00+03:00", datetime(2026, 11, 20, 7, tzinfo=UTC)),  # RFC 3339 §5.6 note
        (
            "2026-11-20t07:00:00z",
            datetime(2026, 11, 20, 7, tzinfo=UTC),
        ),  # RFC 3339 §5.6 note: case-insensitive
    ],
)
def test_rfc3339_timestamps_are_accepted(value: str, expected: datetime) -> None:
    record, problems = read_one(doc(published_at=value))
    assert problems == []
    assert record.published_at == expected
    assert record.published_at.tzinfo is not None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-11-20T10:00:00", id="naive"),
        pytest.param("2026-11-20", id="date-only"),
        pytest.param("10:00:00+03:00", id="time-only"),
        pytest.param("2026-11-20T10:00:00 +03:00", id="space-before-offset"),
        pytest.param("20261120T100000+0300", id="iso-basic-format"),
        pytest.param("2026-W47-5T10:00:00+03:00", id="iso-week-date"),
        pytest.param("2026-324T10:00:00+03:00", id="iso-ordinal-date"),
        pytest.param("2026-11-20T10:00+03:00", id="no-seconds"),
        pytest.param("2026-11-20T10+03:00", id="hour-only"),
        pytest.param("2026-11-20T10:00:00+0300", id="offset-without-colon"),
        pytest.param("Fri, 20 Nov 2026 10:00:00 +0300", id="rfc2822"),
        pytest.param("1763622000", id="epoch"),
    ],
)
def test_timestamps_that_are_not_rfc3339_are_skipped(value: str) -> None:
    problem = skipped(doc(published_at=value))
    assert "published_at" in problem.reason


# --- cleaned: published, with a report ------------------------------------------------------


def cleaned(data: bytes) -> tuple[Summary, list[Problem]]:
    summaries, problems = read(data)
    assert len(summaries) == 1, problems
    assert problems, "nothing was reported"
    assert all(problem.outcome == "cleaned" for problem in problems), problems
    assert all(problem.key == KEY and problem.line is None for problem in problems)
    return summaries[0], problems


def _assert_xml_safe(record: Summary) -> None:
    for text in (record.id, record.title, record.summary_html, *record.tags, *record.authors):
        assert _XML_FORBIDDEN.search(text) is None, repr(text)
        text.encode("utf-8")


def test_xml_forbidden_characters_are_removed_and_reported() -> None:
    record, problems = cleaned(
        encode(
            doc(
                "id\u0000-1",
                title="Нулевой\u0000 символ\u000b в заголовке",
                summary="Вертикальная\u000b табуляция\u0000 и \u001f прочее",
                tags=["ml\u0008lm"],
                authors=["Ann\u000c"],
            )
        )
    )
    assert record.id == "id-1"
    assert record.title == "Нулевой символ в заголовке"
    assert "Вертикальная табуляция" in record.summary_html
    assert record.tags == ("mllm",)
    assert record.authors == ("Ann",)
    assert "xml" in problems[0].reason.lower()
    _assert_xml_safe(record)


def test_lone_surrogates_are_replaced_and_reported() -> None:
    data = (
        encode(doc())
        .replace(b'"title": "', b'"title": "\\ud800 half ')
        .replace(b'"summary": "', b'"summary": "\\udfff ')
    )
    record, problems = cleaned(data)
    assert "half" in record.title
    assert "surrogate" in problems[0].reason
    _assert_xml_safe(record)


def test_a_surrogate_pair_escape_is_a_character_not_a_problem() -> None:
    data = encode(doc()).replace(b'"title": "', b'"title": "\\ud83d\\ude00 ')
    summaries, problems = read(data)
    assert problems == []
    assert summaries[0].title.startswith("😀 ")


def test_id_made_only_of_forbidden_characters_is_skipped() -> None:
    summaries, problems = read(encode(doc("\u0000\u0001")))
    assert summaries == []
    assert "skipped" in [problem.outcome for problem in problems]


def test_bom_is_removed_and_reported() -> None:
    record, problems = cleaned(b"\xef\xbb\xbf" + encode(doc()))
    assert record.id == "2611.00001"
    assert ["byte order mark" in problem.reason for problem in problems] == [True]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("title", "<script>alert(1)</script>Заголовок", id="title-script"),
        pytest.param("title", '<img src=x onerror="alert(1)">Заголовок', id="title-onerror"),
        pytest.param("title", '<a href="javascript:alert(1)">Заголовок</a>', id="title-javascript"),
        pytest.param("summary", "Текст <script>alert(1)</script>", id="summary-script"),
        pytest.param("summary", 'Текст <img src="x" onerror="alert(1)">', id="summary-onerror"),
        pytest.param("summary", "Текст [ссылка](javascript:alert(1))", id="summary-md-javascript"),
        pytest.param("summary", '<a href="javascript:alert(1)">Текст</a>', id="summary-html-javascript"),
        pytest.param("summary", "[Текст](data:text/html;base64,PHNjcmlwdD4=)", id="summary-data"),
        pytest.param("summary", "Текст <iframe src='https://evil.example/'></iframe>", id="summary-iframe"),
        pytest.param("summary", '<p onclick="alert(1)">Текст</p>', id="summary-onclick"),
        # No "<" or "&" at all: only the scheme tells, in any case.
        pytest.param("summary", "Текст [ссылка](JavaScript:alert(1))", id="summary-md-javascript-mixed-case"),
        pytest.param("summary", "[Текст](DATA:text/html;base64,PHNjcmlwdD4=)", id="summary-data-upper-case"),
        pytest.param("title", "[Заголовок](VBScript:msgbox(1))", id="title-md-vbscript"),
    ],
)
def test_unsafe_markup_is_removed_and_reported(field: str, value: str) -> None:
    record, problems = cleaned(encode(doc(**{field: value})))
    assert any("unsafe" in problem.reason for problem in problems), problems
    for text in (record.title, record.summary_html):
        lowered = text.lower()
        for unsafe in ("<script", "onerror", "onclick", "javascript:", "data:", "<iframe", "alert("):
            assert unsafe not in lowered, text
    assert ("Заголовок" in record.title) if field == "title" else ("Текст" in record.summary_html)


def test_unsafe_markup_spelled_in_json_escapes_is_reported() -> None:
    # The raw bytes hold no "<" and no "script": every letter of the markup is a \u escape.
    escaped = "".join(f"\\u{ord(character):04x}" for character in "<script>alert(1)</script>")
    data = encode(doc()).replace(b'"summary": "', f'"summary": "{escaped}'.encode())
    record, problems = cleaned(data)
    assert "<script" not in record.summary_html
    assert any("unsafe" in problem.reason for problem in problems), problems


def test_emoji_only_tag_is_dropped_and_reported() -> None:
    record, problems = cleaned(encode(doc(tags=["🔥", "mllm", "...", "🚀🚀"])))
    assert record.tags == ("mllm",)
    assert record.tag_slugs == ("mllm",)
    assert len(problems) == 3
    assert all("tag" in problem.reason for problem in problems)


def test_cleaned_problems_come_before_their_summary() -> None:
    records = list(SummaryReader().read_object(KEY, b"\xef\xbb\xbf" + encode(doc(tags=["🔥"]))))
    assert [type(record).__name__ for record in records] == ["Problem", "Problem", "Summary"]


def test_safe_text_is_not_reported() -> None:
    # Harmless text that only looks a little like markup.
    record, problems = read_one(
        doc(
            title="Big data: a survey of 1 < 2 & onboarding",
            summary="The metadata: fields, `<b>` in code, and the word javascript as text. a <b c",
        )
    )
    assert problems == []
    assert record.title == "Big data: a survey of 1 < 2 & onboarding"


def test_markup_removed_from_authors_and_tags_is_reported() -> None:
    record, problems = read_one(
        doc(
            authors=["<script>alert(1)</script>Анна <img src=x onerror=alert(2)>"],
            tags=["<script>x</script>mllm"],
        )
    )
    assert record.authors == ("Анна",)
    assert record.tags == ("mllm",)
    assert [problem.outcome for problem in problems] == ["cleaned"], problems


def test_entity_obfuscated_javascript_link_is_reported() -> None:
    record, problems = read_one(doc(summary="[ссылка](jav&#x61;script:alert(1))"))
    assert "href" not in record.summary_html
    assert [problem.outcome for problem in problems] == ["cleaned"], problems


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("title", "Управляющий &#x1; символ", id="title-entity-control"),
        pytest.param("title", "Заголовок &#xFFFE; тут", id="title-entity-noncharacter"),
        pytest.param("summary", "Текст &#x1; и &#11; внутри", id="summary-entity-control"),
        pytest.param("summary", "Текст &#xFFFF; тут", id="summary-entity-noncharacter"),
        pytest.param("title", "Заголовок \ufffe тут", id="title-raw-noncharacter"),
        pytest.param("summary", "Текст \uffff тут", id="summary-raw-noncharacter"),
        pytest.param("tags", ["ml\ufffelm"], id="tag-raw-noncharacter"),
    ],
)
def test_xml_forbidden_characters_in_any_spelling_are_cleaned(field: str, value: Any) -> None:
    # Raw U+FFFE/U+FFFF are valid UTF-8 and valid JSON without any \u escape, and
    # character references become characters when the Markdown/HTML is parsed.
    record, problems = read_one(doc(**{field: value}))
    _assert_xml_safe(record)
    assert [problem.outcome for problem in problems] == ["cleaned"], problems


# --- .jsonl -------------------------------------------------------------------------------


def test_jsonl_lines_are_numbered_and_only_bad_lines_skipped() -> None:
    data = jsonl(
        doc("line-1"),
        doc("line-2"),
        "",
        '{"id": "line-4", "title": ',
        "   ",
        doc("line-6"),
        [1, 2],
        doc("line-8", url=None),
        doc("line-9", published_at="2026-11-20T10:00:00"),
        doc("line-10"),
    )
    summaries, problems = read(data, JSONL)
    assert [(record.id, record.source_line) for record in summaries] == [
        ("line-1", 1),
        ("line-2", 2),
        ("line-6", 6),
        ("line-10", 10),
    ]
    assert all(record.source_key == JSONL for record in summaries)
    assert [(problem.line, problem.outcome) for problem in problems] == [
        (4, "skipped"),
        (7, "skipped"),
        (8, "skipped"),
        (9, "skipped"),
    ]
    assert all(problem.key == JSONL for problem in problems)
    assert "invalid json" in problems[0].reason.lower()
    assert "object" in problems[1].reason
    assert "url" in problems[2].reason
    assert "published_at" in problems[3].reason


def test_jsonl_cleaned_lines_are_reported_with_their_line() -> None:
    data = jsonl(doc("line-1"), doc("line-2", title="<script>x</script>Ок", tags=["🔥"]))
    summaries, problems = read(data, JSONL)
    assert [record.id for record in summaries] == ["line-1", "line-2"]
    assert {(problem.line, problem.outcome) for problem in problems} == {(2, "cleaned")}
    assert len(problems) == 2


def test_jsonl_with_crlf_and_no_final_newline() -> None:
    data = jsonl(doc("a"), "{bad", doc("c"), sep=b"\r\n", end=b"")
    summaries, problems = read(data, JSONL)
    assert [(record.id, record.source_line) for record in summaries] == [("a", 1), ("c", 3)]
    assert [(problem.line, problem.outcome) for problem in problems] == [(2, "skipped")]


def test_jsonl_with_a_bom() -> None:
    summaries, problems = read(b"\xef\xbb\xbf" + jsonl(doc("a"), doc("b")), JSONL)
    assert [record.id for record in summaries] == ["a", "b"]
    assert [problem.outcome for problem in problems] == ["cleaned"]


def test_jsonl_pretty_printed_object_is_reported_line_by_line_not_dropped() -> None:
    data = json.dumps(doc("pretty"), indent=1).encode()
    summaries, problems = read(data, JSONL)
    assert summaries == []
    assert problems and all(problem.outcome == "skipped" and problem.line for problem in problems)


def test_empty_jsonl_yields_nothing() -> None:
    assert read(b"", JSONL) == ([], [])
    assert read(b"\n\n  \n", JSONL) == ([], [])


def test_jsonl_line_separators_inside_strings_do_not_split_a_line() -> None:
    # U+2028, U+2029 and U+0085 are legal, unescaped, inside JSON strings; only \n
    # (and \r\n) end a line of JSON Lines.
    data = jsonl(
        doc("sep-1", summary="Первая\u2028строка"),
        doc("sep-2", title="Вторая\x85статья"),
        doc("sep-3", summary="Абзац\u2029абзац"),
        "{broken",
    )
    summaries, problems = read(data, JSONL)
    assert [(record.id, record.source_line) for record in summaries] == [
        ("sep-1", 1),
        ("sep-2", 2),
        ("sep-3", 3),
    ]
    assert [(problem.line, problem.outcome) for problem in problems] == [(4, "skipped")]


def test_jsonl_line_that_is_not_utf8_skips_only_that_line() -> None:
    data = b"\n".join([encode(doc("ok-1")), b'{"id": "bad", "title": "\xcf\xf0\xe8"}', encode(doc("ok-3"))])
    summaries, problems = read(data, JSONL)
    assert [(record.id, record.source_line) for record in summaries] == [("ok-1", 1), ("ok-3", 3)]
    assert [(problem.line, problem.outcome) for problem in problems] == [(2, "skipped")]
    assert "utf-8" in problems[0].reason.lower()


def test_reading_is_the_same_in_the_json_and_jsonl_forms() -> None:
    document = doc("same", tags=["MLLM", "../x"], authors=["Анна"])
    one, _ = read_one(document)
    summaries, problems = read(jsonl(document), JSONL)
    assert problems == []
    other = summaries[0]
    for name in (
        "id",
        "title",
        "summary_html",
        "tags",
        "tag_slugs",
        "url",
        "published_at",
        "authors",
        "lang",
    ):
        assert getattr(one, name) == getattr(other, name), name


def test_published_at_keeps_its_offset() -> None:
    record, _ = read_one(doc(published_at="2026-11-20T10:00:00+03:00"))
    assert record.published_at.tzinfo is not None
    assert record.published_at.utcoffset() == timezone(timedelta(hours=3)).utcoffset(None)


# --- text that reads as it is -------------------------------------------------------


@pytest.mark.parametrize(
    "control",
    ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200b", "\ufeff"],
)
def test_bidi_controls_and_zero_width_spaces_leave_titles_tags_and_authors(control: str) -> None:
    record, problems = read_one(
        doc(title=f"Заго{control}ловок {control} статьи", tags=[f"ml{control}lm"], authors=[f"Ав{control}тор"])
    )
    assert (record.title, record.tags, record.tag_slugs, record.authors) == (
        "Заголовок статьи",
        ("mllm",),
        ("mllm",),
        ("Автор",),
    )
    assert [(problem.outcome, problem.reason) for problem in problems] == [
        ("cleaned", "removed bidirectional controls and zero-width spaces (they can make text read as another)")
    ]


def test_joiners_and_clean_names_are_kept_without_a_note() -> None:
    record, problems = read_one(doc(title="Команда 👩\u200d💻 и ZWNJ\u200cтекст", tags=["ml"], authors=["Автор"]))
    assert record.title == "Команда 👩\u200d💻 и ZWNJ\u200cтекст"
    assert problems == []


# --- typos named ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("tag", "tags"),
        ("titel", "title"),
        ("publishedAt", "published_at"),
        ("Image-URL", "image_url"),
        ("author", "authors"),
    ],
)
def test_an_unknown_field_close_to_a_known_one_is_named_and_the_summary_published(typo: str, meant: str) -> None:
    record, problems = read_one({**doc(), typo: "x"})
    assert record.id == "2611.00001"
    assert [(problem.outcome, problem.reason) for problem in problems] == [
        ("warning", f"`{typo}`: unknown field; did you mean `{meant}`?")
    ]


def test_a_typo_of_a_required_field_is_named_beside_the_reason_it_is_skipped() -> None:
    document = {key: value for key, value in doc().items() if key != "title"} | {"titel": "Заголовок"}
    summaries, problems = read(encode(document))
    assert summaries == []
    assert [problem.outcome for problem in problems] == ["warning", "skipped"]
    assert "did you mean `title`" in problems[0].reason and "title" in problems[1].reason


def test_unknown_fields_far_from_every_known_one_pass_silently() -> None:
    _, problems = read_one({**doc(), "notes": "x", "score": 5, "category": "cs.CL", "language": "ru"})
    assert problems == []
