"""An issue rendered once per segment (tag set and language), ready to personalise.

Jinja2 writes MJML, mjml-python (Rust MRML) compiles it to HTML. The parts that
differ per recipient (the address and the unsubscribe and preference links) are
left as markers in one footer block, so a segment is rendered once and each
recipient costs a few string replacements (see ``newsletter.message``).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mjml import mjml2html

from digestpub.errors import NewsletterError
from digestpub.model import Summary
from digestpub.newsletter.issues import Issue
from digestpub.render import Output
from digestpub.site import ALL_FEED, HTML_TYPE, NEWSLETTER_ARCHIVE_PAGE, Site
from digestpub.templates import environment
from digestpub.words import long_date, papers_word, words_for

EMAIL_MARK = "\x1a:email:\x1a"
UNSUBSCRIBE_MARK = "\x1a:unsubscribe:\x1a"
PREFERENCES_MARK = "\x1a:preferences:\x1a"
_FOOTER_MARK = "DIGESTPUB-FOOTER-3f9c2e"
_BLOCK_END = re.compile(r"</(p|li|h[1-6]|pre|blockquote|tr)>|<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n{3,}")
_ELEMENT = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*?(/?)>")
_VOID = frozenset({"br", "hr", "img", "wbr", "area", "col", "embed", "source", "track", "input"})

HTML_BUDGET = 96_000
"""Bytes of an email's HTML part, footer included. Gmail clips a part past about 102 KB,
and what it cuts is the footer with the unsubscribe link."""
SUMMARY_BUDGET = 6_000
"""Bytes of one summary's HTML in an email; a longer one is cut at a paragraph, with a link to read on."""
_PERSONAL_ROOM = 2_000
"""What the address and the two token links may add to the footer when personalised."""


@dataclass(frozen=True)
class Segment:
    """One rendering of an issue: every recipient with these tags and language."""

    key: str
    tags: tuple[str, ...]
    lang: str
    summaries: tuple[Summary, ...]
    shown: int
    subject: str
    preheader: str
    web_path: str
    web_url: str
    html_head: str
    html_tail: str
    footer_html: str
    text_head: str
    text_tail: str
    footer_text: str
    web_copy: str = field(repr=False)

    @property
    def empty(self) -> bool:
        return not self.summaries


def segment_key(tags: tuple[str, ...], lang: str) -> str:
    """A file-name-safe name for a tag set: readable when short, hashed when long."""
    joined = "+".join(tags) if tags else "all"
    if len(joined) > 80:
        joined = "tags-" + hashlib.blake2b(joined.encode(), digest_size=8).hexdigest()
    return f"{joined}.{lang}"


def web_copy_path(issue_id: str, tags: tuple[str, ...], lang: str) -> str:
    return f"newsletter/{issue_id}/{segment_key(tags, lang)}.html"


def subject_line(site: Site, lang: str, frequency: str, day: date, count: int) -> str:
    """An issue's subject: the site, how many new papers, and the day or week."""
    return words_for(lang)[f"subject_{frequency}"].format(
        site=site.title,
        count=count,
        new_papers=papers_word(lang, count, new=True),
        date=long_date(lang, day),
    )


def matching(summaries: list[Summary], tags: tuple[str, ...]) -> list[Summary]:
    """Summaries sharing a slug with ``tags``; no tags means every summary."""
    if not tags:
        return list(summaries)
    wanted = set(tags)
    return [summary for summary in summaries if wanted.intersection(summary.tag_slugs)]


