"""Bad input through the whole publish run, into folders: reported, never fatal, never leaked.

One run publishes a source holding good summaries together with every kind of
bad object below; each kind is then checked on its own against the run's report,
the saved report and the log, and every output file is checked for unsafe text.
Kinds that need a run of their own (because they need two runs, or because a
failure there must not hide the others) have their own tests further down.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from digestpub.adapters.folder_store import FolderStore
from digestpub.model import Problem, PublishReport
from digestpub.publish import PublishOptions, publish
from digestpub.site import Site
from tests.conftest import html_problems, summary, write_json

BASE_URL = "https://aidigest.example/"
DAY = "2026/11/20"
LATER_DAY = "2026/11/21"
FEED_FILES = ("feeds/rss.xml", "feeds/atom.xml", "feeds/feed.json")

# What XML 1.0 cannot carry (and a BOM, which has no place inside a document).
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff\ufeff]")
# Markers of the unsafe inputs below; none may appear in any output, escaped or not.
_UNSAFE_MARKERS = (
    "<script",
    "&lt;script",
    "\\u003cscript",
    "onerror",
    "onload",
    "onclick",
    "javascript:",
    "vbscript:",
    "data:text",
    "alert(",
    "<iframe",
    "&lt;iframe",
)


def make_site() -> Site:
    return Site(
        title="Ай Дайджест",
        description="Свежая выжимка ml и AI статей - каждый день",
        lang="ru",
        base_url=BASE_URL,
        api_url=BASE_URL,
    )


def options() -> PublishOptions:
    return PublishOptions(workers=1, lock_wait=timedelta(seconds=2))


def run_publish(root: Path) -> PublishReport:
    return publish(
        FolderStore(root / "source"),
        FolderStore(root / "public"),
        FolderStore(root / "state"),
        make_site(),
        options(),
    )


def entry_id(summary_id: str) -> str:
    return make_site().entry_id(summary_id)


def write_raw(folder: Path, key: str, data: bytes) -> Path:
    path = folder / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def jsonl(*lines: Any) -> bytes:
    """Lines of a .jsonl object: documents are dumped, bytes and str kept as written."""
    out = []
    for line in lines:
        if isinstance(line, bytes):
            out.append(line)
        elif isinstance(line, str):
            out.append(line.encode())
        else:
            out.append(json.dumps(line, ensure_ascii=False).encode())
    return b"\n".join(out) + b"\n"


def rss_guids(public: Path, path: str = "feeds/rss.xml") -> list[str]:
    root = etree.fromstring((public / path).read_bytes())
    return [guid.text for guid in root.iter("guid")]


def rss_titles(public: Path, path: str = "feeds/rss.xml") -> list[str]:
    root = etree.fromstring((public / path).read_bytes())
    return [item.findtext("title") for item in root.iter("item")]


def atom_ids(public: Path, path: str = "feeds/atom.xml") -> list[str]:
    root = etree.fromstring((public / path).read_bytes())
    return [
        entry.findtext("{http://www.w3.org/2005/Atom}id") for entry in root.iter("{http://www.w3.org/2005/Atom}entry")
    ]


def json_items(public: Path, path: str = "feeds/feed.json") -> list[dict[str, Any]]:
    return json.loads((public / path).read_text(encoding="utf-8"))["items"]


def json_ids(public: Path, path: str = "feeds/feed.json") -> list[str]:
    return [item["id"] for item in json_items(public, path)]


def output_files(public: Path) -> list[Path]:
    return sorted(path for path in public.rglob("*") if path.is_file())


def assert_outputs_safe(public: Path) -> None:
    """Every output file: UTF-8, no XML-forbidden character, no unsafe marker; XML well-formed."""
    files = output_files(public)
    assert files, "nothing was published"
    for path in files:
        data = path.read_bytes()
        text = data.decode("utf-8")  # lone surrogates cannot survive this strict decode
        rel = path.relative_to(public).as_posix()
        forbidden = _XML_FORBIDDEN.search(text)
        assert forbidden is None, f"{rel} holds {forbidden.group()!r}"
        lowered = text.lower()
        for marker in _UNSAFE_MARKERS:
            assert marker not in lowered, f"{rel} holds {marker!r}"
        if rel.endswith((".xml", ".opml")):
            etree.fromstring(data)  # well-formed, or lxml raises
        elif rel.endswith(".json"):
            json.loads(text)


def problems_for(report: PublishReport, key: str, line: int | None = None) -> list[Problem]:
    return [problem for problem in report.problems if problem.key == key and (line is None or problem.line == line)]


# --- the cases ----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input: where it goes, what it holds, and how the run must report it."""

    name: str
    key: str
    content: Any  # a JSON value (written with write_json) or raw bytes
    kind: str  # "skipped" or "cleaned"
    words: tuple[str, ...]  # all must appear in the reason, case-insensitively
    line: int | None = None
    published_id: str | None = None  # cleaned cases: this id must be in the feeds
    absent_id: str | None = None  # skipped cases: this id must not be
    extra_lines: tuple[tuple[str, int], ...] = field(default=())


