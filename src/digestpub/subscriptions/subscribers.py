"""Subscribers: addresses and their keys, new records, and CSV import and export.

The CSV has the columns ``email,tags,frequency,lang,status`` (tags separated by
spaces), the same for import and export, so an export imports back unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, TextIO, cast, get_args

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, Field

from digestpub.errors import AddressTaken as AddressTaken
from digestpub.errors import InvalidAddress as InvalidAddress
from digestpub.errors import InvalidSubscriber as InvalidSubscriber
from digestpub.model import (
    MAX_TAG_LENGTH,
    MAX_TAGS,
    SUBSCRIBER_LANGS,
    SUPPRESSED,
    Frequency,
    Subscriber,
    SubscriberStatus,
    TagInfo,
)
from digestpub.text import tag_slug

if TYPE_CHECKING:
    from digestpub.ports import Ledger, SubscriberStore


CSV_COLUMNS = ("email", "tags", "frequency", "lang", "status")
FREQUENCIES: tuple[str, ...] = get_args(Frequency)
STATUSES: tuple[str, ...] = get_args(SubscriberStatus)
LANGS: tuple[str, ...] = SUBSCRIBER_LANGS
Language = Literal["ru", "en"]
ACTIVE: frozenset[SubscriberStatus] = frozenset({"pending", "confirmed"})
FORMULA_STARTS = ("=", "+", "-", "@")
"""A spreadsheet reads a cell starting with one of these as a formula."""
_CELL_ESCAPE = "'"
_ADDRESS_HASH_LABEL = b"digestpub-address-v1\x00"


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


def address_key(address: str) -> str:
    """What makes two spellings one address: the normalised address, lowercased whole.

    ``ALICE@Example.org`` and ``alice@example.org`` are one subscriber: mail systems
    treat local parts case-insensitively in practice, whatever RFC 5321 allows.
    """
    return normalise_email(address).lower()


def address_hash(address: str) -> str:
    """A hash that names an address without holding it (the erased list, rate limits, logs).

    Pseudonymous, not anonymous: whoever guesses the address can compute it.
    """
    return hashlib.sha256(_ADDRESS_HASH_LABEL + address_key(address).encode("utf-8")).hexdigest()


def short_id(subscriber_id: str) -> str:
    """How log lines name a subscriber: never by address."""
    return subscriber_id[:12]


def refuse_formula_address(address: str) -> None:
    """``InvalidAddress`` for a local part a spreadsheet would run as a formula (never seen in practice)."""
    if address.startswith(FORMULA_STARTS):
        raise InvalidAddress(
            f"an address starting with {' '.join(FORMULA_STARTS)} is not accepted (a spreadsheet would run it)"
        )


def escape_cell(value: str) -> str:
    """A CSV cell that no spreadsheet runs: a leading formula character gets a ``'`` before it."""
    if value.startswith((*FORMULA_STARTS, _CELL_ESCAPE, "\t", "\r")):
        return _CELL_ESCAPE + value
    return value


def unescape_cell(value: str) -> str:
    """The value ``escape_cell`` was given."""
    if value.startswith(_CELL_ESCAPE) and value[1:2] in (*FORMULA_STARTS, _CELL_ESCAPE, "\t", "\r"):
        return value[1:]
    return value


def as_published(tags: tuple[str, ...], known: Mapping[str, TagInfo] | Collection[str]) -> tuple[str, ...]:
    """``tags`` under the slugs the digest published them by: a tag published before the slug
    rule changed keeps its slug (``C++`` as ``c``), and a reader who types its name means it.
    Slugs alone (no names) are taken as they are."""
    if not isinstance(known, Mapping):
        return tags
    renamed = {tag_slug(tag.name): slug for slug, tag in known.items() if tag_slug(tag.name) != slug}
    if not renamed:
        return tags
    return tuple(sorted({renamed.get(tag, tag) for tag in tags}))


def unknown_tags(tags: Iterable[str], known: Collection[str]) -> list[str]:
    """The tags (slugs) that the digest has never published."""
    return [tag for tag in tags if tag not in known]


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


class UnknownTags(InvalidSubscriber):
    """Tags the digest has never published; ``tags`` lists them for the reader's words."""

    def __init__(self, tags: list[str]) -> None:
        super().__init__(f"unknown tag {', '.join(tags)}: the digest has published no such tag")
        self.tags = tags


def checked_preferences(
    tags: str | Iterable[str], frequency: str, lang: str
) -> tuple[tuple[str, ...], Frequency, Language]:
    """Tags as slugs and a known frequency and language; ``InvalidSubscriber`` says which is wrong."""
    return (
        normalise_tags(tags),
        cast(Frequency, _choice(frequency, FREQUENCIES, "frequency")),
        cast(Language, _choice(lang, LANGS, "language")),
    )


def new_subscriber(
    email: str,
    tags: str | Iterable[str],
    frequency: str,
    lang: str,
    status: str = "pending",
    now: datetime | None = None,
) -> Subscriber:
    """A new subscriber with a fresh opaque id; raises ``InvalidSubscriber`` or ``InvalidAddress``
    (also for an address that a spreadsheet would run as a formula)."""
    moment = now or datetime.now(UTC)
    address = normalise_email(email)
    refuse_formula_address(address)
    chosen_tags, chosen_frequency, chosen_lang = checked_preferences(tags, frequency, lang)
    return Subscriber(
        id=uuid.uuid4().hex,
        email=address,
        tags=chosen_tags,
        frequency=chosen_frequency,
        lang=chosen_lang,
        status=cast(SubscriberStatus, _choice(status, STATUSES, "status")),
        created_at=moment,
        updated_at=moment,
    )


