"""Reading summaries: object bytes in, clean ``Summary`` records and ``Problem`` reports out.

Every rule of the input contract is checked here, so a bad object or line is
reported with its key, line and reason, and never stops the good ones.
"""

from __future__ import annotations

import difflib
import hashlib
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any, NamedTuple, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from digestpub.model import (
    MAX_TAG_LENGTH,
    MAX_TAGS,
    Outcome,
    Problem,
    Summary,
    sortable_time,
)
from digestpub.text import (
    clean_text,
    is_blank,
    is_language_tag,
    is_safe_url,
    plain_text,
    references_unsafe_characters,
    tag_identity,
    tag_slug,
    without_hidden_controls,
)

# `<prefix>/YYYY/MM/DD/<name>.json|.jsonl`; any other key is not a summary.
_SUMMARY_KEY = re.compile(r"^(?P<day>\d{4}/\d{2}/\d{2})/[^/]+\.(?P<suffix>jsonl?)$")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$")


def summary_key(key: str) -> tuple[str, str] | None:
    """``(day, "json" or "jsonl")`` for a summary key; ``None`` for any other key.

    The day must be a real date: ``2026/13/45/x.json`` is not a summary key.
    """
    match = _SUMMARY_KEY.match(key)
    if match is None:
        return None
    try:
        date.fromisoformat(match["day"].replace("/", "-"))
    except ValueError:
        return None
    return match["day"], match["suffix"]


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def readable_key(key: str) -> str:
    """``key`` as a person can read it: a byte that is not UTF-8, or a control character, as ``\\xNN``.

    A file name that is not UTF-8 comes from ``os.fsdecode`` with lone surrogates,
    which neither a state file nor a terminal can hold.
    """
    try:
        raw = key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = key.encode("utf-8", "backslashreplace")
    readable = raw.decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}", readable)


def refused_key(key: str) -> Problem | None:
    """The problem with a summary key's name that stops it from being read, if any."""
    shown = readable_key(key)
    if shown == key:
        return None
    if _LONE_SURROGATE.search(key):
        return Problem(key=shown, reason="its name is not valid UTF-8: rename it")
    return Problem(key=shown, reason="its name holds control characters: rename it")


# What the sanitiser removes that a reader would call unsafe: active elements,
# event handlers, and script or data URLs as a link target (not "big data: …").
_UNSAFE_MARKUP = re.compile(
    r"<\s*/?\s*(?:script|iframe|object|embed|style|form)\b|\bon[a-z]+\s*=|(?:java|vb)script\s*:"
    r"|(?:\]\(|=|<)\s*[\"']?\s*data\s*:",
    re.IGNORECASE,
)
_NONCHARACTER_FFFE = "\ufffe".encode()
_NONCHARACTER_FFFF = "\uffff".encode()
_MAX_TITLE_LENGTH = 1_000

_ESCAPED_TEXT_GROWTH = 4
_BLANK_REASON = "is empty once whitespace and invisible characters are removed"

NonBlank = Annotated[str, StringConstraints(min_length=1)]


