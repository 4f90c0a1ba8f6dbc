"""Finding ``templates/`` from a checkout, an installed wheel, or a Lambda package."""

from __future__ import annotations

import contextlib
import os
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.bccache import Bucket

from digestpub.errors import TemplateNotFound

_PACKAGE = Path(__file__).resolve().parent


def template_folder() -> Path:
    """The first folder that holds the templates.

    ``DIGESTPUB_TEMPLATES`` wins; then the copy inside the installed package
    (wheels); then ``templates/`` beside the package (a Lambda package, whose root
    holds both); then the checkout's top level (``src/`` layout).
    """
    candidates = [
        os.environ.get("DIGESTPUB_TEMPLATES"),
        _PACKAGE / "templates",
        _PACKAGE.parent / "templates",
        _PACKAGE.parent.parent / "templates",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "page.html.j2").is_file():
            return Path(candidate)
    looked = ", ".join(str(candidate) for candidate in candidates if candidate)
    raise TemplateNotFound(f"no digestpub templates found; looked in {looked}")


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(template_folder()),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2", "mjml", "mjml.j2", "xml")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        bytecode_cache=_compiled_templates(),
    )


class _CompiledTemplateCache(FileSystemBytecodeCache):
    """Templates compiled by earlier runs, in a folder of this user's only.

    Compiling the templates was a noticeable share of a small publish run. A cache that
    cannot be read or written makes a run slower, never fail: the template is
    compiled from its source, which the cache key and checksum also follow.
    """

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # a damaged file raises whatever pickle or marshal meets
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _compiled_templates() -> FileSystemBytecodeCache | None:
    try:
        # Jinja's own folder under the temporary directory: created 0700, and refused
        # if another user owns it, so no one else can plant code in it.
        return _CompiledTemplateCache()
    except (OSError, RuntimeError):
        return None
