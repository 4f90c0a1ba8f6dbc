"""The id authority: the ``host,year`` of every ``tag:`` id, fixed at a site's first run.

Feed readers know an entry by its id: if ids followed ``base_url``, moving the
site would show every summary again. So the state's head keeps the authority
the site started with, and a later ``base_url`` moves links, never ids. The
``id_authority`` setting chooses it for a new site; on an existing site it
may only repeat it, unless a rebuild is asked to change every id on purpose.
"""

from __future__ import annotations

import dataclasses

from pydantic import ValidationError

from digestpub.errors import ConfigError, StorageError
from digestpub.ports import ObjectStore
from digestpub.site import ID_YEAR, Site
from digestpub.state.keys import HEAD_KEY
from digestpub.state.parts import HEAD, Head


def default_authority(site: Site) -> str:
    """What ids used before authorities were kept: the host of ``base_url`` and ``ID_YEAR``."""
    return f"{site.authority},{ID_YEAR}"


def settle(site: Site, head: Head | None, *, rebuild: bool = False) -> Site:
    """``site`` with the id authority its state keeps (``head``: ``None`` for a new or unreadable state).

    A site that kept none yet adopts the one its ids have today. Raises ``ConfigError``
    when ``id_authority`` would change the ids of an existing site, unless ``rebuild``.
    """
    kept = None if head is None else head.id_authority
    if kept is None and head is not None and head.total:
        kept = default_authority(site)  # an existing site from before authorities were kept
    wanted = site.id_authority or None
    if kept is not None and wanted is not None and wanted != kept and not rebuild:
        raise ConfigError(
            f"id_authority is {wanted!r}, but the entry ids of this site are under {kept!r}, fixed at its first "
            "run: changing it gives every summary a new id, and feed readers show each one again. "
            f"Remove the id_authority setting (or set it to {kept!r}) to keep the ids; to change them on purpose, "
            "publish with --rebuild and the new id_authority"
        )
    return dataclasses.replace(site, id_authority=wanted or kept or default_authority(site))


def published_site(site: Site, state: ObjectStore) -> Site:
    """``site`` with the id authority of what is published from ``state``: for the newsletter and the endpoints."""
    found = state.read(HEAD_KEY)
    try:
        kept = None if found is None else HEAD.validate_json(found[0]).id_authority
    except ValidationError as error:
        raise StorageError(f"state {state.url.rstrip('/')}/{HEAD_KEY} is damaged: {error}") from error
    return dataclasses.replace(site, id_authority=kept or site.id_authority or default_authority(site))