def _key(name: str, day: str = DAY, ext: str = "json") -> str:
    return f"{day}/{name}.{ext}"


def doc(summary_id: str, **fields: Any) -> dict[str, Any]:
    """A valid summary with this id (``fields`` override; None removes a field)."""
    base = {
        "id": summary_id,
        "title": f"Статья {summary_id}",
        "url": f"https://aidigest.example/papers/{summary_id}",
        "published_at": "2026-11-20T10:00:00+03:00",
    }
    return summary(1, **{**base, **fields})


_bad = doc  # a bad case's id is its name, so a leak into a feed is easy to spot


_UNSAFE_TITLE = (
    '<script>alert("xss-title")</script>Безопасный <b>заголовок</b> '
    '<img src=x onerror=alert("img-title")> <a href="javascript:alert(\'a-title\')">ссылка</a>'
)
_UNSAFE_SUMMARY = (
    "**Жирный** текст.\n\n"
    '<script>alert("xss-summary")</script>\n\n'
    '<img src="x" onerror="alert(\'img-summary\')">\n\n'
    "[плохая ссылка](javascript:alert('md-link')) и "
    "<a href=\"javascript:alert('html-link')\">ещё</a> и "
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a> и '
    '<iframe src="https://evil.example/"></iframe>'
    '<p onclick="alert(\'click\')" style="color:red">абзац</p>'
)

_BAD_URLS = {
    "javascript": "javascript:alert(1)",
    "relative": "/papers/2611.00001",
    "ftp": "ftp://aidigest.example/papers/x",
    "no-host": "https://",
    "spaces": "https://aidigest.example/papers/with space",
}

_JSONL_KEY = _key("batch", ext="jsonl")

