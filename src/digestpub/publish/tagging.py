"""Tags across summaries: slugs that older runs published, and slugs two different tags share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from digestpub.model import Problem, SummaryRef, TagInfo
from digestpub.text import tag_identity, tag_slug


def kept_slugs(published: Mapping[str, TagInfo]) -> dict[str, str]:
    """The published slugs that the current rule would give another slug, by tag identity.

    A tag keeps its URL, which readers follow: ``C++`` published as ``c`` (before
    ``+`` counted) stays ``c``, where a new ``C++`` is ``c-plus-plus``.
    """
    return {tag_identity(tag.name): slug for slug, tag in published.items() if tag_slug(tag.name) != slug}


def shared_slugs(refs: Iterable[SummaryRef], names: dict[str, str]) -> Iterator[Problem]:
    """A warning for each tag whose slug another tag already has (``names``: each slug's first name).

    Tags that differ only in case or script are one tag; any other pair shares a
    page by accident. ``names`` gains the slugs first named in ``refs``.
    """
    warned: set[tuple[str, str]] = set()
    for ref in refs:
        for name, slug in zip(ref.tags, ref.tag_slugs, strict=True):
            first = names.setdefault(slug, name)
            if first != name and (slug, name) not in warned and tag_identity(first) != tag_identity(name):
                warned.add((slug, name))
                reason = f"tag `{name}` shares the page tags/{slug}/ with `{first}`: rename one to keep them apart"
                yield Problem(key=ref.source_key, line=ref.source_line, outcome="warning", reason=reason)
