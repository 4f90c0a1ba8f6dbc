"""The feed formats a site publishes: the one list of them.

Each format is a module beside this one that declares its ``KIND``
(``kinds.feed_format``). Its file name, content type, label, and whether it is
archived or preferred come from there: the pages' links and autodiscovery, the
subscription pages, OPML, WebSub's topics, ``digestpub serve`` and the combined
feed read them here. A new format is its module and its line in ``FEEDS``.

The format modules load their renderers (lxml, feedgen) only when they render,
so this list costs the subscription endpoints and a run with nothing to write
nothing of them.
"""

from __future__ import annotations

from digestpub.render import atom, jsonfeed, rss
from digestpub.render.kinds import Kind

FEEDS: tuple[Kind, ...] = (rss.KIND, atom.KIND, jsonfeed.KIND)
"""In the order pages link them and a run renders them."""


def named(name: str) -> Kind | None:
    """The feed format of that name (a combined feed's ``format``, a published file's kind)."""
    return next((kind for kind in FEEDS if kind.name == name), None)


def of_file(path: str) -> Kind | None:
    """The feed format whose file ``path`` is (by its last segment)."""
    file_name = path.rsplit("/", 1)[-1]
    return next((kind for kind in FEEDS if kind.file_name == file_name), None)


def preferred() -> Kind:
    """The format a reader gets who names none."""
    return next(kind for kind in FEEDS if kind.preferred)


def offered() -> tuple[Kind, ...]:
    """The formats a feed of any set of tags is served in, the preferred one first."""
    first = preferred()
    return tuple(kind for kind in (first, *(kind for kind in FEEDS if kind is not first)) if kind.combining)
