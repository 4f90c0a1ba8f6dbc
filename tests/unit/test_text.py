"""Unit tests of ``digestpub.text``: the one place untrusted text is made safe."""

from __future__ import annotations

import re

import pytest

from digestpub.text import (
    MAX_SLUG_LENGTH,
    clean_text,
    is_blank,
    is_safe_url,
    markdown_to_safe_html,
    plain_text,
    tag_identity,
    tag_slug,
)

BASE = "https://aidigest.example/papers/2611.00001"
REL = 'rel="noopener noreferrer nofollow"'
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


# --- clean_text -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected", "changed"),
    [
        pytest.param("plain text", "plain text", False, id="plain"),
        pytest.param("Кириллица и 😀", "Кириллица и 😀", False, id="unicode-kept"),
        pytest.param("tab\tnewline\ncr\r", "tab\tnewline\ncr\r", False, id="xml-allowed-whitespace"),
        pytest.param("a\x00b", "ab", True, id="nul"),
        pytest.param("a\x0bb\x0cc", "abc", True, id="vt-ff"),
        pytest.param("\x01\x08\x0e\x1f", "", True, id="c0-controls"),
        pytest.param("x\ufffey\uffff", "xy", True, id="noncharacters"),
        pytest.param("a\ud800b", "a\ufffdb", True, id="lone-high-surrogate"),
        pytest.param("\udfff", "\ufffd", True, id="lone-low-surrogate"),
        pytest.param("\x7f\x85\u2028", "\x7f\x85\u2028", False, id="xml-allowed-oddities"),
        pytest.param("", "", False, id="empty"),
    ],
)
def test_clean_text(value: str, expected: str, changed: bool) -> None:
    assert clean_text(value) == (expected, changed)


def test_clean_text_result_is_always_xml_safe_and_encodable() -> None:
    every_bad = "".join(chr(c) for c in range(0x20)) + "\ud800\udbff\udc00\udfff\ufffe\uffff"
    cleaned, changed = clean_text("start" + every_bad + "end")
    assert changed
    assert _XML_FORBIDDEN.search(cleaned) is None
    assert cleaned.startswith("start") and cleaned.endswith("end")
    cleaned.encode("utf-8")  # no lone surrogate survives


# --- plain_text -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("Just a title", "Just a title", id="plain"),
        pytest.param("<b>bold</b> text", "bold text", id="tags-dropped"),
        pytest.param("a   b\n\t c", "a b c", id="whitespace-folded"),
        pytest.param("  padded  ", "padded", id="stripped"),
        pytest.param("<script>alert(1)</script>Title", "Title", id="script-and-content-dropped"),
        pytest.param('<img src=x onerror="alert(1)">Title', "Title", id="event-handler-dropped"),
        pytest.param('<a href="javascript:alert(1)">Title</a>', "Title", id="js-link-dropped"),
        pytest.param("AT&amp;T", "AT&T", id="entity-decoded"),
        pytest.param("a < b && c > d", "a < b && c > d", id="comparison-kept"),
        pytest.param("<i></i>", "", id="only-markup"),
        pytest.param("Мультимодальность", "Мультимодальность", id="cyrillic"),
    ],
)
def test_plain_text(value: str, expected: str) -> None:
    assert plain_text(value) == expected


def test_plain_text_does_not_turn_escaped_markup_into_live_markup() -> None:
    # The editor wrote the characters "&lt;script&gt;": whatever plain_text returns
    # is later placed as text in feeds whose readers may render titles as HTML.
    result = plain_text("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;Title")
    assert "<script" not in result.lower()
    assert "<img" not in result.lower()
    assert "Title" in result


# --- is_safe_url ----------------------------------------------------------------

GOOD_URLS = [
    "https://example.org",
    "http://example.org/a?b=c#d",
    "https://aidigest.example/papers/2611.00001?x=1&y=2",
    "https://user:pw@example.org/",
    "https://[::1]:8080/x",
    "http://127.0.0.1/",
    "https://example.org:8443",
    "HTTPS://EXAMPLE.ORG/",
    "https://пример.рф/статья",
    "https://arxiv.org/abs/2611.00001v2",
]

