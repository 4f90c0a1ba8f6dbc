"""A real 30-item newsletter email in headless Chromium: phone widths and dark mode.

The email is sent to the outbox by ``send_newsletter``; its HTML part is opened from
a file by Debian's Chromium, driven by Playwright (CONTRACT §2-§3: emails "read well
on a 375 px phone and in dark mode").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, playwright_sync_api
from tests.newsletter_support import Scenario, body_parts, by_recipient, paper

sync_api = playwright_sync_api()

pytestmark = BROWSER_MARKS

LONG_WORD = "Сверхдлинноеслово" * 8 + "WithoutAnySpacesOrHyphens" * 4
LONG_URL = "https://very-long-host-name.example.org/" + "segment-without-breaks_" * 12 + "end"


@pytest.fixture(scope="module")
def email_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML part of a 30-item email (one item with very long words and links), as a file."""
    root = tmp_path_factory.mktemp("newsletter-browser")
    scenario = Scenario.create(root)
    long_item = paper(
        30,
        ["mllm", "Мультимодальность"],
        title=f"{LONG_WORD}: заголовок с очень длинным словом",
        summary=(
            f"Текст с длинным словом {LONG_WORD} посреди предложения.\n\n"
            f"Голая ссылка: {LONG_URL}\n\n"
            f"Ссылка с длинным текстом: [{LONG_URL}]({LONG_URL})\n\n"
            f"Код в строке: `{LONG_WORD}`\n\n"
            f"```\n{LONG_WORD} {LONG_URL}\n```\n\n"
            f"- пункт со словом {LONG_WORD}\n- ещё пункт"
        ),
        url=LONG_URL,
    )
    scenario.publish([paper(number, ["mllm", "vqa"]) for number in range(1, 30)] + [long_item])
    scenario.subscribe("alice@example.com", "mllm")
    report = scenario.send()
    assert report.sent == 1
    _text, html = body_parts(by_recipient(scenario.outbox())["alice@example.com"])
    assert html.count("https://aidigest.example/papers/") >= 29
    path = root / "email.html"
    path.write_text(html, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("chromium-home")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        )
        try:
            yield launched
        finally:
            launched.close()


def _open(browser: Any, path: Path, width: int, color_scheme: str = "light") -> Any:
    context = browser.new_context(viewport={"width": width, "height": 800}, color_scheme=color_scheme)
    page = context.new_page()
    page.goto(path.as_uri())
    return context, page


def _rgb(css: str) -> tuple[float, float, float, float]:
    numbers = [float(value) for value in re.findall(r"[\d.]+", css)]
    assert len(numbers) in (3, 4), css
    alpha = numbers[3] if len(numbers) == 4 else 1.0
    return numbers[0], numbers[1], numbers[2], alpha


def _luminance(css: str) -> float:
    """WCAG relative luminance of an rgb()/rgba() computed colour."""
    red, green, blue, _alpha = _rgb(css)

    def channel(value: float) -> float:
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def _contrast(first: float, second: float) -> float:
    light, dark = max(first, second), min(first, second)
    return (light + 0.05) / (dark + 0.05)


# The colour actually painted behind the body: the nearest opaque background up the tree.
PAINTED_BACKGROUND = """(selector) => {
    let node = document.querySelector(selector);
    while (node) {
        const colour = getComputedStyle(node).backgroundColor;
        if (colour && colour !== 'transparent' && !/rgba\\(.*,\\s*0\\)$/.test(colour)) return colour;
        node = node.parentElement;
    }
    return 'rgb(255, 255, 255)';
}"""


@pytest.mark.parametrize("width", [375, 600])
def test_no_horizontal_overflow(browser: Any, email_html: Path, width: int) -> None:
    context, page = _open(browser, email_html, width)
    try:
        scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll_width <= inner_width, f"{scroll_width} px of content in a {inner_width} px wide window"
        assert page.locator("script").count() == 0
    finally:
        context.close()


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_colours_follow_the_colour_scheme(browser: Any, email_html: Path, color_scheme: str) -> None:
    context, page = _open(browser, email_html, 375, color_scheme)
    try:
        body = _luminance(page.evaluate(PAINTED_BACKGROUND, "body"))
        texts = page.evaluate(
            """() => ['p', 'h2 a', 'li'].map((selector) => {
                const found = [...document.querySelectorAll(selector)]
                    .find((node) => node.textContent.includes('Статья') || node.textContent.length > 20);
                return found ? [selector, getComputedStyle(found).color] : null;
            }).filter(Boolean)"""
        )
        assert texts, "no text found in the email"
        item_background = _luminance(page.evaluate(PAINTED_BACKGROUND, "h2"))
        if color_scheme == "dark":
            assert body < 0.1, f"the body background is not dark (luminance {body:.2f})"
            assert item_background < 0.1, f"the items' background is not dark (luminance {item_background:.2f})"
        else:
            assert body > 0.8, f"the body background is not light (luminance {body:.2f})"
        for selector, colour in texts:
            text = _luminance(colour)
            if color_scheme == "dark":
                assert text > 0.5, f"{selector} text is not light in dark mode: {colour}"
            assert _contrast(text, item_background) >= 4.5, f"{selector} text {colour} is hard to read"
    finally:
        context.close()