CASES: list[Case] = [
    Case(
        "invalid-json",
        _key("invalid-json"),
        b'{"id": "invalid-json", "title": ',
        "skipped",
        ("invalid json",),
    ),
    Case(
        "trailing-garbage",
        _key("trailing-garbage"),
        json.dumps(_bad("trailing-garbage")).encode() + b" }",
        "skipped",
        ("invalid json",),
        absent_id="trailing-garbage",
    ),
    Case("list", _key("list"), [_bad("list")], "skipped", ("object", "list"), absent_id="list"),
    Case("string", _key("string"), "just a string", "skipped", ("object", "str")),
    Case("number", _key("number"), 42, "skipped", ("object", "int")),
    Case("null", _key("null"), None, "skipped", ("object",)),
    *[
        Case(
            f"missing-{name}",
            _key(f"missing-{name}"),
            _bad(f"missing-{name}", **{name: None}),
            "skipped",
            (name, "required"),
            absent_id=None if name == "id" else f"missing-{name}",
        )
        for name in ("id", "title", "summary", "url", "published_at")
    ],
    *[
        Case(
            name,
            _key(name),
            _bad(name, **{field_name: value}),
            "skipped",
            (field_name, "empty once whitespace and invisible characters are removed"),
            absent_id=name,
        )
        for name, field_name, value in (
            ("blank-title", "title", "   "),
            ("empty-title", "title", ""),
            ("zero-width-title", "title", "\u200b\u200b"),
            ("invisible-title", "title", " \u00ad\u200d\u2060\ufeff\u00a0\u3000 "),
            ("blank-summary", "summary", "  \n\t \r\n "),
            ("empty-summary", "summary", ""),
            ("invisible-summary", "summary", "\u200b\n\u200c\u200e\u2063\u180e\u3164\u2800\ufe0f"),
        )
    ],
    Case(
        "markup-only-title",
        _key("markup-only-title"),
        _bad("markup-only-title", title="<b> </b><i>\u200b</i>"),
        "skipped",
        ("title", "markup"),
        absent_id="markup-only-title",
    ),
    Case("blank-id", _key("blank-id"), _bad("blank-id", id="   "), "skipped", ("id", "blank")),
    Case("empty-id", _key("empty-id"), _bad("empty-id", id=""), "skipped", ("id",)),
    Case(
        "tags-string",
        _key("tags-string"),
        _bad("tags-string", tags="mllm"),
        "skipped",
        ("tags",),
        absent_id="tags-string",
    ),
    Case(
        "title-number",
        _key("title-number"),
        _bad("title-number", title=2611),
        "skipped",
        ("title",),
        absent_id="title-number",
    ),
    Case(
        "authors-string",
        _key("authors-string"),
        _bad("authors-string", authors="Иван Петров"),
        "skipped",
        ("authors",),
        absent_id="authors-string",
    ),
    Case("id-number", _key("id-number"), _bad("id-number", id=2611), "skipped", ("id",)),
    Case(
        "naive-datetime",
        _key("naive-datetime"),
        _bad("naive-datetime", published_at="2026-11-20T10:00:00"),
        "skipped",
        ("published_at", "offset"),
        absent_id="naive-datetime",
    ),
    Case(
        "not-rfc3339",
        _key("not-rfc3339"),
        _bad("not-rfc3339", published_at="20 Nov 2026 10:00"),
        "skipped",
        ("published_at", "rfc 3339"),
        absent_id="not-rfc3339",
    ),
    Case(
        "updated-naive",
        _key("updated-naive"),
        _bad("updated-naive", updated_at="2026-11-21 10:00"),
        "skipped",
        ("updated_at",),
        absent_id="updated-naive",
    ),
    Case(
        "updated-before-published",
        _key("updated-before-published"),
        _bad(
            "updated-before-published",
            published_at="2026-11-20T10:00:00+03:00",
            updated_at="2026-11-19T10:00:00+03:00",
        ),
        "skipped",
        ("updated_at", "earlier"),
        absent_id="updated-before-published",
    ),
    Case(
        "xml-forbidden",
        _key("xml-forbidden"),
        _bad(
            "xml-forbidden",
            title="Нулевой\u0000 символ\u000b в заголовке",
            summary="Вертикальная\u000b табуляция\u0000 и \u001f прочее",
        ),
        "cleaned",
        ("xml",),
        published_id="xml-forbidden",
    ),
    Case(
        "lone-surrogate",
        _key("lone-surrogate"),
        json.dumps(doc("lone-surrogate", title="@HIGH@ half a pair", summary="and @LOW@ here"))
        .replace("@HIGH@", "\\ud800")
        .replace("@LOW@", "\\udfff")
        .encode(),
        "cleaned",
        ("surrogate",),
        published_id="lone-surrogate",
    ),
    Case(
        "not-utf8",
        _key("not-utf8"),
        json.dumps(doc("not-utf8", title="Привет"), ensure_ascii=False).encode("cp1251"),
        "skipped",
        ("utf-8",),
        absent_id="not-utf8",
    ),
    Case(
        # Published as the contract says (unknown fields are ignored), with the likely typo named.
        "misspelt-field",
        _key("misspelt-field"),
        {key: value for key, value in {**doc("misspelt-field"), "tag": ["typo"]}.items() if key != "tags"},
        "warning",
        ("`tag`: unknown field; did you mean `tags`?",),
        published_id="misspelt-field",
    ),
    Case(
        "bidi-controls",
        _key("bidi-controls"),
        doc(
            "bidi-controls",
            title="Оплата \u202eтxт.exe\u202c и \u2066изоляция\u2069 с\u200bкрытым пробелом",
            tags=["\u202eбиди\u202c"],
            authors=["Автор\ufeff Один"],
        ),
        "cleaned",
        ("bidirectional", "zero-width"),
        published_id="bidi-controls",
    ),
    Case(
        "bom",
        _key("bom"),
        b"\xef\xbb\xbf" + json.dumps(_bad("bom"), ensure_ascii=False).encode(),
        "cleaned",
        ("byte order mark",),
        published_id="bom",
    ),
    Case(
        "unsafe-markup",
        _key("unsafe-markup"),
        _bad("unsafe-markup", title=_UNSAFE_TITLE, summary=_UNSAFE_SUMMARY),
        "cleaned",
        ("unsafe",),
        published_id="unsafe-markup",
    ),
    Case(
        "emoji-tag",
        _key("emoji-tag"),
        _bad("emoji-tag", tags=["🔥", "mllm"]),
        "cleaned",
        ("tag",),
        published_id="emoji-tag",
    ),
    Case(
        "duplicate-no-updated",
        _key("dup-no-updated", day=LATER_DAY),
        doc("good-1", title="Дубликат без updated_at"),
        "skipped",
        ("duplicate id",),
    ),
    Case(
        "duplicate-same-updated",
        _key("dup-same-updated", day=LATER_DAY),
        doc("good-2", title="Дубликат с тем же updated_at", updated_at="2026-11-20T12:00:00+03:00"),
        "skipped",
        ("duplicate id",),
    ),
    Case(
        "huge-summary",
        _key("huge-summary"),
        _bad("huge-summary", summary="очень длинно " * 5_000),
        "skipped",
        ("summary", "limit"),
        absent_id="huge-summary",
    ),
    Case(
        # Over max_object_bytes: skipped before it is read, whatever it holds.
        "huge-object",
        _key("huge-object"),
        _bad("huge-object", notes="x" * 1_100_000),
        "skipped",
        ("1,100,", "max_object_bytes"),
        absent_id="huge-object",
    ),
    Case(
        "too-many-tags",
        _key("too-many-tags"),
        _bad("too-many-tags", tags=[f"tag{i}" for i in range(100)]),
        "skipped",
        ("tags", "20"),
        absent_id="too-many-tags",
    ),
    Case(
        "bad-lang",
        _key("bad-lang"),
        _bad("bad-lang", lang="русский"),
        "skipped",
        ("lang",),
        absent_id="bad-lang",
    ),
    *[
        Case(
            f"{field_name}-{label}",
            _key(f"{field_name}-{label}"),
            _bad(f"{field_name}-{label}", **{field_name: value}),
            "skipped",
            (field_name,),
            absent_id=f"{field_name}-{label}",
        )
        for field_name in ("url", "paper_url")
        for label, value in _BAD_URLS.items()
    ],
    Case("jsonl-invalid-line", _JSONL_KEY, None, "skipped", ("invalid json",), line=4),
    Case(
        "jsonl-missing-url-line",
        _JSONL_KEY,
        None,
        "skipped",
        ("url", "required"),
        line=6,
        absent_id="jsonl-missing-url",
    ),
]

