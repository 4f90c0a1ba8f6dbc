"""What published bytes depend on besides the summaries, as one hash.

A run whose fingerprint differs from the one the state recorded renders every
feed again: entries cut from the published files would keep the old look and links.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from functools import cache

from digestpub.render.entries import ENTRY_REVISION
from digestpub.site import Site
from digestpub.templates import template_folder
from digestpub.version import __version__

_RENDERING_LIBRARIES = ("feedgen", "pyromark", "nh3")
"""Whose output is in the published entries: another version may write other bytes."""


@cache  # a warm cloud function runs many times with the same site and templates
def rendering_fingerprint(site: Site) -> str:
    hasher = hashlib.sha256(repr(site).encode())
    libraries = " ".join(f"{name} {importlib.metadata.version(name)}" for name in _RENDERING_LIBRARIES)
    hasher.update(f"{__version__} entries {ENTRY_REVISION} {libraries}".encode())
    folder = template_folder()
    # Every template, by its path: a file added, renamed or changed changes the hash.
    for path in sorted(path for path in folder.rglob("*") if path.is_file()):
        hasher.update(path.relative_to(folder).as_posix().encode() + b"\0")
        hasher.update(path.read_bytes())
    return hasher.hexdigest()[:32]