def clip_html(fragment: str, budget: int = SUMMARY_BUDGET) -> tuple[str, bool]:
    """``fragment`` cut after its last whole top-level block within ``budget`` bytes; whether it was cut.

    A first block already over the budget becomes its plain text, cut at a word.
    """
    if len(fragment.encode()) <= budget:
        return fragment, False
    depth = cut = 0
    for element in _ELEMENT.finditer(fragment):
        closing, name, self_closing = element.groups()
        if name.lower() in _VOID or self_closing:
            continue
        depth = max(0, depth - 1) if closing else depth + 1
        if depth == 0:
            if len(fragment[: element.end()].encode()) > budget:
                break
            cut = element.end()
    if cut:
        return fragment[:cut], True
    words = html_to_text(fragment).encode()[: budget // 2].decode(errors="ignore").rsplit(None, 1)[0]
    return f"<p>{html.escape(words)} …</p>", True


def html_to_text(fragment: str) -> str:
    text = _BLOCK_END.sub("\n", fragment.replace("<li>", "<li>• "))
    text = html.unescape(_TAG.sub("", text))
    return _BLANK_LINES.sub("\n\n", "\n".join(line.strip() for line in text.splitlines())).strip()


class IssueRenderer:
    """Renders and remembers each segment of one issue."""

    def __init__(
        self,
        site: Site,
        issue: Issue,
        max_items: int,
        on_segment: Callable[[Segment], None] | None = None,
    ) -> None:
        self.site = site
        self.issue = issue
        self.max_items = max_items
        self.on_segment = on_segment
        """Called with each new segment: the web copy is published before any email links to it."""
        self._segments: dict[tuple[tuple[str, ...], str], Segment] = {}
        self._environment = environment()

    def segments(self) -> list[Segment]:
        return list(self._segments.values())

    def segment(self, tags: tuple[str, ...], lang: str) -> Segment:
        cache_key = (tags, lang)
        if cache_key not in self._segments:
            segment = self._segments[cache_key] = self._render(tags, lang)
            if self.on_segment is not None and not segment.empty:
                self.on_segment(segment)
        return self._segments[cache_key]

    def _render(self, tags: tuple[str, ...], lang: str) -> Segment:
        site, issue = self.site, self.issue
        words = words_for(lang)
        summaries = matching(issue.summaries, tags)
        candidates = summaries[: self.max_items]
        clips = [clip_html(summary.summary_html) for summary in candidates]
        key = segment_key(tags, lang)
        web_path = web_copy_path(issue.id, tags, lang)
        web_url = site.url(web_path)
        if len(tags) == 1:
            heading = words["tag_heading"].format(tag=self._tag_name(tags[0], summaries))
        else:
            heading = words["new_papers"]
        subject = subject_line(site, lang, issue.frequency, issue.issue_date or issue.window_end.date(), len(summaries))
        footer = self._environment.get_template("newsletter/footer.html.j2")
        footer_text = self._environment.get_template("newsletter/footer.txt.j2")
        personal = {
            "personal": True,
            "words": words,
            "email": EMAIL_MARK,
            "unsubscribe_url": UNSUBSCRIBE_MARK,
            "preferences_url": PREFERENCES_MARK,
            "archive_url": site.url(NEWSLETTER_ARCHIVE_PAGE),
        }
        footer_html = footer.render(personal).strip()

        def context_for(shown: int) -> dict[str, Any]:
            more = len(summaries) - shown
            return {
                "site": site,
                "words": words,
                "lang": lang,
                "subject": subject,
                "preheader": " · ".join(summary.title for summary in candidates[: min(shown, 3)]),
                "heading": heading,
                "items": candidates[:shown],
                "bodies": [body for body, _ in clips[:shown]],
                "clipped": [was_clipped for _, was_clipped in clips[:shown]],
                "more": more,
                "more_line": words["more"].format(count=more, papers=papers_word(lang, more)),
                "web_url": web_url,
                "footer": _FOOTER_MARK,
            }

        room = HTML_BUDGET - len(footer_html.encode()) - _PERSONAL_ROOM
        shown, compiled = self._fit(context_for, len(candidates), room)
        context = context_for(shown)
        # The web copy is where "and N more" and "read on" lead: every paper of the segment, whole.
        everything = (
            compiled
            if not context["more"] and not any(context["clipped"])
            else self._compile(
                {
                    **context,
                    "items": summaries,
                    "bodies": [summary.summary_html for summary in summaries],
                    "clipped": [False] * len(summaries),
                    "more": 0,
                }
            )
        )
        text = self._environment.get_template("newsletter/issue.txt.j2").render(
            context, texts=[html_to_text(body) for body in context["bodies"]]
        )
        public = {
            "personal": False,
            "words": words,
            "subscribe_url": site.page_url(ALL_FEED) + "#subscribe",
            "archive_url": site.url(NEWSLETTER_ARCHIVE_PAGE),
        }
        html_head, html_tail = _split(compiled, _FOOTER_MARK)
        text_head, text_tail = _split(text, _FOOTER_MARK)
        return Segment(
            key=key,
            tags=tags,
            lang=lang,
            summaries=tuple(summaries),
            shown=shown,
            subject=subject,
            preheader=context["preheader"],
            web_path=web_path,
            web_url=web_url,
            html_head=html_head,
            html_tail=html_tail,
            footer_html=footer_html,
            text_head=text_head,
            text_tail=text_tail,
            footer_text=footer_text.render(personal).strip(),
            web_copy=everything.replace(_FOOTER_MARK, footer.render(public).strip()),
        )

    def _fit(self, context_for: Callable[[int], dict[str, Any]], count: int, room: int) -> tuple[int, str]:
        """The most items (newest first) whose compiled HTML, footer marker aside, takes ``room`` bytes at most."""
        compiled = self._compile(context_for(count))
        size = len(compiled.encode()) - len(_FOOTER_MARK)
        if size <= room or count == 0:
            return count, compiled
        # Each item's share of the overshoot, estimated from an issue without items; then
        # one item less at a time until it fits (an estimate is only an estimate).
        bare = len(self._compile(context_for(0)).encode()) - len(_FOOTER_MARK)
        per_item = (size - bare) / count
        shown = max(0, min(count - 1, int((room - bare) / per_item))) if per_item > 0 else 0
        while True:
            compiled = self._compile(context_for(shown))
            if shown == 0 or len(compiled.encode()) - len(_FOOTER_MARK) <= room:
                return shown, compiled
            shown -= 1

    def _compile(self, context: dict[str, Any]) -> str:
        source = self._environment.get_template("newsletter/issue.mjml.j2").render(context)
        try:
            return str(mjml2html(source, disable_comments=True))
        except ValueError as error:
            raise NewsletterError(f"the newsletter template does not compile as MJML: {error}") from error

    @staticmethod
    def _tag_name(slug: str, summaries: list[Summary]) -> str:
        for summary in summaries:
            for name, tag_slug in zip(summary.tags, summary.tag_slugs, strict=True):
                if tag_slug == slug:
                    return name
        return slug


def web_copy(segment: Segment) -> Output:
    """The segment as sent, minus anything personal, for the "view in browser" link."""
    return Output(segment.web_path, segment.web_copy.encode(), HTML_TYPE)


def _split(document: str, marker: str) -> tuple[str, str]:
    head, found, tail = document.partition(marker)
    if not found:
        raise NewsletterError(f"the newsletter template lost its footer marker {marker}")
    return head, tail