# Good summaries: they must all be published, whatever else the source holds.
GOOD_JSON = {
    _key("good-1"): doc("good-1", title="Хорошая статья 1", tags=["MLLM"]),
    _key("good-2"): doc("good-2", title="Хорошая статья 2", updated_at="2026-11-20T12:00:00+03:00"),
    _key("good-3", day="2026/11/19"): doc(
        "good-3",
        title="Хорошая статья 3",
        authors=["Анна Иванова"],
        paper_url="https://arxiv.org/abs/2611.00003",
    ),
    # Invisible characters inside visible text are kept: a ZWJ joins an emoji, a soft hyphen breaks a word.
    _key("joined-emoji"): doc(
        "joined-emoji",
        title="Команда 👩\u200d💻 и пере\u00adнос",
        summary="\u200bТекст с \u2060невидимыми\u200b символами",
    ),
    _key("tags-tricky"): doc(
        "tags-tricky",
        title="Хитрые теги",
        tags=["../../x", "a/b", "with space", "Мультимодальность"],
    ),
}
GOOD_JSONL_LINES = {1: "jsonl-good-1", 2: "jsonl-good-2", 5: "jsonl-good-5"}
GOOD_IDS = [document["id"] for document in GOOD_JSON.values()] + list(GOOD_JSONL_LINES.values())

NOT_SUMMARIES = {
    "README.md": b"# not a summary\n",
    "2026/11/x.json": json.dumps(doc("wrong-depth-1")).encode(),
    f"{DAY}/nested/y.json": json.dumps(doc("wrong-depth-2")).encode(),
    f"{DAY}/notes.txt": b"{not json at all",
    f"{DAY}/summary.json.bak": b"{not json at all",
    "2026/11/20.json": b"{not json at all",
}

# The "tags-tricky" summary shows these as written, under these slugs.
TRICKY_SLUGS = {
    "../../x": "x",
    "a/b": "a-b",
    "with space": "with-space",
    "Мультимодальность": "multimodalnost",
}