class ImportReport(BaseModel):
    """What one CSV import did; ``problems`` are ``(line, reason)`` of rows left out.

    ``kept`` counts rows of unsubscribed, bounced or complained subscribers: an
    import never changes them (only their own double opt-in does).
    """

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0
    problems: list[tuple[int, str]] = Field(default_factory=list)

    def summary_line(self) -> str:
        line = (
            f"subscribers: {self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.problems)} rows with problems"
        )
        if self.kept:
            line += f"; {self.kept} kept as unsubscribed, bounced or complained (only their own opt-in changes that)"
        return line


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


def import_csv(
    store: SubscriberStore,
    text_stream: TextIO,
    *,
    known_tags: Mapping[str, TagInfo] | Collection[str],
    now: datetime | None = None,
) -> ImportReport:
    """Add or update a subscriber for each good row; report each bad row by line and go on.

    A known address (in any case) keeps its id and is updated in place through the
    store's transitions, so importing the same file twice adds nobody. A row never
    changes an unsubscribed, bounced or complained subscriber (counted as kept), never
    brings back an erased address, and names only tags in ``known_tags`` (the
    digest's published tags). Storage errors are raised (``StorageError``): the
    rows before them are saved.
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
        reason = _import_row(store, columns, row, known_tags, moment, report)
        if reason is not None:
            report.problems.append((line, reason))
    if columns is None:
        report.problems.append((1, f"missing header: the file is empty, expected {','.join(CSV_COLUMNS)}"))
    return report


def _import_row(
    store: SubscriberStore,
    columns: dict[str, int],
    row: list[str],
    known_tags: Mapping[str, TagInfo] | Collection[str],
    now: datetime,
    report: ImportReport,
) -> str | None:
    """Import one row and count it; the reason when it was left out."""
    if len(row) < len(columns):
        missing = [name for name, at in columns.items() if at >= len(row)]
        return f"missing column {', '.join(missing)}"
    if len(row) > len(columns):
        return f"{len(row)} fields where the header has {len(columns)}"
    cells = {name: unescape_cell(row[at]) for name, at in columns.items()}
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
    wanted = wanted.model_copy(update={"tags": as_published(wanted.tags, known_tags)})
    unknown = unknown_tags(wanted.tags, known_tags)
    if unknown:
        return str(UnknownTags(unknown))
    if store.is_erased(address_hash(wanted.email)):
        return "this address was erased (subscribers delete): it is not imported again"
    existing = store.find(wanted.email)
    if existing is None:
        try:
            store.save(wanted)
        except AddressTaken as error:
            return str(error)
        report.added += 1
        return None
    outcome = _update_existing(store, existing, wanted, now)
    if outcome == "kept":
        report.kept += 1
    elif outcome == "updated":
        report.updated += 1
    else:
        report.unchanged += 1
    return None


def _update_existing(
    store: SubscriberStore, existing: Subscriber, wanted: Subscriber, now: datetime
) -> Literal["kept", "updated", "unchanged"]:
    """Bring a known subscriber to the row, one conditional change at a time."""
    if existing.status in SUPPRESSED:
        return "kept"
    changed = False
    if (existing.tags, existing.frequency, existing.lang) != (wanted.tags, wanted.frequency, wanted.lang):
        if (
            store.set_preferences(existing.id, tags=wanted.tags, frequency=wanted.frequency, lang=wanted.lang, now=now)
            is None
        ):
            return "kept"  # erased meanwhile
        changed = True
    if wanted.status != existing.status:
        if store.transition(existing.id, wanted.status, only_from=ACTIVE, now=now) is None:
            return "kept"  # suppressed meanwhile: that wins
        changed = True
    return "updated" if changed else "unchanged"


def erase_address(store: SubscriberStore, ledger: Ledger, address: str, *, now: datetime | None = None) -> bool:
    """Erase a person: their send-ledger rows, their subscriber record and what the rate
    limits counted; only a hash of the address stays, so an import never brings it back.

    The ledger goes first: if the store then fails, a rerun still finds the subscriber.
    ``False`` when no subscriber had the address (its hash is listed all the same).
    """
    existing = store.find(address)
    if existing is not None:
        ledger.forget(existing.id)
    return store.erase(address_hash(address), existing.id if existing else None, now=now or datetime.now(UTC))


def subscriber_row(subscriber: Subscriber) -> list[str]:
    """A subscriber's cells in ``CSV_COLUMNS`` order."""
    cells = [subscriber.email, " ".join(subscriber.tags), subscriber.frequency, subscriber.lang, subscriber.status]
    return [escape_cell(cell) for cell in cells]


def export_csv(store: SubscriberStore, text_stream: TextIO) -> int:
    """Write every subscriber (streamed, in the store's order) as CSV; returns how many.

    A cell that a spreadsheet would run as a formula is escaped (``escape_cell``);
    ``import_csv`` reads it back as it was.
    """
    writer = csv.writer(text_stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for subscriber in store.iter_all():
        writer.writerow(subscriber_row(subscriber))
        count += 1
    return count