class SummaryInput(BaseModel):
    """The contract's fields, strictly typed; unknown fields are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    # Blank text is refused in ``_build``, with a reason that names whitespace and invisible characters.
    title: str
    summary: str
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    url: NonBlank
    published_at: NonBlank
    updated_at: str | None = None
    lang: str | None = None
    authors: list[str] | None = None
    paper_url: str | None = None
    code_url: str | None = None
    image_url: str | None = None


_HIDDEN_CONTROLS_NOTE = "removed bidirectional controls and zero-width spaces (they can make text read as another)"


_FIELDS = frozenset(SummaryInput.model_fields)


def _squashed(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


@lru_cache(maxsize=1_024)
def _meant_field(name: str) -> str | None:
    """The known field an unknown one is likely a misspelling of (``tag``: ``tags``), if any.

    Unknown fields are the upstream's own and are ignored; only one this close is named.
    """
    squashed = {_squashed(field): field for field in _FIELDS}
    if _squashed(name) in squashed:
        return squashed[_squashed(name)]
    close = difflib.get_close_matches(_squashed(name), squashed, n=1, cutoff=0.8)
    return squashed[close[0]] if close else None


@lru_cache(maxsize=16_384)
def _tag_name_and_slug(value: str) -> tuple[str, str, bool]:
    """The tag's name, its slug, and whether hidden controls were removed from it.

    A digest uses a few hundred tags over and over: each is cleaned once a run.
    """
    plain = plain_text(value)
    name = without_hidden_controls(plain)
    return name[:MAX_TAG_LENGTH], tag_slug(name[:MAX_TAG_LENGTH]), name != plain


def _looks_unsafe(text: str) -> bool:
    # The full pattern is slow on long text; whatever it finds starts with "<"
    # or ends in a scheme, so text with neither is cleared by cheap substring tests.
    if "&" in text:
        # Entities can spell a scheme or a tag: judge the text a browser would see.
        text = html.unescape(text)
    if "<" not in text and "script" not in (lowered := text.lower()) and "data" not in lowered:
        return False
    return _UNSAFE_MARKUP.search(text) is not None


def _parse_json(text: str) -> Any:
    """orjson, the faster; what it refuses goes to json, which has the reason users read.

    json also takes what orjson does not, as before: escaped lone surrogates (cleaned
    later) and integers beyond 64 bits.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class _RawHints(NamedTuple):
    """What a document's raw bytes rule out, so most documents skip the text checks.

    Strict JSON spells a character only as itself or as a ``\\u`` escape, and
    lowering ASCII bytes finds the same "script" and "data" as lowering the text:
    no letter outside ASCII lowers into them.
    """

    size: int
    needs_cleaning: bool
    """Text that XML forbids can be in it: a ``\\u`` escape, or a raw U+FFFE/U+FFFF."""
    may_hold_markup: bool
    """Markup, a character reference or a script or data URL can be in it."""

    @classmethod
    def of(cls, data: bytes) -> _RawHints:
        # b"\xef" first: a one-byte test runs at memchr speed, and UTF-8 text rarely holds it.
        needs_cleaning = b"\\u" in data or (
            b"\xef" in data and (_NONCHARACTER_FFFE in data or _NONCHARACTER_FFFF in data)
        )
        may_hold_markup = needs_cleaning or b"<" in data or b"&" in data
        if not may_hold_markup:
            lowered = data.lower()
            may_hold_markup = b"script" in lowered or b"data" in lowered
        return cls(len(data), needs_cleaning, may_hold_markup)


class Rejected(ValueError):
    """One summary breaks a rule; the message is the reason users read."""


def parse_timestamp(field: str, value: str) -> datetime:
    if _RFC3339.match(value) is None:
        if _RFC3339.match(value + "Z") is not None:
            raise Rejected(f"{field} {value!r} has no UTC offset (RFC 3339 needs one, e.g. +03:00)")
        raise Rejected(f"{field} {value!r} is not an RFC 3339 date-time (e.g. 2026-11-20T09:30:00+03:00)")
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:
        raise Rejected(f"{field} {value!r} is not a real date and time") from None


def _describe(error: ValidationError) -> str:
    reasons = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "object"
        reasons.append(f"{field}: {item['msg'].lower()}")
    return "; ".join(reasons)


def _clean_strings(value: Any, touched: list[bool]) -> Any:
    if isinstance(value, str):
        cleaned, changed = clean_text(value)
        if changed:
            touched[0] = True
        return cleaned
    if isinstance(value, list):
        return [_clean_strings(item, touched) for item in value]
    return value


_Record = TypeVar("_Record")

PROBLEMS_LISTED = 10
"""Problems of each outcome reported one by one per object; the rest are summed up in one."""


def listing_the_first(key: str, records: Iterable[_Record]) -> Iterator[_Record | Problem]:
    """``records`` with each outcome of problem past the first ``PROBLEMS_LISTED`` summed up in one, at the end.

    However many lines of an object are broken, its report, log and record in the
    state stay small. The sum is told at the line of the first problem it holds.
    """
    listed: dict[Outcome, int] = {"skipped": 0, "cleaned": 0, "warning": 0}
    unlisted: dict[Outcome, list[Any]] = {}  # outcome: [count, first line]
    for record in records:
        if isinstance(record, Problem):
            if listed[record.outcome] == PROBLEMS_LISTED:
                unlisted.setdefault(record.outcome, [0, record.line])[0] += record.count
                continue
            listed[record.outcome] += 1
        yield record
    for kind, (count, line) in unlisted.items():
        yield Problem(
            key=key,
            line=line,
            outcome=kind,
            count=count,
            reason=f"{count:,} {kind} from here on, not listed one by one",
        )


