"""A feed of any set of tags (``GET /feed?tags=a,b&format=atom``), built from the published tag feeds.

Each tag's JSON Feed holds everything about its items, so the union is chosen
from those: newest ``date_published`` first, each id once in its newest
``date_modified``, the newest ``feed_size``. Atom and RSS entries are not
rendered again: they are cut out of the tag's own ``atom.xml`` or ``rss.xml``,
so a reader that moves from the tag feeds to the combined one meets the same
ids and the same entries. The combined document depends only on what was
published, so its bytes (and ``ETag``) change only when a tag feed does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from lxml import etree  # type: ignore[import-untyped]

from digestpub.errors import BadRequest, StorageError
from digestpub.model import MAX_TAG_LENGTH, MAX_TAGS
from digestpub.ports import ObjectStore
from digestpub.render import atom as atom_kind
from digestpub.render import feed_formats, framed
from digestpub.render import jsonfeed as json_kind
from digestpub.render import rss as rss_kind
from digestpub.render.feeds import feed_generator
from digestpub.render.kinds import FeedView, Kind
from digestpub.site import ALL_FEED, Site
from digestpub.text import tag_slug
from digestpub.words import words_for

log = logging.getLogger("digestpub.publish.combined")

_ATOM = "{http://www.w3.org/2005/Atom}"
_READERS = 8
"""Tag feeds read at once: each read is a round trip to S3."""
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=False)


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
        if kind is None or kind.name not in _RENDERERS:
            formats = ", ".join(known.name for known in feed_formats.FEEDS if known.name in _RENDERERS)
            raise BadRequest(400, f"unknown format {format_name[:20]!r}: use {formats}")
        wanted = requested_slugs(tags)
        # A word with no slug (punctuation only) names no feed: it is not looked for.
        documents = self._read([json_kind.KIND.path(self.site, slug, None) if slug else "" for slug in wanted])
        missing = [word for (slug, word), document in zip(wanted.items(), documents, strict=True) if document is None]
        if missing:
            raise UnknownFeedTags(missing)
        feeds = {slug: _items(document) for slug, document in zip(wanted, documents, strict=True)}
        chosen = newest_items(feeds, self.site.feed_size)
        selection = _Selection(self.site, tuple(wanted), _names(feeds), chosen, kind)
        return CombinedFeed(_RENDERERS[kind.name](self, selection), kind.content_type)

    def _read(self, keys: Sequence[str]) -> list[bytes | None]:
        def read(key: str) -> bytes | None:
            found = self.store.read(key) if key else None
            return None if found is None else found[0]

        if len(keys) < 2:
            return [read(key) for key in keys]
        with ThreadPoolExecutor(min(len(keys), _READERS), thread_name_prefix="digestpub-feed") as pool:
            return list(pool.map(read, keys))

    def published_entries(self, selection: _Selection, find: Callable[[bytes], dict[str, bytes]]) -> list[bytes]:
        """The chosen entries as the tag documents of ``selection.kind`` published them, newest first."""
        published: dict[str, dict[str, bytes]] = {}

        def load(slugs: Iterable[str]) -> None:
            unread = sorted(set(slugs) - published.keys())
            documents = self._read([selection.kind.path(self.site, slug, None) for slug in unread])
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
    def url(self) -> str:
        """The feed's own address: slugs only, so every way of asking names one URL."""
        return self.kind.tags_url(self.site, self.slugs)

    @property
    def feed_id(self) -> str:
        return self.site.tag_id(f"feed/tags/{','.join(self.slugs)}")

    @property
    def title(self) -> str:
        tags = ", ".join(self.names.get(slug, slug) for slug in self.slugs)
        return words_for(self.site.lang)["feed_of_tag"].format(site=self.site.title, tag=tags)

    @property
    def description(self) -> str:
        tags = ", ".join(self.names.get(slug, slug) for slug in self.slugs)
        return words_for(self.site.lang)["tags_heading"].format(tags=tags)

    @property
    def updated(self) -> datetime | None:
        return max((_moment(chosen.item["date_modified"]) for chosen in self.chosen), default=None)


def _items(document: bytes | None) -> list[Mapping[str, Any]]:
    try:
        items = json.loads(document or b"")["items"]
    except (ValueError, KeyError, TypeError) as error:
        raise StorageError(f"a published tag feed is not a JSON Feed: {error}") from error
    return list(items)


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


def _header(selection: _Selection) -> str:
    """The Atom or RSS document around the entries, from the tag feeds' own feedgen header."""
    view = FeedView(selection.site, ALL_FEED, None, {}, selection.updated)
    generator = feed_generator(view, selection.kind)
    generator.id(selection.feed_id)
    generator.title(selection.title)
    generator.subtitle(selection.description)
    # RSS takes its channel <link> from the last link, and the combined feed is never pushed: no hubs.
    self_link = {"href": selection.url, "rel": "self", "type": selection.kind.media_type}
    generator.link(
        [self_link, {"href": selection.site.base_url, "rel": "alternate", "type": "text/html"}], replace=True
    )
    document: bytes = (generator.atom_str if selection.kind is atom_kind.KIND else generator.rss_str)(pretty=False)
    return document.decode()


def _atom(feeds: CombinedFeeds, selection: _Selection) -> bytes:
    frame = framed(_header(selection), "</feed>")
    return atom_kind.KIND.fill(frame, feeds.published_entries(selection, _atom_entries))


def _rss(feeds: CombinedFeeds, selection: _Selection) -> bytes:
    frame = framed(rss_kind.with_dc(_header(selection)), "</channel>")
    return rss_kind.KIND.fill(frame, feeds.published_entries(selection, _rss_items))


def _json(feeds: CombinedFeeds, selection: _Selection) -> bytes:
    site = selection.site
    header = json_kind.json_header(site, selection.title, site.base_url, selection.url, selection.description)
    items = [orjson.dumps(chosen.item) for chosen in selection.chosen]
    return json_kind.KIND.fill(json_kind.json_frame(header), items)


def _atom_entries(document: bytes) -> dict[str, bytes]:
    return _entries(document, f"{_ATOM}entry", f"{_ATOM}id")


def _rss_items(document: bytes) -> dict[str, bytes]:
    return _entries(document, "item", "guid")


def _entries(document: bytes, tag: str, id_tag: str) -> dict[str, bytes]:
    """Each entry of a published document by its id, serialised with the namespaces it uses."""
    try:
        root = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError as error:
        raise StorageError(f"a published tag feed is not well-formed XML: {error}") from error
    return {element.findtext(id_tag): _standalone(element) for element in root.iter(tag) if element.findtext(id_tag)}


def _standalone(element: Any) -> bytes:
    """The element's XML declaring only the namespaces it uses (lxml would repeat every one in scope)."""
    element = copy.deepcopy(element)
    etree.cleanup_namespaces(element)
    return bytes(etree.tostring(element, encoding="utf-8", with_tail=False))


_RENDERERS: dict[str, Callable[[CombinedFeeds, _Selection], bytes]] = {
    atom_kind.KIND.name: _atom,
    rss_kind.KIND.name: _rss,
    json_kind.KIND.name: _json,
}
"""How each feed format's combined feed is built: from its own published entries (or, JSON Feed's, items)."""
