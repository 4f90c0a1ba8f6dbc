"""A feed of any set of tags (``GET /feed?tags=a,b&format=atom``), built from the published tag feeds.

Each tag's JSON Feed holds everything about its items, so the union is chosen
from those: newest ``date_published`` first, each id once in its newest
``date_modified``, the newest ``feed_size``. Entries are not rendered again:
each feed format (its ``Combining``) cuts them out of the tag's own document
in that format, so a reader that moves from the tag feeds to the combined one
meets the same ids and the same entries. The combined document depends only on
what was published, so its bytes (and ``ETag``) change only when a tag feed does.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from digestpub.errors import BadRequest
from digestpub.model import MAX_TAG_LENGTH, MAX_TAGS
from digestpub.ports import ObjectStore
from digestpub.render import feed_formats
from digestpub.render import jsonfeed as json_kind
from digestpub.render.kinds import CombinedView, Kind
from digestpub.site import Site
from digestpub.text import tag_slug
from digestpub.words import words_for

log = logging.getLogger("digestpub.publish.combined")

_READERS = 8
"""Tag feeds read at once: each read is a round trip to S3."""


class UnknownFeedTags(BadRequest):
    """Tags with no published tag feed; ``tags`` lists them as the request named them."""

    def __init__(self, tags: list[str]) -> None:
        super().__init__(400, f"unknown tag {', '.join(tags)}: the digest publishes no such feed")
        self.tags = tags


@dataclass(frozen=True)
class CombinedFeed:
    body: bytes
    content_type: str

    @property
    def etag(self) -> str:
        """A strong validator of the body: equal bytes, equal tag, on every function instance."""
        return '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class _Chosen:
    item: Mapping[str, Any]
    """The JSON Feed item of the entry's newest version."""
    holders: tuple[str, ...]
    """The slugs whose feeds hold it, the one with the newest version first."""


def requested_slugs(values: Iterable[str]) -> dict[str, str]:
    """The tags a request names (comma-separated, in repeated parameters, or both) by slug, each
    with the word that named it first (``""``: the first word with no slug); ``BadRequest`` for
    none, too many or an overlong one."""
    words = [word.strip() for value in values for word in value.split(",") if word.strip()]
    if not words:
        raise BadRequest(400, "name at least one tag: feed?tags=a,b&format=atom")
    distinct = set(words)
    if len(distinct) > MAX_TAGS:
        raise BadRequest(400, f"{len(distinct)} tags: a feed follows at most {MAX_TAGS}")
    for word in distinct:
        if len(word) > MAX_TAG_LENGTH:
            raise BadRequest(400, f"tag {word[:20]!r}… is longer than {MAX_TAG_LENGTH} characters")
    slugs: dict[str, str] = {}
    for word in words:
        slugs.setdefault(tag_slug(word), word)
    return dict(sorted(slugs.items()))


def newest_items(feeds: Mapping[str, Sequence[Mapping[str, Any]]], size: int) -> list[_Chosen]:
    """The newest ``size`` items of the union by ``date_published``, each id once in its newest version."""
    newest: dict[str, Mapping[str, Any]] = {}
    holders: dict[str, list[str]] = {}
    for slug, items in feeds.items():
        for item in items:
            entry = item["id"]
            held = newest.get(entry)
            holders.setdefault(entry, []).append(slug)
            if held is None or _moment(item["date_modified"]) > _moment(held["date_modified"]):
                newest[entry] = item
                holders[entry].insert(0, holders[entry].pop())
    ordered = sorted(newest.values(), key=lambda item: (_moment(item["date_published"]), item["id"]), reverse=True)
    return [_Chosen(item, tuple(holders[item["id"]])) for item in ordered[:size]]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


