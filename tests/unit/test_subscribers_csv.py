"""CSV cells that a spreadsheet would run: escaped on export, read back on import."""

from __future__ import annotations

import csv
import io

import pytest

from digestpub.subscriptions.subscribers import (
    InvalidAddress,
    address_hash,
    address_key,
    escape_cell,
    new_subscriber,
    refuse_formula_address,
    unescape_cell,
)

HOSTILE = [
    "=cmd|'/Ccalc'!A0@example.com",
    "+1-555@example.com",
    "-2+3",
    "@SUM(A1:A9)",
    "'=already quoted",
    "''",
    "'",
    "\t=tab",
    "\r=return",
    "plain@example.com",
    "o'brien@example.com",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_escape_round_trip_through_csv(value: str) -> None:
    escaped = escape_cell(value)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))
    stream = io.StringIO()
    csv.writer(stream).writerow([escaped, "x"])
    ((cell, _),) = csv.reader(io.StringIO(stream.getvalue()))
    assert unescape_cell(cell) == value


@pytest.mark.parametrize("address", ["=x@example.com", "+x@example.com", "-x@example.com"])
def test_formula_addresses_are_refused(address: str) -> None:
    with pytest.raises(InvalidAddress, match="spreadsheet"):
        new_subscriber(address, "", "daily", "en")
    with pytest.raises(InvalidAddress):
        refuse_formula_address(address)


def test_address_key_and_hash_ignore_case_only() -> None:
    assert address_key(" ALICE@Example.ORG ") == "alice@example.org"
    assert address_hash("ALICE@Example.ORG") == address_hash("alice@example.org")
    assert address_hash("alice@example.org") != address_hash("alice2@example.org")
    assert "alice" not in address_hash("alice@example.org")
