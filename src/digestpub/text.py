"""Text at the input boundary: XML-safe strings, Markdown to safe HTML, slugs, URLs.

Everything untrusted passes through here once: its text when a summary is read,
its Markdown when the summary is first shown (``Summary.summary_html``). The rest
of digestpub can then treat text as clean.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import nh3
import pyromark
from slugify import slugify

# XML 1.0 forbids these code points; feedgen accepts them and then fails at
# serialisation, so they are removed before anything else sees the text.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_XML_SAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# scheme://[userinfo@]host[:port][/path][?query][#fragment], nothing blank or
# control inside; the host must hold at least one character besides dots.
_SAFE_URL = re.compile(
    r"(?i:https?)://(?:[^\s/?#@\x00-\x1f]+@)?(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\x00-\x1f\[\]]*[^\s/?#@:.\x00-\x1f\[\]][^\s/?#@:\x00-\x1f\[\]]*)(?::\d{1,5})?(?:[/?#][^\s\x00-\x1f]*)?\Z"
)

# Unicode's Default_Ignorable_Code_Point set (zero-width spaces and joiners,
# soft hyphens, BOMs, bidirectional marks, fillers, variation selectors, tags)
# and U+2800, which fonts draw as an empty cell: none of it shows as a glyph,
# so text made only of these and whitespace reads as empty.
_BLANK = re.compile(
    "[\\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]*\\Z"
)

# Bidirectional embedding, override and isolate controls can make text display as
# something else than it says (CVE-2021-42574); zero-width spaces hide in words.
# Joiners (U+200C, U+200D) stay: scripts and emoji need them.
_HIDDEN_CONTROLS = re.compile("[\u200b\u202a-\u202e\u2066-\u2069\ufeff]")

# BCP 47's shape, loosely: a 2-3 letter language, then subtags of 1-8 letters or digits.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*\Z")

_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h3", "h4", "h5",
        "h6", "hr", "i", "li", "ol", "p", "pre", "s", "strong", "sub", "sup",
        "table", "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}
_CLEAN_OPTIONS: dict[str, object] = {
    "tags": set(_ALLOWED_TAGS),
    "attributes": {tag: set(names) for tag, names in _ALLOWED_ATTRIBUTES.items()},
    "url_schemes": set(_LINK_SCHEMES),
    "link_rel": "noopener noreferrer nofollow",
    "strip_comments": True,
}
# An <a> whose href nh3 removed (a refused scheme), with the rel it still adds:
# invalid HTML, and a link to nowhere. nh3 writes every attribute as name="value",
# and the HTML parser under it never nests one <a> in another.
_LINK_WITHOUT_TARGET = re.compile(r'<a(?: (?!href=)[a-z]+="[^"]*")*>(.*?)</a>', re.DOTALL)
_MARKDOWN_OPTIONS = (
    pyromark.Options.ENABLE_TABLES | pyromark.Options.ENABLE_STRIKETHROUGH | pyromark.Options.ENABLE_SMART_PUNCTUATION
)
MAX_SLUG_LENGTH = 64
# Built once: passing the options to nh3.clean converts them on every call,
# which doubles the cost of cleaning a summary.
_CLEANER = nh3.Cleaner(**_CLEAN_OPTIONS)  # type: ignore[arg-type]


def counted(count: int, noun: str, plural: str = "") -> str:
    """A count with its English noun in agreement: ``1 subscriber``, ``2 subscribers``, ``1 summary``."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def clean_text(value: str) -> tuple[str, bool]:
    """Remove what XML cannot carry; the flag says whether anything was removed."""
    if _NOT_XML_SAFE.search(value) is None:
        return value, False
    cleaned = _LONE_SURROGATE.sub("\ufffd", value)
    cleaned = _XML_FORBIDDEN.sub("", cleaned)
    return cleaned, cleaned != value


def is_xml_safe(value: str) -> bool:
    return _NOT_XML_SAFE.search(value) is None


_NUMERIC_REFERENCE = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));?")


def references_unsafe_characters(value: str) -> bool:
    """Whether a numeric character reference (``&#1;``, ``&#xFFFE;``) names what XML forbids."""
    for match in _NUMERIC_REFERENCE.finditer(value):
        code = int(match[1], 16) if match[1] else int(match[2])
        if code > 0x10FFFF or not is_xml_safe(chr(code)):
            return True
    return False