class SummaryReader:
    """Turns objects into summaries under one configuration."""

    def __init__(
        self,
        default_lang: str = "ru",
        max_summary_bytes: int = 65_536,
        max_object_bytes: int = 1_048_576,
        kept_slugs: Mapping[str, str] | None = None,
    ) -> None:
        self.default_lang = default_lang
        self.kept_slugs = kept_slugs or {}
        """Published slugs that the current rule would move, by tag identity (see ``kept_slugs``)."""
        self.max_summary_bytes = max_summary_bytes
        self.max_object_bytes = max_object_bytes
        # A line holding a summary at the limit, its other fields, and text written
        # as \u escapes (three times the UTF-8 of Cyrillic) is never longer than this.
        self.max_line_bytes = _ESCAPED_TEXT_GROWTH * max_summary_bytes

    def too_large(self, key: str, size: int) -> Problem:
        """The problem of an object not read for its size."""
        return Problem(
            key=key, reason=f"{size:,} bytes is over the limit of {self.max_object_bytes:,} (max_object_bytes)"
        )

    def read_object(self, key: str, data: bytes) -> Iterator[Summary | Problem]:
        """Every summary in one object, and a ``Problem`` for whatever is wrong."""
        kind = summary_key(key)
        if kind is None:
            return
        yield from self.read_summaries(key, data, lines=kind[1] == "jsonl")

    def read_summaries(self, key: str, data: bytes, *, lines: bool) -> Iterator[Summary | Problem]:
        """``read_object`` for bytes whose key is not (yet) a summary key: one summary, or JSON Lines."""
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
            yield Problem(key=key, outcome="cleaned", reason="removed a UTF-8 byte order mark")
        records = self._read_lines(key, data) if lines else self._read_bytes(key, None, data)
        yield from listing_the_first(key, records)

    def _read_lines(self, key: str, data: bytes) -> Iterator[Summary | Problem]:
        # JSON Lines: only \n ends a line (U+2028 and friends are legal inside strings),
        # and each line is decoded alone, so one bad line costs only itself.
        for number, line in enumerate(data.split(b"\n"), start=1):
            if len(line) > self.max_line_bytes:
                reason = f"line of {len(line):,} bytes is over the limit of {self.max_line_bytes:,} for one summary"
                yield Problem(key=key, line=number, reason=reason)
            elif line.strip():
                yield from self._read_bytes(key, number, line.removesuffix(b"\r"))

    def _read_bytes(self, key: str, line: int | None, data: bytes) -> Iterator[Summary | Problem]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            bad = error.object[error.start]
            yield Problem(key=key, line=line, reason=f"not valid UTF-8: byte {error.start} is {bad:#04x}")
            return
        yield from self._read_document(key, line, text, data)

    def _read_document(self, key: str, line: int | None, text: str, data: bytes) -> Iterator[Summary | Problem]:
        try:
            document = _parse_json(text)
        except json.JSONDecodeError as error:
            where = f"line {error.lineno} column {error.colno}" if line is None else f"column {error.colno}"
            yield Problem(key=key, line=line, reason=f"invalid JSON at {where}: {error.msg}")
            return
        except RecursionError:
            yield Problem(key=key, line=line, reason="invalid JSON: nested too deeply")
            return
        if not isinstance(document, dict):
            yield Problem(key=key, line=line, reason=f"expected a JSON object, got {type(document).__name__}")
            return
        for name in sorted(document.keys() - _FIELDS):
            meant = _meant_field(name)
            if meant is not None:
                reason = f"`{name}`: unknown field; did you mean `{meant}`?"
                yield Problem(key=key, line=line, outcome="warning", reason=reason)
        notes: list[str] = []
        try:
            digest = hashlib.blake2b(data, digest_size=8).hexdigest()
            summary = self._build(key, line, document, digest, notes, _RawHints.of(data))
        except Rejected as error:
            yield Problem(key=key, line=line, reason=str(error))
            return
        except ValidationError as error:
            yield Problem(key=key, line=line, reason=_describe(error))
            return
        for note in notes:
            yield Problem(key=key, line=line, outcome="cleaned", reason=note)
        yield summary

    def _build(
        self,
        key: str,
        line: int | None,
        document: dict[str, Any],
        digest: str,
        notes: list[str],
        hints: _RawHints,
    ) -> Summary:
        touched = [False]
        if hints.needs_cleaning:
            document = {name: _clean_strings(value, touched) for name, value in document.items()}
        raw = SummaryInput.model_validate(document)
        if not touched[0] and hints.may_hold_markup:
            # Character references (&#1;) decode to what XML forbids once rendered.
            touched[0] = any(
                "&#" in text and references_unsafe_characters(text)
                for text in (raw.title, raw.summary, *raw.tags, *(raw.authors or []))
            )
        if touched[0]:
            notes.append("removed characters that XML forbids (control characters, lone surrogates)")

        if not raw.id.strip():
            raise Rejected("id: must not be blank")
        for field in ("title", "summary"):
            if is_blank(getattr(raw, field)):
                raise Rejected(f"{field}: {_BLANK_REASON}")
        # Decoded text is never longer than its JSON: only a long document needs measuring.
        if hints.size > self.max_summary_bytes and len(raw.summary.encode("utf-8")) > self.max_summary_bytes:
            raise Rejected(
                f"summary: {len(raw.summary.encode('utf-8')):,} bytes is over the limit of {self.max_summary_bytes:,}"
            )
        title = plain_text(raw.title)
        hidden = title != (title := without_hidden_controls(title))
        if is_blank(title):
            raise Rejected("title: nothing is left once markup is removed")
        if len(title) > _MAX_TITLE_LENGTH:
            raise Rejected(f"title: {len(title):,} characters is over the limit of {_MAX_TITLE_LENGTH:,}")
        if not is_safe_url(raw.url):
            raise Rejected(f"url: {raw.url!r} is not an absolute http(s) URL")
        optional_urls: dict[str, str | None] = {}
        for field in ("paper_url", "code_url", "image_url"):
            value = getattr(raw, field)
            if value is not None and not is_safe_url(value):
                raise Rejected(f"{field}: {value!r} is not an absolute http(s) URL")
            optional_urls[field] = value
        lang = raw.lang if raw.lang is not None else self.default_lang
        if not is_language_tag(lang):
            raise Rejected(f"lang: {lang!r} is not a BCP 47 language tag")
        published_at = parse_timestamp("published_at", raw.published_at)
        updated_at = parse_timestamp("updated_at", raw.updated_at) if raw.updated_at else None
        if updated_at is not None and updated_at < published_at:
            raise Rejected("updated_at: is earlier than published_at")

        tags, slugs = self._tags(raw.tags, notes)
        if hints.may_hold_markup and any(
            _looks_unsafe(text) for text in (raw.summary, raw.title, *raw.tags, *(raw.authors or []))
        ):
            notes.append("removed unsafe markup (scripts, event handlers, javascript:/data: links)")
        plain_authors = [plain_text(author) for author in raw.authors or []]
        shown_authors = [without_hidden_controls(author) for author in plain_authors]
        if (hidden or shown_authors != plain_authors) and _HIDDEN_CONTROLS_NOTE not in notes:
            notes.append(_HIDDEN_CONTROLS_NOTE)
        authors = tuple(name for name in shown_authors if not is_blank(name))
        return Summary(
            id=raw.id,
            title=title,
            summary_markdown=raw.summary,
            tags=tags,
            tag_slugs=slugs,
            url=raw.url,
            published_at=published_at,
            updated_at=updated_at,
            lang=lang,
            authors=authors,
            source_key=key,
            source_line=line,
            digest=digest,
            sort_time=sortable_time(published_at),
            **optional_urls,
        )

    def _tags(self, values: list[str], notes: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        tags: list[str] = []
        slugs: list[str] = []
        for value in values:
            name, slug, hidden = _tag_name_and_slug(value)
            if self.kept_slugs and slug:
                slug = self.kept_slugs.get(tag_identity(name), slug)
            if hidden and _HIDDEN_CONTROLS_NOTE not in notes:
                notes.append(_HIDDEN_CONTROLS_NOTE)
            if not slug:
                notes.append(f"dropped tag {value!r}: it has no letters or digits to name it by")
            elif slug not in slugs:
                tags.append(name)
                slugs.append(slug)
        return tuple(tags), tuple(slugs)
