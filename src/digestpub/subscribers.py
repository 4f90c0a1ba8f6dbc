"""Subscribers: normalised addresses, new records, and CSV import and export.

The CSV has the columns ``email,tags,frequency,lang,status`` (tags separated by
spaces), the same for import and export, so an export imports back unchanged.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, TextIO, cast, get_args

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, Field

from digestpub.errors import AddressTaken as AddressTaken
from digestpub.errors import InvalidAddress as InvalidAddress
from digestpub.errors import InvalidSubscriber as InvalidSubscriber
from digestpub.model import SUBSCRIBER_LANGS, Frequency, Subscriber, SubscriberStatus
from digestpub.text import tag_slug

if TYPE_CHECKING:
    from digestpub.ports import SubscriberStore


CSV_COLUMNS = ("email", "tags", "frequency", "lang", "status")
FREQUENCIES: tuple[str, ...] = get_args(Frequency)
STATUSES: tuple[str, ...] = get_args(SubscriberStatus)
LANGS: tuple[str, ...] = SUBSCRIBER_LANGS
Language = Literal["ru", "en"]
WITHDRAWN = frozenset({"unsubscribed", "complained"})
"""Statuses where the person withdrew consent: an import never makes them active again."""


def normalise_email(address: str) -> str:
    """The address as email-validator normalises it (domain lowercased, Unicode NFC).

    Surrounding whitespace is dropped; the local part keeps its case, as RFC 5321
    allows a mailbox to depend on it. Deliverability (DNS) is not checked.
    """
    try:
        return _normalised(address.strip())
    except EmailNotValidError as error:
        raise InvalidAddress(str(error)) from None


@lru_cache(maxsize=4096)
def _normalised(address: str) -> str:
    # An import normalises each address three times (row, find, save): cache it.
    return validate_email(address, check_deliverability=False).normalized


MAX_TAGS = 20
"""Tags one subscriber may follow: as many as one summary may carry (the contract's 20)."""
MAX_TAG_LENGTH = 100


def normalise_tags(tags: str | Iterable[str]) -> tuple[str, ...]:
    """Tags as slugs: deduplicated, sorted, empty ones dropped; a string is split on spaces.

    More than ``MAX_TAGS`` different words, or one over ``MAX_TAG_LENGTH`` characters,
    raise ``InvalidSubscriber`` (checked before any is slugified: a form may carry thousands).
    """
    words = set(tags.split() if isinstance(tags, str) else tags)
    if len(words) > MAX_TAGS:
        raise InvalidSubscriber(f"{len(words)} tags: follow at most {MAX_TAGS}")
    for word in words:
        if len(word) > MAX_TAG_LENGTH:
            raise InvalidSubscriber(f"tag {word[:20]!r}… is longer than {MAX_TAG_LENGTH} characters")
    return tuple(sorted({slug for slug in (tag_slug(word) for word in words) if slug}))


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    cleaned = value.strip().lower()
    if cleaned not in allowed:
        shown = repr(value) if value.strip() else "empty"
        raise InvalidSubscriber(f"unknown {what} {shown}: use {' or '.join(allowed)}")
    return cleaned


def new_subscriber(
    email: str,
    tags: str | Iterable[str],
    frequency: str,
    lang: str,
    status: str = "pending",
    now: datetime | None = None,
) -> Subscriber:
    """A new subscriber with a fresh opaque id; raises ``InvalidSubscriber`` or ``InvalidAddress``."""
    moment = now or datetime.now(UTC)
    return Subscriber(
        id=uuid.uuid4().hex,
        email=normalise_email(email),
        tags=normalise_tags(tags),
        frequency=cast(Frequency, _choice(frequency, FREQUENCIES, "frequency")),
        lang=cast(Language, _choice(lang, LANGS, "language")),
        status=cast(SubscriberStatus, _choice(status, STATUSES, "status")),
        created_at=moment,
        updated_at=moment,
    )


class ImportReport(BaseModel):
    """What one CSV import did; ``problems`` are ``(line, reason)`` of rows left out."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[tuple[int, str]] = Field(default_factory=list)

    def summary_line(self) -> str:
        return (
            f"subscribers: {self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.problems)} rows with problems"
        )


def _read_header(row: list[str]) -> dict[str, int] | str:
    """Column positions by name, or the reason the header is unusable."""
    names = [cell.strip().lstrip("\ufeff").lower() for cell in row]
    if "email" not in names and any("@" in name for name in names):
        return f"missing header: the first line must be {','.join(CSV_COLUMNS)}"
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        return f"column {', '.join(duplicated)} appears more than once"
    unknown = [name for name in names if name not in CSV_COLUMNS]
    if unknown:
        return f"unknown column {', '.join(repr(name) for name in unknown)}: use {','.join(CSV_COLUMNS)}"
    missing = [name for name in CSV_COLUMNS if name not in names]
    if missing:
        return f"missing column {', '.join(missing)} in the header"
    return {name: names.index(name) for name in CSV_COLUMNS}


def _rows(text_stream: TextIO) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """``(line, cells)`` of each record, its first physical line; a broken record yields its error."""
    reader = csv.reader(text_stream, strict=True)
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield line, error
        else:
            yield line, row
        line = reader.line_num + 1


def _updated(existing: Subscriber, wanted: Subscriber, now: datetime) -> Subscriber | None:
    """The existing subscriber with the row's fields, or ``None`` when nothing differs."""
    fields: dict[str, Any] = {
        "email": wanted.email,
        "tags": wanted.tags,
        "frequency": wanted.frequency,
        "lang": wanted.lang,
        "status": wanted.status,
    }
    if all(getattr(existing, name) == value for name, value in fields.items()):
        return None
    return existing.model_copy(update={**fields, "updated_at": now})


def import_csv(store: SubscriberStore, text_stream: TextIO, *, now: datetime | None = None) -> ImportReport:
    """Add or update a subscriber for each good row; report each bad row by line and go on.

    A known address (compared normalised) keeps its id and is updated in place, so
    importing the same file twice adds nobody. A row never reactivates someone who
    unsubscribed or complained: consent comes back only through confirmation.
    Storage errors are raised (``StorageError``): the rows before them are saved.
    """
    moment = now or datetime.now(UTC)
    report = ImportReport()
    columns: dict[str, int] | None = None
    for line, row in _rows(text_stream):
        if isinstance(row, csv.Error):
            report.problems.append((line, f"unreadable CSV: {row}"))
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        if columns is None:
            header = _read_header(row)
            if isinstance(header, str):
                report.problems.append((line, header))
                return report
            columns = header
            continue
        reason = _import_row(store, columns, row, moment, report)
        if reason is not None:
            report.problems.append((line, reason))
    if columns is None:
        report.problems.append((1, f"missing header: the file is empty, expected {','.join(CSV_COLUMNS)}"))
    return report


def _import_row(
    store: SubscriberStore, columns: dict[str, int], row: list[str], now: datetime, report: ImportReport
) -> str | None:
    """Import one row and count it; the reason when it was left out."""
    if len(row) < len(columns):
        missing = [name for name, at in columns.items() if at >= len(row)]
        return f"missing column {', '.join(missing)}"
    if len(row) > len(columns):
        return f"{len(row)} fields where the header has {len(columns)}"
    cells = {name: row[at] for name, at in columns.items()}
    if not cells["email"].strip():
        return "missing email"
    try:
        wanted = new_subscriber(
            cells["email"], cells["tags"], cells["frequency"], cells["lang"], cells["status"], now=now
        )
    except InvalidAddress as error:
        return f"bad address {cells['email'].strip()!r}: {error}"
    except InvalidSubscriber as error:
        return str(error)
    existing = store.find(wanted.email)
    if existing is None:
        try:
            store.save(wanted)
        except AddressTaken as error:
            return str(error)
        report.added += 1
        return None
    if existing.status in WITHDRAWN and wanted.status not in WITHDRAWN:
        return (
            f"{wanted.email} is {existing.status}: an import does not make them {wanted.status} "
            "again (they must subscribe and confirm)"
        )
    changed = _updated(existing, wanted, now)
    if changed is None:
        report.unchanged += 1
        return None
    store.save(changed)
    report.updated += 1
    return None


def subscriber_row(subscriber: Subscriber) -> list[str]:
    """A subscriber's cells in ``CSV_COLUMNS`` order."""
    return [
        subscriber.email,
        " ".join(subscriber.tags),
        subscriber.frequency,
        subscriber.lang,
        subscriber.status,
    ]


def export_csv(store: SubscriberStore, text_stream: TextIO) -> int:
    """Write every subscriber (streamed, in the store's order) as CSV; returns how many."""
    writer = csv.writer(text_stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for subscriber in store.iter_all():
        writer.writerow(subscriber_row(subscriber))
        count += 1
    return count