def plain_text(value: str) -> str:
    """Text with any markup dropped and whitespace folded: titles, names, tags.

    Unescaping can reveal markup (``&lt;script&gt;``) or characters XML forbids
    (``&#1;``), so the text is cleaned until nothing changes.
    """
    for _ in range(4):
        if "<" not in value and "&" not in value:
            break
        unescaped = html.unescape(nh3.clean(value, tags=set()))
        if unescaped == value:
            break
        value = unescaped
    else:
        # Still changing after four rounds: drop what could be markup outright.
        value = value.replace("<", "").replace(">", "")
    # split() breaks at exactly what \s matches, at a third of the cost of the regex.
    return " ".join(clean_text(value)[0].split())


def without_hidden_controls(value: str) -> str:
    """``value`` without bidirectional controls and zero-width spaces, for names shown as plain text."""
    cleaned = _HIDDEN_CONTROLS.sub("", value)
    # A space each side of a removed control would now be two.
    return value if cleaned == value else " ".join(cleaned.split())


def is_blank(value: str) -> bool:
    """Whether nothing would be seen: only whitespace and invisible characters, or nothing at all."""
    # A match stops at the first visible character: a long summary costs no more than a short one.
    return _BLANK.match(value) is not None


def is_safe_url(value: str) -> bool:
    """An absolute http(s) URL with a host and no whitespace or control characters."""
    return _SAFE_URL.match(value) is not None


def is_language_tag(value: str) -> bool:
    return _LANGUAGE_TAG.match(value) is not None


def markdown_to_safe_html(markdown: str, base_url: str) -> str:
    """Render Markdown once and sanitise the result with an explicit allow-list.

    The parser passes raw HTML through and does not check link targets, so nh3 is
    the last step; relative links are made absolute against the summary's own page.
    """
    # Character references can spell what XML forbids (&#1;): clean after rendering.
    rendered = clean_text(pyromark.html(markdown, options=_MARKDOWN_OPTIONS))[0]
    cleaned = _CLEANER.clean(rendered)
    if not any(_is_relative(cleaned, at + 6) for at in _find_all(cleaned, 'href="')):
        return _unwrap_links_without_target(cleaned).strip()

    # Rare: a relative link. A Python attribute filter costs more than the whole
    # clean, so only these summaries pay for it.
    def absolute_links(tag: str, attribute: str, value: str) -> str | None:
        if attribute != "href":
            return value
        absolute = urljoin(base_url, value)
        return absolute if urlsplit(absolute).scheme.lower() in _LINK_SCHEMES else None

    cleaner = nh3.Cleaner(**_CLEAN_OPTIONS, attribute_filter=absolute_links)  # type: ignore[arg-type]
    return _unwrap_links_without_target(cleaner.clean(rendered)).strip()


def _unwrap_links_without_target(html: str) -> str:
    if html.count("<a ") == html.count('<a href="'):
        # Every link leads with its href, as nh3 keeps Markdown's: the common case, at no regex cost.
        return html
    return _LINK_WITHOUT_TARGET.sub(r"\1", html)


def _find_all(text: str, needle: str) -> Iterator[int]:
    at = text.find(needle)
    while at >= 0:
        yield at
        at = text.find(needle, at + 1)


def _is_relative(html: str, at: int) -> bool:
    # nh3 writes every attribute as name="value", so a plain prefix test suffices.
    return not html.startswith(("http://", "https://", "mailto:"), at)


# What slugify would drop and tells tags apart: C++, C# and C are three tags.
_KEPT_APART = [["+", "-plus-"], ["#", "-sharp-"]]


@lru_cache(maxsize=8192)
def tag_slug(tag: str) -> str:
    """Lowercase ASCII slug of a tag; Cyrillic is transliterated, path tricks vanish."""
    return slugify(tag, max_length=MAX_SLUG_LENGTH, word_boundary=True, replacements=_KEPT_APART)


@lru_cache(maxsize=8192)
def tag_identity(tag: str) -> str:
    """The same for tags that differ only in case or script (``Вопрос``, ``vopros``): they are one tag.

    Two tags of one slug and different identities are a collision to report.
    """
    return "".join(char.lower() if char.isascii() else _transliterated(char) for char in " ".join(tag.split()))


@lru_cache(maxsize=4096)
def _transliterated(char: str) -> str:
    return slugify(char, regex_pattern=r"\s+", separator=" ")
