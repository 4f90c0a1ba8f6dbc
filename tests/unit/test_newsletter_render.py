"""What one newsletter email holds and how it is built (CONTRACT §3).

Summaries are published with ``digestpub.publish.publish`` into temporary folders,
subscribers live in a real SQLite file, and the run is ``send_newsletter`` with an
in-memory mail service (or the outbox), so each test reads real messages.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from digestpub.newsletter.issues import summary_from_log
from digestpub.subscriptions.tokens import InvalidToken, verify_token
from tests.newsletter_support import (
    API_URL,
    BASE_URL,
    SITE_TITLE,
    TAGLINE,
    TOKEN_KEY,
    CollectingMailer,
    Scenario,
    body_parts,
    by_recipient,
    list_unsubscribe_url,
    long_date,
    paper,
    token_of,
)

PAPER_LINK = re.compile(r"https://aidigest\.example/papers/2611\.(\d{5})")
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
MESSAGE_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
MAX_LINE = 998
GMAIL_CLIP = 102 * 1000


def papers_in(part: str) -> list[int]:
    """Paper numbers linked from a part, in order, each once."""
    seen: list[int] = []
    for match in PAPER_LINK.finditer(part):
        number = int(match.group(1))
        if number not in seen:
            seen.append(number)
    return seen


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    return Scenario.create(tmp_path)


def test_each_subscriber_gets_the_papers_of_their_tags(scenario: Scenario) -> None:
    scenario.publish(
        [
            paper(1, ["MLLM"]),
            paper(2, ["vqa", "mllm"]),
            paper(3, ["moe"]),
            paper(4, ["VQA"]),
            paper(5, ["Мультимодальность", "MoE"]),
        ]
    )
    scenario.subscribe("alice@example.com", "mllm")
    scenario.subscribe("bob@example.com", "moe", lang="en")
    scenario.subscribe("carol@example.com", "")
    scenario.subscribe("erin@example.com", "VQA MoE")
    scenario.subscribe("fedor@example.com", "Мультимодальность")
    mailer = CollectingMailer()

    report = scenario.send(mailer)

    expected = {
        "alice@example.com": [2, 1],  # "MLLM" on paper 1 is the tag mllm
        "bob@example.com": [5, 3],
        "carol@example.com": [5, 4, 3, 2, 1],  # no tags: everything
        "erin@example.com": [5, 4, 3, 2],
        "fedor@example.com": [5],
    }
    messages = by_recipient(mailer.messages())
    assert sorted(messages) == sorted(expected)
    assert report.sent == len(expected)
    for address, numbers in expected.items():
        text, html = body_parts(messages[address])
        assert papers_in(text) == numbers, f"{address}: plain text holds the wrong papers"
        assert papers_in(html) == numbers, f"{address}: HTML holds the wrong papers"


def test_one_tag_email_has_the_masthead_and_the_tag_heading(scenario: Scenario) -> None:
    scenario.publish([paper(1, ["mllm"]), paper(2, ["mllm", "vqa"])])
    scenario.subscribe("alice@example.com", "mllm")
    scenario.subscribe("carol@example.com", "mllm vqa")
    mailer = CollectingMailer()

    scenario.send(mailer)

    messages = by_recipient(mailer.messages())
    text, html = body_parts(messages["alice@example.com"])
    for part in (text, html):
        assert SITE_TITLE in part
        assert TAGLINE in part
        assert 'Подборка статей по тегу "mllm"' in part.replace("&quot;", '"').replace("&#34;", '"')
    text, html = body_parts(messages["carol@example.com"])
    assert "Подборка статей по тегу" not in text
    assert "Новые статьи" in text


def test_at_most_max_items_then_a_line_to_the_web_copy(scenario: Scenario) -> None:
    scenario.publish([paper(number, ["mllm"]) for number in range(1, 8)])
    alice = scenario.subscribe("alice@example.com", "mllm")
    bob = scenario.subscribe("bob@example.com", "mllm", lang="en")
    mailer = CollectingMailer()

    scenario.send(mailer, max_items=3)

    messages = by_recipient(mailer.messages())
    more_lines = {"alice@example.com": "и ещё 4 статьи", "bob@example.com": "and 4 more papers"}
    for address, more in more_lines.items():
        text, html = body_parts(messages[address])
        assert papers_in(text) == [7, 6, 5]
        assert papers_in(html) == [7, 6, 5]
        link = re.search(r'<a href="([^"]+)"[^>]*>\s*' + re.escape(more), html)
        assert link is not None, f"{address}: no '{more}' link in the HTML part"
        web_url = link.group(1)
        assert web_url.startswith(BASE_URL + "newsletter/")
        assert re.search(re.escape(more) + r".*" + re.escape(web_url), text), "no line to the web copy in the text"

        web_copy = scenario.dest_dir / web_url.removeprefix(BASE_URL)
        assert web_copy.is_file(), f"{web_url} is linked but {web_copy} was not published"
        page = web_copy.read_text(encoding="utf-8")
        assert SITE_TITLE in page
        assert PAPER_LINK.search(page)
        for person in (alice, bob):
            assert person.email not in page
            assert person.id not in page
        assert "token=" not in page
        assert API_URL + "unsubscribe" not in page
        assert API_URL + "preferences" not in page


def test_the_web_copy_holds_the_papers_the_more_line_promises(scenario: Scenario) -> None:
    """ "и ещё 4 статьи — читать на сайте" links to the web copy: the rest must be readable there."""
    scenario.publish([paper(number, ["mllm"]) for number in range(1, 8)])
    scenario.subscribe("alice@example.com", "mllm")
    mailer = CollectingMailer()

    scenario.send(mailer, max_items=3)

    _text, html = body_parts(by_recipient(mailer.messages())["alice@example.com"])
    link = re.search(r'<a href="([^"]+)"[^>]*>\s*и ещё 4 статьи', html)
    assert link is not None
    page = (scenario.dest_dir / link.group(1).removeprefix(BASE_URL)).read_text(encoding="utf-8")
    assert sorted(papers_in(page)) == [1, 2, 3, 4, 5, 6, 7], "the web copy lacks the papers left out of the email"


@pytest.fixture
def thirty_item_issue(scenario: Scenario) -> tuple[Scenario, list[EmailMessage], list[bytes], datetime]:
    """A 30-item issue (one item with hostile inline HTML) sent to a ru and an en reader."""
    hostile = paper(
        31,
        ["mllm"],
        summary=(
            "Текст <script>alert('x')</script> и <img src=x onerror=\"alert(1)\"> и "
            "[ссылка](javascript:alert(1)) <iframe src='https://evil.example/'></iframe>"
        ),
    )
    scenario.publish([paper(number, ["MLLM", "vqa"]) for number in range(1, 30)] + [hostile])
    scenario.subscribe("alice@example.com", "mllm")
    scenario.subscribe("bob@example.com", "", lang="en")
    mailer = CollectingMailer()
    now = datetime.now(UTC)

    report = scenario.send(mailer, now=now, reply_to="editors@digest.example")

    assert report.sent == 2
    raws = [raw for _sender, _recipient, raw in mailer.sent]
    return scenario, mailer.messages(), raws, now


def test_headers_of_each_email(thirty_item_issue: tuple[Scenario, list[EmailMessage], list[bytes], datetime]) -> None:
    scenario, messages, _raws, now = thirty_item_issue
    ids = scenario.ids_by_email()
    message_ids = []
    for message in messages:
        sender = message["From"].addresses[0]
        assert sender.display_name == "AI Digest"
        assert sender.addr_spec == "digest@digest.example"
        assert message["Reply-To"].addresses[0].addr_spec == "editors@digest.example"
        assert MESSAGE_ID.fullmatch(str(message["Message-ID"]).strip())
        message_ids.append(str(message["Message-ID"]))
        assert abs((parsedate_to_datetime(str(message["Date"])) - now).total_seconds()) <= 1
        assert re.search(r"<[^<>\s]+>", str(message["List-Id"]))
        assert str(message["List-Unsubscribe-Post"]).strip() == "List-Unsubscribe=One-Click"

        address = message["To"].addresses[0].addr_spec
        url = list_unsubscribe_url(message)
        assert url.startswith("https://")
        assert url.startswith(API_URL + "unsubscribe?")
        assert verify_token(TOKEN_KEY, token_of(url), "unsubscribe") == ids[address]
        with pytest.raises(InvalidToken):
            verify_token(TOKEN_KEY, token_of(url), "preferences")

        assert message.get_content_type() == "multipart/alternative"
        kinds = [part.get_content_type() for part in message.iter_parts()]
        assert sorted(kinds) == ["text/html", "text/plain"]
    assert len(set(message_ids)) == len(message_ids), "two emails share a Message-ID"


def test_subject_in_the_readers_language(
    thirty_item_issue: tuple[Scenario, list[EmailMessage], list[bytes], datetime],
) -> None:
    _scenario, messages, _raws, now = thirty_item_issue
    subjects = {message["To"].addresses[0].addr_spec: str(message["Subject"]) for message in messages}

    russian = subjects["alice@example.com"]
    assert CYRILLIC.search(russian.replace(SITE_TITLE, "")), russian
    assert re.search(r"\b30\b", russian)
    assert long_date("ru", now.date()) in russian

    english = subjects["bob@example.com"]
    assert re.search(r"\b30\b", english)
    assert long_date("en", now.date()) in english
    assert not CYRILLIC.search(english.replace(SITE_TITLE, "")), english


def test_raw_lines_fit_smtp_and_the_html_fits_gmail(
    thirty_item_issue: tuple[Scenario, list[EmailMessage], list[bytes], datetime],
) -> None:
    _scenario, messages, raws, _now = thirty_item_issue
    for raw in raws:
        assert b"\n" not in raw.replace(b"\r\n", b""), "a bare LF or CR in the message"
        longest = max(len(line) for line in raw.split(b"\r\n"))
        assert longest <= MAX_LINE, f"a line of {longest} octets (RFC 5322 allows {MAX_LINE})"
    for message in messages:
        _text, html = body_parts(message)
        assert len(papers_in(html)) == 30
        assert len(html.encode()) < GMAIL_CLIP, f"the HTML part is {len(html.encode())} bytes"


def test_no_script_reaches_the_email(
    thirty_item_issue: tuple[Scenario, list[EmailMessage], list[bytes], datetime],
) -> None:
    _scenario, messages, _raws, _now = thirty_item_issue
    for message in messages:
        text, html = body_parts(message)
        lowered = html.lower()
        assert "<script" not in lowered
        assert "<iframe" not in lowered
        assert "onerror" not in lowered
        assert "javascript:" not in lowered
        assert "<script" not in text.lower()


def test_body_links_to_preferences_and_unsubscribe(
    thirty_item_issue: tuple[Scenario, list[EmailMessage], list[bytes], datetime],
) -> None:
    scenario, messages, _raws, _now = thirty_item_issue
    ids = scenario.ids_by_email()
    for message in messages:
        address = message["To"].addresses[0].addr_spec
        text, html = body_parts(message)
        for part in (text, html.replace("&amp;", "&")):
            preferences = re.findall(re.escape(API_URL) + r"preferences\?token=[A-Za-z0-9_-]+", part)
            assert preferences, f"{address}: no preference link"
            assert {verify_token(TOKEN_KEY, token_of(url), "preferences") for url in preferences} == {ids[address]}
            unsubscribe = re.findall(re.escape(API_URL) + r"unsubscribe\?token=[A-Za-z0-9_-]+", part)
            assert unsubscribe, f"{address}: no unsubscribe link in the body"
            assert {verify_token(TOKEN_KEY, token_of(url), "unsubscribe") for url in unsubscribe} == {ids[address]}


def test_no_reply_to_unless_configured(scenario: Scenario) -> None:
    scenario.publish([paper(1, ["mllm"])])
    scenario.subscribe("alice@example.com", "mllm")
    mailer = CollectingMailer()

    scenario.send(mailer)

    (message,) = mailer.messages()
    assert message["Reply-To"] is None
    assert message["From"].addresses[0].display_name == "AI Digest"


def _logged(summary_id: str, title: str, **fields: object) -> dict[str, object]:
    """A summary as a publish log line carries it."""
    return {
        "id": summary_id,
        "title": title,
        "url": f"https://digest.example/{summary_id}",
        "published_at": "2026-11-20T09:30:00+03:00",
        "lang": "ru",
        "source_key": f"2026/11/20/{summary_id}.json",
        **fields,
    }


def test_a_log_line_of_an_earlier_build_keeps_its_rendered_html() -> None:
    old = _logged(
        "p1",
        "Старая запись",
        summary_html="<p>Уже <strong>готовый</strong> HTML</p>",
        tags=["mllm"],
        tag_slugs=["mllm"],
    )
    summary = summary_from_log(old)
    assert summary.summary_html == "<p>Уже <strong>готовый</strong> HTML</p>"
    assert summary.published_at == datetime(2026, 11, 20, 6, 30, tzinfo=UTC)
    assert summary.tags == ("mllm",)


def test_a_logged_summary_renders_its_markdown_when_first_shown() -> None:
    logged = _logged("p2", "Новая запись", summary_markdown="**Жирный** текст <script>alert(1)</script>")
    html = summary_from_log(logged).summary_html
    assert "<strong>Жирный</strong>" in html
    assert "script" not in html


def _long_summary(number: int, size: int, *, paragraphs: bool = True) -> str:
    """Russian Markdown of about ``size`` bytes: many paragraphs, or one that never ends."""
    sentence = f"Статья {number} разбирает, как мультимодальные модели учатся на парах картинка — вопрос. "
    count = size // len(sentence.encode()) + 1
    if not paragraphs:
        return sentence * count
    return "\n\n".join(sentence * 4 for _ in range(count // 4 + 1))


@pytest.mark.parametrize("paragraphs", [True, False], ids=["paragraphs", "one-long-paragraph"])
def test_forty_long_summaries_fit_under_gmails_clip_with_the_footer(scenario: Scenario, paragraphs: bool) -> None:
    """Gmail clips an HTML part past about 102 KB, cutting the footer with the unsubscribe link."""
    documents = [
        paper(number, ["mllm"], summary=_long_summary(number, 14_000, paragraphs=paragraphs)) for number in range(1, 41)
    ]
    for document in documents:
        assert len(document["summary"].encode()) >= 14_000
    scenario.publish(documents)
    scenario.subscribe("alice@example.com", "mllm")
    scenario.subscribe("bob@example.com", "", lang="en")
    mailer = CollectingMailer()

    scenario.send(mailer)

    ids = scenario.ids_by_email()
    messages = by_recipient(mailer.messages())
    for address, more, read_on in (
        ("alice@example.com", "и ещё", "Читать дальше"),
        ("bob@example.com", "and ", "Read on"),
    ):
        text, html = body_parts(messages[address])
        assert len(html.encode()) < 100_000, f"{address}: the HTML part is {len(html.encode())} bytes"
        assert len(text.encode()) < 100_000, f"{address}: the text part is {len(text.encode())} bytes"
        unsubscribe = list_unsubscribe_url(messages[address])
        assert unsubscribe in html.replace("&amp;", "&"), "the unsubscribe link is not inside the HTML part"
        assert verify_token(TOKEN_KEY, token_of(unsubscribe), "unsubscribe") == ids[address]
        assert html.rstrip().endswith("</html>")
        shown = papers_in(html)
        assert 3 <= len(shown) < 30, f"{len(shown)} papers shown"
        assert shown == list(range(40, 40 - len(shown), -1)), "the newest papers come first"
        # Past the budget the rest become one line; each cut summary links to its page.
        assert re.search(re.escape(more) + r"[^<]*" + str(40 - len(shown)), html), "no line for the rest"
        assert html.count(read_on) == len(shown)
        for number in shown:
            url = f"https://aidigest.example/papers/2611.{number:05d}"
            assert re.search(r'<a href="' + re.escape(url) + r'">' + read_on, html), f"no read-on link to {url}"
            assert f"{read_on}: {url}" in text
        assert papers_in(text) == shown


def _three_paper_email(scenario: Scenario) -> tuple[str, str]:
    """(text, HTML) of the one email of an issue of three ordinary papers."""
    scenario.publish([paper(number, ["mllm"]) for number in range(1, 4)])
    scenario.subscribe("alice@example.com", "mllm")
    mailer = CollectingMailer()
    scenario.send(mailer)
    (message,) = mailer.messages()
    return body_parts(message)


def test_a_short_summary_is_never_cut(scenario: Scenario) -> None:
    text, html = _three_paper_email(scenario)

    assert "Читать дальше" not in html and "Читать дальше" not in text
    assert "Почему это важно" in html and "Почему это важно" in text


def test_the_preheader_is_hidden_without_a_colour_like_the_background(scenario: Scenario) -> None:
    """SpamAssassin's HTML_FONT_LOW_CONTRAST fires on white text hidden on white."""
    _text, html = _three_paper_email(scenario)

    hidden = re.search(r'<div style="(display:none;[^"]*)">([^<]*)</div>', html)
    assert hidden is not None, "no hidden preheader"
    assert "Статья 3" in hidden.group(2)
    assert "color" not in hidden.group(1)
    assert not re.search(r"(?<![-\w])color:\s*#fff", html, re.IGNORECASE), "text coloured like the background"


def test_text_part_has_no_trailing_spaces(
    thirty_item_issue: tuple[Scenario, list[EmailMessage], list[bytes], datetime],
) -> None:
    """Text mail readers show and quote trailing spaces: none, after the browser link or anywhere."""
    _scenario, messages, _raws, _now = thirty_item_issue
    for message in messages:
        text, _html = body_parts(message)
        assert re.search(r"^.+: https://\S+/newsletter/\S+\.html$", text, re.MULTILINE), "no browser link line"
        for number, line in enumerate(text.splitlines(), start=1):
            assert line == line.rstrip(), f"line {number} of the text part ends in spaces: {line!r}"