BAD_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "javascript://example.org/%0aalert(1)",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "ftp://example.org/x",
    "file:///etc/passwd",
    "mailto:a@example.org",
    "/relative/path",
    "relative/path",
    "example.org/x",
    "//example.org/x",
    "https://",
    "https:///path",
    "https:example.org",
    "http:/example.org",
    "https://exa mple.org/",
    "https://example.org/a b",
    " https://example.org",
    "https://example.org/\n",
    "https://example.org\t/",
    "https://example.org/\x00",
    "http://exa\u00a0mple.org",
    "https://example.org:999999/",
    "https://.../",
    "https://:80/",
    "https://@/",
    "",
]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_is_safe_url_accepts(url: str) -> None:
    assert is_safe_url(url)


@pytest.mark.parametrize("url", BAD_URLS, ids=repr)
def test_is_safe_url_rejects(url: str) -> None:
    assert not is_safe_url(url)


# --- markdown_to_safe_html ----------------------------------------------------------


def test_markdown_bold_emphasis_and_lists_are_kept() -> None:
    html = markdown_to_safe_html("**bold** and *em*\n\n- a\n- b\n\n1. one\n2. two", BASE)
    assert "<strong>bold</strong>" in html
    assert "<em>em</em>" in html
    assert "<ul>" in html and "<li>a</li>" in html and "<li>b</li>" in html
    assert "<ol>" in html and "<li>one</li>" in html


def test_markdown_tables_and_strikethrough_are_kept() -> None:
    html = markdown_to_safe_html("| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~", BASE)
    assert "<table>" in html and "<td>1</td>" in html
    assert "<del>gone</del>" in html


def test_markdown_absolute_links_are_kept_with_rel() -> None:
    html = markdown_to_safe_html("[paper](https://arxiv.org/abs/2611.00001)", BASE)
    assert html == f'<p><a href="https://arxiv.org/abs/2611.00001" {REL}>paper</a></p>'


def test_every_link_gets_rel_noopener_noreferrer_nofollow() -> None:
    html = markdown_to_safe_html(
        '[a](https://a.example/) <a href="https://b.example/" rel="opener" target="_blank">b</a>'
        " [c](/c) [d](mailto:d@example.org)",
        BASE,
    )
    anchors = re.findall(r"<a\b[^>]*>", html)
    assert len(anchors) == 4
    for anchor in anchors:
        assert REL in anchor, anchor
        assert "target=" not in anchor


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        pytest.param("/papers/x", "https://aidigest.example/papers/x", id="root-relative"),
        pytest.param("other", "https://aidigest.example/papers/other", id="path-relative"),
        pytest.param("../about", "https://aidigest.example/about", id="dot-dot"),
        pytest.param("#section", f"{BASE}#section", id="fragment"),
        pytest.param("?page=2", f"{BASE}?page=2", id="query"),
        pytest.param("//cdn.example/x", "https://cdn.example/x", id="scheme-relative"),
    ],
)
def test_markdown_relative_links_are_made_absolute_against_the_base(link: str, expected: str) -> None:
    html = markdown_to_safe_html(f"[link]({link})", BASE)
    assert html == f'<p><a href="{expected}" {REL}>link</a></p>'


def test_relative_and_absolute_links_in_one_summary() -> None:
    html = markdown_to_safe_html("[abs](https://example.org/x) [rel](/papers/y) [mail](mailto:a@example.org)", BASE)
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs == [
        "https://example.org/x",
        "https://aidigest.example/papers/y",
        "mailto:a@example.org",
    ]