def _write_source(source: Path) -> None:
    for key, document in GOOD_JSON.items():
        write_json(source, key, document)
    write_raw(
        source,
        _JSONL_KEY,
        jsonl(
            doc("jsonl-good-1", title="Строка 1"),
            doc("jsonl-good-2", title="Строка 2"),
            "",
            '{"id": "jsonl-bad", "title": "no closing brace"',
            doc("jsonl-good-5", title="Строка 5"),
            doc("jsonl-missing-url", url=None),
        ),
    )
    for case in CASES:
        if case.key == _JSONL_KEY:
            continue
        if isinstance(case.content, bytes):
            write_raw(source, case.key, case.content)
        else:
            write_json(source, case.key, case.content)
    for key, data in NOT_SUMMARIES.items():
        write_raw(source, key, data)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Published:
    root: Path
    report: PublishReport
    log: list[str]

    @property
    def public(self) -> Path:
        return self.root / "public"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    root = tmp_path_factory.mktemp("bad-inputs")
    _write_source(root / "source")
    logger = logging.getLogger("digestpub")
    handler = _Records()
    saved_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        report = run_publish(root)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved_level)
    yield Published(root, report, [record.getMessage() for record in handler.records])


def test_the_set_covers_at_least_eighteen_kinds() -> None:
    assert len({case.name for case in CASES}) >= 18


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_bad_input_is_reported_with_key_line_reason_and_kind(published: Published, case: Case) -> None:
    found = problems_for(published.report, case.key, case.line)
    assert found, f"{case.name}: nothing reported for {case.key}:{case.line}; got {published.report.problems}"
    matching = [problem for problem in found if problem.outcome == case.kind]
    assert matching, f"{case.name}: expected a {case.kind!r} problem, got {found}"
    problem = matching[0]
    assert problem.line == case.line
    reason = problem.reason.lower()
    for word in case.words:
        assert word in reason, f"{case.name}: reason {problem.reason!r} does not mention {word!r}"
    if case.kind == "skipped":
        # A skipped input is not also reported as cleaned-and-published.
        assert all(p.outcome == "skipped" for p in found), found


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_bad_input_is_in_the_log(published: Published, case: Case) -> None:
    where = f"{case.key}:{case.line}" if case.line is not None else case.key
    problem = next(p for p in problems_for(published.report, case.key, case.line) if p.outcome == case.kind)
    assert any(where in message and problem.reason in message for message in published.log), (
        f"{case.name}: no log line names {where} with its reason; log: {published.log}"
    )


@pytest.mark.parametrize("case", [case for case in CASES if case.published_id is not None], ids=lambda case: case.name)
def test_cleaned_inputs_are_published(published: Published, case: Case) -> None:
    assert case.published_id is not None
    wanted = entry_id(case.published_id)
    assert wanted in rss_guids(published.public)
    assert wanted in atom_ids(published.public)
    assert wanted in json_ids(published.public)


@pytest.mark.parametrize("case", [case for case in CASES if case.absent_id is not None], ids=lambda case: case.name)
def test_skipped_inputs_are_not_published(published: Published, case: Case) -> None:
    unwanted = entry_id(case.absent_id or "")
    assert unwanted not in rss_guids(published.public)
    assert unwanted not in json_ids(published.public)


def test_every_good_summary_is_in_rss_and_json_feed(published: Published) -> None:
    guids = rss_guids(published.public)
    ids = json_ids(published.public)
    atom = atom_ids(published.public)
    for summary_id in GOOD_IDS:
        assert entry_id(summary_id) in guids, summary_id
        assert entry_id(summary_id) in ids, summary_id
        assert entry_id(summary_id) in atom, summary_id
    # Each summary exactly once: a duplicate id never makes a second entry.
    assert len(guids) == len(set(guids))
    assert len(ids) == len(set(ids))


def test_counts_in_the_report(published: Published) -> None:
    report = published.report
    expected_published = len(GOOD_IDS) + sum(1 for case in CASES if case.published_id is not None)
    assert report.summaries_new == expected_published
    assert len(json_ids(published.public)) == expected_published
    skipped_cases = [case for case in CASES if case.kind == "skipped"]
    assert report.skipped == len(skipped_cases)
    assert report.warnings == sum(1 for case in CASES if case.kind == "warning")
    assert report.finished_at is not None


def test_duplicate_ids_keep_the_first_version(published: Published) -> None:
    titles = rss_titles(published.public)
    assert "Хорошая статья 1" in titles
    assert "Хорошая статья 2" in titles
    assert not any(title.startswith("Дубликат") for title in titles)
    item = next(i for i in json_items(published.public) if i["id"] == entry_id("good-1"))
    assert item["title"] == "Хорошая статья 1"


def test_no_output_holds_unsafe_text_or_xml_forbidden_characters(published: Published) -> None:
    assert_outputs_safe(published.public)


