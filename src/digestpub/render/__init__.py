"""Building the published files: each output kind (``render.kinds``), OPML and the pieces they share."""

from __future__ import annotations

from dataclasses import dataclass

import xxhash


@dataclass(frozen=True)
class Output:
    """One file to publish under the destination."""

    path: str
    body: bytes
    content_type: str


def digest_of(body: bytes) -> str:
    """What tells a published file from the one written last time."""
    # No cryptographic hash: a cold run digests the whole site, and XXH3 is several times faster than SHA-256.
    return xxhash.xxh3_128_hexdigest(body)


@dataclass(frozen=True)
class Frame:
    """A feed file or page without its entries: the bytes before them and after them.

    Every output kind has this shape, so a run can keep the bytes of the entries
    it did not change and cut them out of the file it published last time.
    """

    head: bytes
    tail: bytes


def framed(document: str, closing: str) -> Frame:
    """``document`` cut before its last ``closing`` marker, where the entries go."""
    cut = document.rindex(closing)
    ending = "" if document.endswith("\n") else "\n"
    return Frame(document[:cut].encode(), (document[cut:] + ending).encode())