@pytest.mark.parametrize(
    ("markdown", "kept"),
    [
        pytest.param("<script>alert(1)</script>text", "text", id="script"),
        pytest.param("<SCRIPT SRC=https://evil.example/x.js></SCRIPT>text", "text", id="script-upper"),
        pytest.param("<iframe src='https://evil.example/'></iframe>text", "text", id="iframe"),
        pytest.param("<img src=x onerror=alert(1)>text", "text", id="img-onerror"),
        pytest.param("<svg onload=alert(1)><circle/></svg>text", "text", id="svg-onload"),
        pytest.param("<details open ontoggle=alert(1)>text</details>", "text", id="ontoggle"),
        pytest.param('<p style="color:red" class="c" id="i">text</p>', "text", id="style-attribute"),
        pytest.param('<a href="https://ok.example/" onclick="alert(1)">text</a>', "text", id="onclick"),
        pytest.param("<style>body{display:none}</style>text", "text", id="style-element"),
        pytest.param("<object data='x'></object><embed src='x'>text", "text", id="object-embed"),
        pytest.param("<form action='https://evil.example/'><input name=p></form>text", "text", id="form"),
        pytest.param("[text](javascript:alert(1))", "text", id="md-javascript"),
        pytest.param("[text](JaVaScRiPt:alert(1))", "text", id="md-javascript-mixed-case"),
        pytest.param("[text](jav&#x61;script:alert(1))", "text", id="md-javascript-entity"),
        pytest.param("[text](data:text/html;base64,PHNjcmlwdD4=)", "text", id="md-data"),
        pytest.param('<a href="javascript:alert(1)">text</a>', "text", id="html-javascript"),
        pytest.param("<a href='  javascript:alert(1)'>text</a>", "text", id="html-javascript-spaces"),
        pytest.param('<a href="java&#x09;script:alert(1)">text</a>', "text", id="html-javascript-tab"),
        pytest.param('<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">text</a>', "text", id="html-data"),
        pytest.param("<a href='vbscript:msgbox(1)'>text</a>", "text", id="vbscript"),
        pytest.param("![text](https://img.example/x.png)text", "text", id="images-dropped"),
        pytest.param("<!-- <script>alert(1)</script> -->text", "text", id="comment"),
    ],
)
def test_markdown_unsafe_html_is_removed(markdown: str, kept: str) -> None:
    html = markdown_to_safe_html(markdown, BASE)
    lowered = html.lower()
    for unsafe in (
        "<script",
        "<iframe",
        "<img",
        "<svg",
        "<style",
        "<object",
        "<embed",
        "<form",
        "<input",
        "<!--",
    ):
        assert unsafe not in lowered, html
    assert re.search(r"\son[a-z]+\s*=", lowered) is None, html
    assert "style=" not in lowered
    assert "javascript:" not in lowered and "vbscript:" not in lowered and "data:" not in lowered, html
    assert "alert(" not in lowered, html
    assert kept in html
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert all(href.startswith(("https://", "http://", "mailto:")) for href in hrefs), hrefs
    # A link whose target was removed is its text: an <a> with rel and no href is invalid HTML.
    assert html.count("<a ") == len(hrefs), html


def test_markdown_javascript_autolink_becomes_its_text() -> None:
    html = markdown_to_safe_html("<javascript:alert(1)>", BASE)
    assert "href" not in html and "<a" not in html
    assert "<script" not in html


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        pytest.param(
            'See [the <em>paper</em>](javascript:alert(1)) and [code](https://code.example/ "Code").',
            '<p>See the <em>paper</em> and <a href="https://code.example/" title="Code" '
            'rel="noopener noreferrer nofollow">code</a>.</p>',
            id="bad-then-good",
        ),
        pytest.param(
            '<a title="t">one</a> <a href="vbscript:x">two</a> <a href="https://ok.example/">three</a>',
            '<p>one two <a href="https://ok.example/" rel="noopener noreferrer nofollow">three</a></p>',
            id="raw-html",
        ),
        pytest.param(
            "[up](../x) [bad](ftp://x.example/)",
            '<p><a href="https://aidigest.example/x" rel="noopener noreferrer nofollow">up</a> bad</p>',
            id="relative-and-refused",
        ),
    ],
)
def test_markdown_links_that_lose_their_target_keep_their_text(markdown: str, expected: str) -> None:
    assert markdown_to_safe_html(markdown, BASE) == expected