def test_unsafe_markup_is_removed_but_the_text_is_kept(published: Published) -> None:
    item = next(i for i in json_items(published.public) if i["id"] == entry_id("unsafe-markup"))
    assert item["title"] == "Безопасный заголовок ссылка"
    html = item["content_html"]
    assert "<strong>Жирный</strong>" in html
    assert "абзац" in html
    assert "style=" not in html
    for name in ("feeds/rss.xml", "feeds/atom.xml", "feeds/feed.json", "index.html", "tags/mllm/index.html"):
        text = (published.public / name).read_text(encoding="utf-8")
        assert "Безопасный" in text, name
        lowered = text.lower()
        for marker in ("<script", "&lt;script", "onerror", "onclick", "javascript:", "data:text", "alert("):
            assert marker not in lowered, f"{name} holds {marker!r}"


def test_pages_are_valid_html_whatever_the_input_held(published: Published) -> None:
    # Links whose targets were removed, stray markup, odd tags: still valid HTML.
    assert html_problems(sorted(published.public.rglob("*.html"))) == []


def test_bidi_controls_and_zero_width_spaces_reach_no_page_or_feed(published: Published) -> None:
    # Only titles, tags and authors are cleaned of them: a summary's body may hold zero-width spaces.
    hidden = ("\u202eтxт", "\u2066изоляция", "с\u200bкрытым", "\u202eбиди", "Автор\ufeff")
    for path in output_files(published.public):
        text = path.read_text(encoding="utf-8")
        assert not [found for found in hidden if found in text], path.relative_to(published.public)
    assert "Оплата тxт.exe и изоляция скрытым пробелом" in rss_titles(published.public)
    assert (published.public / "tags" / "bidi" / "index.html").is_file()


def test_xml_forbidden_characters_are_removed_from_the_text(published: Published) -> None:
    item = next(i for i in json_items(published.public) if i["id"] == entry_id("xml-forbidden"))
    assert item["title"] == "Нулевой символ в заголовке"
    assert "Вертикальная табуляция и  прочее" in item["content_html"]
    surrogate = next(i for i in json_items(published.public) if i["id"] == entry_id("lone-surrogate"))
    assert "half a pair" in surrogate["title"]


def test_bom_object_is_published_as_written(published: Published) -> None:
    item = next(i for i in json_items(published.public) if i["id"] == entry_id("bom"))
    assert item["title"] == "Статья bom"


def test_tricky_tags_are_published_under_safe_slugs(published: Published) -> None:
    public = published.public
    assert not problems_for(published.report, _key("tags-tricky"))
    item = next(i for i in json_items(public) if i["id"] == entry_id("tags-tricky"))
    assert item["tags"] == list(TRICKY_SLUGS)  # shown as written
    for name, slug in TRICKY_SLUGS.items():
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug)
        for feed in ("rss.xml", "atom.xml", "feed.json"):
            assert (public / "feeds" / "tags" / slug / feed).is_file(), (name, slug, feed)
        assert (public / "tags" / slug / "index.html").is_file()
        assert entry_id("tags-tricky") in json_ids(public, f"feeds/tags/{slug}/feed.json")
    # Nothing was written outside the destination, nor into a path made of the raw tag.
    for path in output_files(public):
        rel = path.relative_to(public).as_posix()
        assert ".." not in rel.split("/")
        assert " " not in rel
        assert re.fullmatch(r"[a-z0-9./_-]+", rel), rel
    assert not (published.root / "x").exists()
    assert not (published.root / "public" / "feeds" / "tags" / "a" / "b").exists()


def test_emoji_only_tag_is_dropped(published: Published) -> None:
    item = next(i for i in json_items(published.public) if i["id"] == entry_id("emoji-tag"))
    assert item["tags"] == ["mllm"]


def test_jsonl_good_lines_are_published_and_only_bad_lines_reported(published: Published) -> None:
    report = published.report
    found = problems_for(report, _JSONL_KEY)
    assert sorted(problem.line for problem in found if problem.outcome == "skipped") == [4, 6]
    ids = json_ids(published.public)
    for summary_id in GOOD_JSONL_LINES.values():
        assert entry_id(summary_id) in ids
    assert entry_id("jsonl-missing-url") not in ids


def test_keys_that_are_not_summaries_are_ignored_and_not_reported(published: Published) -> None:
    reported = {problem.key for problem in published.report.problems}
    for key in NOT_SUMMARIES:
        assert key not in reported
    ids = json_ids(published.public)
    assert entry_id("wrong-depth-1") not in ids
    assert entry_id("wrong-depth-2") not in ids