class CombinedFeeds:
    """Builds combined feeds from the tag feeds in ``store`` (the destination, read only)."""

    def __init__(self, store: ObjectStore, site: Site, cache_control: str) -> None:
        self.store = store
        self.site = site
        self.cache_control = cache_control

    def build(self, tags: Iterable[str], format_name: str) -> CombinedFeed:
        """The feed of ``tags`` in the format named ``format_name``; ``BadRequest`` (``UnknownFeedTags``)
        for what cannot be served."""
        kind = feed_formats.named(format_name)
        if kind is None or kind.combining is None:
            formats = ", ".join(known.name for known in feed_formats.offered())
            raise BadRequest(400, f"unknown format {format_name[:20]!r}: use {formats}")
        wanted = requested_slugs(tags)
        # A word with no slug (punctuation only) names no feed: it is not looked for.
        paths = [json_kind.KIND.path(self.site, slug, None) if slug else "" for slug in wanted]
        documents = self._read(paths)
        missing = [word for (slug, word), document in zip(wanted.items(), documents, strict=True) if document is None]
        if missing:
            raise UnknownFeedTags(missing)
        read = dict(zip(paths, documents, strict=True))
        feeds = {slug: json_kind.published_items(read[path] or b"") for slug, path in zip(wanted, paths, strict=True)}
        chosen = newest_items(feeds, self.site.feed_size)
        selection = _Selection(self.site, tuple(wanted), _names(feeds), chosen, kind)
        frame = kind.combining.frame(selection.view)
        entries = self.published_entries(selection, kind.combining.entries, read)
        return CombinedFeed(kind.fill(frame, entries), kind.content_type)

    def _read(self, keys: Sequence[str]) -> list[bytes | None]:
        def read(key: str) -> bytes | None:
            found = self.store.read(key) if key else None
            return None if found is None else found[0]

        if len(keys) < 2:
            return [read(key) for key in keys]
        with ThreadPoolExecutor(min(len(keys), _READERS), thread_name_prefix="digestpub-feed") as pool:
            return list(pool.map(read, keys))

    def published_entries(
        self, selection: _Selection, find: Callable[[bytes], dict[str, bytes]], read: Mapping[str, bytes | None]
    ) -> list[bytes]:
        """The chosen entries as the tag documents of ``selection.kind`` published them, newest first;
        ``read``: documents already read, by path."""
        published: dict[str, dict[str, bytes]] = {}

        def load(slugs: Iterable[str]) -> None:
            unread = sorted(set(slugs) - published.keys())
            paths = [selection.kind.path(self.site, slug, None) for slug in unread]
            fresh = iter(self._read([path for path in paths if path not in read]))
            documents = [read[path] if path in read else next(fresh) for path in paths]
            published.update(
                {slug: find(document) if document else {} for slug, document in zip(unread, documents, strict=True)}
            )

        load(chosen.holders[0] for chosen in selection.chosen)
        # The other feeds that hold an entry are read only if its newest one has lost it since.
        lost = [chosen for chosen in selection.chosen if chosen.item["id"] not in published[chosen.holders[0]]]
        load(slug for chosen in lost for slug in chosen.holders)
        entries = []
        for chosen in selection.chosen:
            entry = chosen.item["id"]
            found = next((published[slug][entry] for slug in chosen.holders if entry in published.get(slug, {})), None)
            if found is None:  # a publish run rewrote the documents between the two reads
                log.warning("combined feed: %s is in no %s document of %s", entry, selection.kind.name, chosen.holders)
            else:
                entries.append(found)
        return entries


@dataclass(frozen=True)
class _Selection:
    site: Site
    slugs: tuple[str, ...]
    names: Mapping[str, str]
    chosen: list[_Chosen]
    kind: Kind

    @property
    def view(self) -> CombinedView:
        site = self.site
        tags = ", ".join(self.names.get(slug, slug) for slug in self.slugs)
        words = words_for(site.lang)
        return CombinedView(
            site=site,
            feed_id=site.tag_id(f"feed/tags/{','.join(self.slugs)}"),
            title=words["feed_of_tag"].format(site=site.title, tag=tags),
            description=words["tags_heading"].format(tags=tags),
            # Slugs only, so every way of asking names one URL.
            url=self.kind.tags_url(site, self.slugs),
            updated=max((_moment(chosen.item["date_modified"]) for chosen in self.chosen), default=None),
        )


def _names(feeds: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, str]:
    """Each slug's tag as its summaries write it (a feed shows ``Мультимодальность``, not its slug)."""
    names: dict[str, str] = {}
    for slug, items in feeds.items():
        for item in items:
            name = next((tag for tag in item.get("tags", ()) if tag_slug(tag) == slug), None)
            if name is not None:
                names[slug] = name
                break
    return names