def test_markdown_allows_only_http_https_mailto_hrefs() -> None:
    html = markdown_to_safe_html(
        "[a](https://a.example/) [b](http://b.example/) [c](mailto:c@example.org) "
        "[d](ftp://d.example/) [e](file:///etc/passwd) [f](tel:+100)",
        BASE,
    )
    assert re.findall(r'href="([^"]*)"', html) == [
        "https://a.example/",
        "http://b.example/",
        "mailto:c@example.org",
    ]


def test_markdown_text_is_escaped_not_interpreted() -> None:
    html = markdown_to_safe_html("`<script>alert(1)</script>` and 1 < 2 & 3 > 2", BASE)
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert "<code>" in html


# --- tag_slug ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "slug"),
    [
        pytest.param("mllm", "mllm", id="plain"),
        pytest.param("MLLM", "mllm", id="lowercased"),
        pytest.param(" MLLM ", "mllm", id="trimmed"),
        pytest.param("Мультимодальность", "multimodalnost", id="cyrillic"),
        pytest.param("Обучение с подкреплением", "obuchenie-s-podkrepleniem", id="cyrillic-words"),
        pytest.param("../../x", "x", id="path-traversal"),
        pytest.param("x/../y", "x-y", id="inner-traversal"),
        pytest.param("a/b", "a-b", id="slash"),
        pytest.param("a\\b", "a-b", id="backslash"),
        pytest.param("with space", "with-space", id="space"),
        pytest.param("ÆØÅ", "aeoa", id="latin-letters"),
        pytest.param("🔥", "", id="emoji-only"),
        pytest.param("..", "", id="dots-only"),
        pytest.param("   ", "", id="blank"),
        pytest.param("C++", "c-plus-plus", id="plus"),
        pytest.param("C#", "c-sharp", id="sharp"),
        pytest.param("C", "c", id="c"),
        pytest.param("A+B", "a-plus-b", id="plus-inside"),
    ],
)
def test_tag_slug(tag: str, slug: str) -> None:
    assert tag_slug(tag) == slug


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("Вопрос", "vopros", True),
        ("MLLM", "mllm", True),
        ("Ёлка", "ёлка", True),
        ("C++", "C", False),
        ("machine learning", "machine-learning", False),
    ],
)
def test_tags_that_differ_only_in_case_or_script_are_one_tag(first: str, second: str, same: bool) -> None:
    assert (tag_identity(first) == tag_identity(second)) is same


@pytest.mark.parametrize(
    "tag",
    [
        "../../etc/passwd",
        "a/b",
        "<b>x</b>",
        "?x=1#y",
        "tag%2F..%2F",
        "ＭＬＬＭ",
        "日本語",
        "C++",
        "x" * 500,
        "слово " * 40,
    ],
)
def test_tag_slug_is_always_a_safe_path_segment(tag: str) -> None:
    slug = tag_slug(tag)
    assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug), slug
    assert len(slug) <= MAX_SLUG_LENGTH


def test_tag_slug_cuts_long_tags_at_a_word_boundary() -> None:
    slug = tag_slug("Обучение с подкреплением " * 5)
    assert len(slug) <= MAX_SLUG_LENGTH
    assert not slug.endswith("-")
    assert slug.startswith("obuchenie-s-podkrepleniem-")
    assert all(word in {"obuchenie", "s", "podkrepleniem"} for word in slug.split("-"))


@pytest.mark.parametrize(
    "value",
    ["", "   ", "\u200b\u200b", "\ufeff", "\u00ad\u2060\u200d", "\t\n\r\u00a0\u3000", "\u3164\u2800", "\U000e0041"],
)
def test_whitespace_and_invisible_characters_are_blank(value: str) -> None:
    assert is_blank(value)


@pytest.mark.parametrize("value", ["a", " \u200bx", "👩\u200d💻", "\u200b" * 10_000 + "."])
def test_any_visible_character_is_not_blank(value: str) -> None:
    assert not is_blank(value)