def test_report_is_saved_in_the_state_folder_with_the_problems(published: Published) -> None:
    latest = published.root / "state" / "reports" / "latest.json"
    assert latest.is_file()
    saved = json.loads(latest.read_text(encoding="utf-8"))
    assert saved["run_id"] == published.report.run_id
    listed = {(p["key"], p["line"], p["outcome"]) for p in saved["problems"]}
    for case in CASES:
        assert (case.key, case.line, case.kind) in listed, case.name
    reasons = {(p["key"], p["line"]): p["reason"] for p in saved["problems"] if p["outcome"] == "skipped"}
    assert "duplicate id" in reasons[(_key("dup-no-updated", day=LATER_DAY), None)]
    # The same report, kept under its own name as well.
    kept = [path for path in (published.root / "state" / "reports").glob("*.json") if path.name != "latest.json"]
    assert len(kept) == 1
    assert json.loads(kept[0].read_text(encoding="utf-8")) == saved


# --- runs of their own ----------------------------------------------------------


def _good_source(source: Path) -> list[str]:
    write_json(source, _key("good-a"), doc("good-a", title="Хорошая A"))
    write_json(source, _key("good-b"), doc("good-b", title="Хорошая B", tags=["rl"]))
    return ["good-a", "good-b"]


def _assert_good_published(public: Path, ids: list[str]) -> None:
    guids = rss_guids(public)
    feed_ids = json_ids(public)
    for summary_id in ids:
        assert entry_id(summary_id) in guids, summary_id
        assert entry_id(summary_id) in feed_ids, summary_id


def test_a_fixed_object_is_published_by_the_next_run(tmp_path: Path) -> None:
    source = tmp_path / "source"
    good = _good_source(source)
    bad_key = _key("fix-me")
    write_raw(source, bad_key, b'{"id": "fix-me", "title": "broken')
    jsonl_key = _key("fix-lines", ext="jsonl")
    write_raw(source, jsonl_key, jsonl(doc("fix-line-1"), doc("fix-line-2", published_at="yesterday")))

    first = run_publish(tmp_path)
    assert {(p.key, p.line, p.outcome) for p in first.problems} == {
        (bad_key, None, "skipped"),
        (jsonl_key, 2, "skipped"),
    }
    assert len(first.problems) == 2
    _assert_good_published(tmp_path / "public", [*good, "fix-line-1"])
    assert entry_id("fix-me") not in json_ids(tmp_path / "public")

    # The upstream fixes both objects.
    write_json(source, bad_key, doc("fix-me", title="Исправленная статья"))
    write_raw(source, jsonl_key, jsonl(doc("fix-line-1"), doc("fix-line-2", title="Исправленная строка")))

    second = run_publish(tmp_path)
    assert second.problems == []
    assert second.still_skipped == []
    assert second.summaries_new == 2
    public = tmp_path / "public"
    _assert_good_published(public, [*good, "fix-line-1", "fix-me", "fix-line-2"])
    assert "Исправленная статья" in rss_titles(public)
    saved = json.loads((tmp_path / "state" / "reports" / "latest.json").read_text(encoding="utf-8"))
    assert saved["problems"] == []
    assert_outputs_safe(public)


def test_an_unfixed_object_is_listed_as_still_broken(tmp_path: Path) -> None:
    source = tmp_path / "source"
    _good_source(source)
    bad_key = _key("still-bad")
    write_raw(source, bad_key, b"[1, 2, 3]")
    first = run_publish(tmp_path)
    assert [p.key for p in first.problems] == [bad_key]
    write_json(source, _key("good-c"), doc("good-c"))
    second = run_publish(tmp_path)
    assert second.summaries_new == 1
    assert [p.key for p in second.still_skipped] == [bad_key]


def test_a_duplicate_id_in_a_later_run_is_skipped(tmp_path: Path) -> None:
    source = tmp_path / "source"
    good = _good_source(source)
    run_publish(tmp_path)
    dup_key = _key("dup-later", day=LATER_DAY)
    write_json(source, dup_key, doc("good-a", title="Второй good-a"))
    second = run_publish(tmp_path)
    assert [(p.key, p.outcome) for p in second.problems] == [(dup_key, "skipped")]
    assert "duplicate id" in second.problems[0].reason
    public = tmp_path / "public"
    _assert_good_published(public, good)
    assert "Второй good-a" not in rss_titles(public)
    assert "Хорошая A" in rss_titles(public)


@pytest.mark.parametrize(
    ("name", "title", "text"),
    [
        # Character references the Markdown and HTML parsers turn into characters XML forbids.
        pytest.param("entity-control-title", "Управляющий &#x1; символ", "Обычный текст", id="entity-control-title"),
        pytest.param(
            "entity-control-summary",
            "Обычный заголовок",
            "Текст с &#x1; и &#11; внутри",
            id="entity-control-summary",
        ),
        pytest.param("entity-noncharacter", "Заголовок &#xFFFE; тут", "Текст &#xFFFF; тут", id="entity-noncharacter"),
        # Noncharacters written as they are (not as backslash-u escapes): valid UTF-8, valid JSON.
        pytest.param("raw-noncharacter-title", "Заголовок \ufffe тут", "Обычный текст", id="raw-noncharacter-title"),
        pytest.param(
            "raw-noncharacter-summary", "Обычный заголовок", "Текст \uffff тут", id="raw-noncharacter-summary"
        ),
    ],
)
def test_xml_forbidden_characters_in_any_spelling_never_stop_the_run(
    tmp_path: Path, name: str, title: str, text: str
) -> None:
    source = tmp_path / "source"
    good = _good_source(source)
    key = _key(name)
    write_json(source, key, doc(name, title=title, summary=text))

    report = run_publish(tmp_path)  # must not raise

    public = tmp_path / "public"
    _assert_good_published(public, good)
    found = problems_for(report, key)
    assert found, f"{name} was not reported"
    # Recoverable: cleaned and published, like the \u-escaped spelling.
    assert [p.outcome for p in found] == ["cleaned"], found
    assert entry_id(name) in json_ids(public)
    assert_outputs_safe(public)


def test_escaped_markup_in_a_title_never_becomes_a_script_in_a_feed(tmp_path: Path) -> None:
    source = tmp_path / "source"
    good = _good_source(source)
    key = _key("escaped-script")
    write_json(
        source,
        key,
        doc(
            "escaped-script",
            title="&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;Заголовок",
        ),
    )
    report = run_publish(tmp_path)
    public = tmp_path / "public"
    _assert_good_published(public, good)
    assert entry_id("escaped-script") in json_ids(public)
    item = next(i for i in json_items(public) if i["id"] == entry_id("escaped-script"))
    assert "<script" not in item["title"].lower()
    assert "onerror" not in item["title"].lower()
    for title in rss_titles(public):
        assert "<script" not in title.lower()
    assert_outputs_safe(public)
    assert report.skipped == 0


def test_a_jsonl_line_that_is_not_utf8_skips_only_that_line(tmp_path: Path) -> None:
    source = tmp_path / "source"
    good = _good_source(source)
    key = _key("mixed-bytes", ext="jsonl")
    write_raw(
        source,
        key,
        b"\n".join(
            [
                json.dumps(doc("bytes-line-1"), ensure_ascii=False).encode(),
                b'{"id": "bytes-line-2", "title": "\xcf\xf0\xe8\xe2\xe5\xf2"}',
                json.dumps(doc("bytes-line-3"), ensure_ascii=False).encode(),
            ]
        ),
    )
    report = run_publish(tmp_path)
    public = tmp_path / "public"
    _assert_good_published(public, [*good, "bytes-line-1", "bytes-line-3"])
    found = problems_for(report, key)
    assert [(p.line, p.outcome) for p in found] == [(2, "skipped")], found
    assert "utf-8" in found[0].reason.lower()


def test_a_jsonl_line_with_a_line_separator_in_a_string_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "source"
    good = _good_source(source)
    key = _key("separators", ext="jsonl")
    # U+2028 and U+0085 are legal, unescaped, inside JSON strings.
    write_raw(
        source,
        key,
        jsonl(
            doc("sep-1", summary="Первая\u2028строка"),
            doc("sep-2", title="Вторая\x85статья"),
            "{broken",
        ),
    )
    report = run_publish(tmp_path)
    public = tmp_path / "public"
    _assert_good_published(public, [*good, "sep-1", "sep-2"])
    assert [(p.line, p.outcome) for p in problems_for(report, key)] == [(3, "skipped")]


def test_a_key_with_an_impossible_date_does_not_break_later_runs(tmp_path: Path) -> None:
    source = tmp_path / "source"
    good = _good_source(source)
    write_json(source, "2026/13/45/impossible.json", doc("impossible-day"))
    run_publish(tmp_path)
    write_json(source, _key("good-later", day=LATER_DAY), doc("good-later"))
    second = run_publish(tmp_path)  # an incremental run: must not raise
    assert second.summaries_new == 1
    _assert_good_published(tmp_path / "public", [*good, "good-later"])
