"""The published HTML pages in a real browser: phone widths, dark mode, no script but the search box's, local links.

The examples are published into temporary folders with ``base_url`` set to a port-0
HTTP server on 127.0.0.1 that serves those folders, so every link on a page resolves
to the local copy. Headless Debian Chromium, driven by Playwright, opens the pages.
One browser serves the whole module.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import EXAMPLES, html_problems, write_json
from tests.e2e.browser import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, playwright_sync_api

sync_api = playwright_sync_api()

pytestmark = BROWSER_MARKS

TAG_HEADING = 'Подборка статей по тегу "{tag}"'

# One unbroken run of letters, far wider than a 375 px phone.
LONG_WORD = "Сверхдлинноеслово" * 12 + "WithoutAnySpacesOrHyphens" * 6
LONG_URL = "https://very-long-host-name.example.org/" + "segment-without-breaks_" * 20 + "end"
LONG_TAG = "ОченьДлинныйТегБезПробеловИДефисов" * 3
LONG_SUMMARY = {
    "id": "2611.09999",
    "title": f"{LONG_WORD}: заголовок с очень длинным словом",
    "summary": (
        f"Текст с длинным словом {LONG_WORD} посреди предложения.\n\n"
        f"Голая ссылка: {LONG_URL}\n\n"
        f"Ссылка с длинным текстом: [{LONG_URL}]({LONG_URL})\n\n"
        f"Код в строке: `{LONG_WORD}{LONG_WORD}`\n\n"
        f"```\n{LONG_WORD} {LONG_URL}\n```\n\n"
        "| колонка | " + " | ".join(f"колонка{n}" for n in range(30)) + " |\n"
        "|---|" + "---|" * 30 + "\n"
        "| значение | " + " | ".join(f"{LONG_WORD[:20]}{n}" for n in range(30)) + " |\n\n"
        "- пункт со словом " + LONG_WORD + "\n- ещё пункт"
    ),
    "tags": ["mllm", LONG_TAG, "benchmark"],
    "url": LONG_URL,
    "published_at": "2026-11-25T09:00:00+03:00",
    "authors": [LONG_WORD, "Анна Морозова"],
    "paper_url": LONG_URL + "/paper",
    "code_url": LONG_URL + "/code",
}


@dataclass(frozen=True)
class PublishedSite:
    name: str
    root: Path
    base_url: str

    def url(self, path: str = "") -> str:
        return self.base_url + path

    def pages(self) -> list[str]:
        """Every published HTML page, as a URL path relative to the base URL."""
        paths = []
        for page in self.root.rglob("index.html"):
            folder = page.parent.relative_to(self.root).as_posix()
            paths.append("" if folder == "." else folder + "/")
        return sorted(paths)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A port-0 static server on 127.0.0.1 over a temporary folder, and its URL."""
    root = tmp_path_factory.mktemp("served")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="pages-http", daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _publish(source: Path, dest: Path, state: Path, base_url: str, archive_page_size: int = 50) -> None:
    from digestpub.adapters.folder_store import FolderStore
    from digestpub.publish import PublishOptions, publish
    from digestpub.settings import Settings

    settings = Settings.load(None, source=str(source), dest=str(dest), state=str(state), base_url=base_url)
    options = PublishOptions(archive_page_size=archive_page_size)
    report = publish(FolderStore(source), FolderStore(dest), FolderStore(state), settings.site(), options)
    assert report.summaries_new > 0, report.summary_line()


@pytest.fixture(scope="module")
def sites(http_root: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, PublishedSite]:
    """The examples as published, and a copy of them with one summary of very long words."""
    root, server_url = http_root
    work = tmp_path_factory.mktemp("publish")
    published: dict[str, PublishedSite] = {}

    source = EXAMPLES
    base_url = f"{server_url}examples/"
    _publish(source, root / "examples", work / "state-examples", base_url)
    published["examples"] = PublishedSite("examples", root / "examples", base_url)

    source = work / "summaries-long"
    shutil.copytree(EXAMPLES, source)
    write_json(source, "2026/11/25/2611.09999.json", LONG_SUMMARY)
    base_url = f"{server_url}long/"
    # Pages of 5: the archive pages, the page to come and the archive indexes with their charts are there too.
    _publish(source, root / "long", work / "state-long", base_url, archive_page_size=5)
    published["long"] = PublishedSite("long", root / "long", base_url)
    return published


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("chromium-home")
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                args=CHROMIUM_ARGS,
                env={**os.environ, "HOME": str(home)},
            )
        except sync_api.Error as error:
            pytest.skip(f"headless chromium at {CHROMIUM} did not start: {error}")
        try:
            yield chromium
        finally:
            chromium.close()


class Tab:
    """One page for the whole module: records every request and blocks non-local ones.

    Reused across tests (a new context per test costs more than the checks); each
    test starts from :meth:`reset`, which sets the viewport and colour scheme.
    """

    def __init__(self, browser: Any) -> None:
        self.requests: list[str] = []
        self.context = browser.new_context(viewport={"width": 375, "height": 800})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("request", lambda request: self.requests.append(request.url))

    @staticmethod
    def _route(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    def reset(self, width: int = 375, dark: bool = False) -> Tab:
        self.resize(width)
        self.scheme(dark)
        self.requests.clear()
        return self

    def resize(self, width: int) -> None:
        self.page.set_viewport_size({"width": width, "height": 800})

    def scheme(self, dark: bool) -> None:
        self.page.emulate_media(color_scheme="dark" if dark else "light")

    def open(self, url: str) -> Any:
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, url
        return self.page

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requests if urlsplit(url).hostname != "127.0.0.1"]


@pytest.fixture(scope="module")
def module_tab(browser: Any) -> Iterator[Tab]:
    tab = Tab(browser)
    try:
        yield tab
    finally:
        tab.context.close()


@pytest.fixture
def tab(module_tab: Tab) -> Tab:
    return module_tab.reset()


def _overflow(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
            const width = window.innerWidth;
            const wide = [...document.querySelectorAll('body *')]
                .filter(el => el.getBoundingClientRect().right > width + 0.5)
                .slice(0, 5)
                .map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
                     + ' right=' + Math.round(el.getBoundingClientRect().right));
            return {
                scrollWidth: document.documentElement.scrollWidth,
                innerWidth: width,
                wide: wide,
            };
        }"""
    )


def _luminance(css_color: str) -> float:
    """WCAG relative luminance of an ``rgb()``/``rgba()`` computed color."""
    inside = css_color[css_color.index("(") + 1 : css_color.rindex(")")]
    parts = [float(part) for part in inside.replace("/", " ").replace(",", " ").split()[:3]]

    def channel(value: float) -> float:
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(value) for value in parts)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _colors(page: Any, selector: str) -> tuple[str, str]:
    return page.eval_on_selector(
        selector,
        "el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color]",
    )


MAIN_PAGES = ["", "tags/mllm/"]
PAGE_IDS = ["index", "tag-mllm"]


@pytest.mark.parametrize("path", MAIN_PAGES, ids=PAGE_IDS)
@pytest.mark.parametrize("site_name", ["examples", "long"])
def test_no_horizontal_overflow(sites: dict[str, PublishedSite], tab: Tab, site_name: str, path: str) -> None:
    """At 375 px and 600 px, light and dark, nothing is wider than the viewport."""
    site = sites[site_name]
    page = tab.open(site.url(path))
    problems = []
    for dark in (False, True):
        tab.scheme(dark)
        for width in (375, 600):
            tab.resize(width)
            found = _overflow(page)
            assert found["innerWidth"] == width
            if found["scrollWidth"] > found["innerWidth"]:
                scheme = "dark" if dark else "light"
                problems.append(f"{width} px {scheme}: {found}")
    assert not problems, f"{site.url(path)} overflows:\n" + "\n".join(problems)


def test_long_summary_is_on_both_pages(sites: dict[str, PublishedSite], tab: Tab) -> None:
    """The overflow checks on the "long" site mean something only if its card is shown."""
    site = sites["long"]
    for path in MAIN_PAGES:
        page = tab.open(site.url(path))
        titles = page.locator("article h2").all_inner_texts()
        assert any(LONG_WORD in title for title in titles), (path, titles[:3])
        # Tag names may be shortened; the first 60 letters are kept in any case.
        assert page.locator("ul.tags a", has_text=LONG_TAG[:60]).count() >= 1


def test_the_long_summary_pages_are_valid_html(sites: dict[str, PublishedSite]) -> None:
    # Its tables, code blocks and bare links are the widest markup a summary brings.
    assert html_problems(sorted(sites["long"].root.rglob("*.html"))) == []


def test_every_page_fits_a_phone_and_has_no_script(sites: dict[str, PublishedSite], tab: Tab) -> None:
    site = sites["long"]
    pages = site.pages()
    assert "" in pages and "tags/mllm/" in pages and len(pages) >= 15
    assert {"archive/", "archive/1/", "tags/mllm/archive/1/"} <= set(pages)
    # The page to come leads on to the feed's page at once, which is checked in its own right.
    to_come = {path for path in pages if b'http-equiv="refresh"' in (site.root / path / "index.html").read_bytes()}
    assert to_come, "the page after the newest complete one is there"
    problems = []
    for path in sorted(set(pages) - to_come):
        page = tab.open(site.url(path))
        found = _overflow(page)
        if found["scrollWidth"] > found["innerWidth"]:
            problems.append(f"{path or 'index'} overflows: {found}")
        scripts = page.locator("script").count()
        if scripts != 1:
            problems.append(f"{path or 'index'} has {scripts} <script> element(s), not the search box's alone")
    assert not problems, "\n".join(problems)
    assert tab.foreign_requests() == []


@pytest.mark.parametrize("path", MAIN_PAGES, ids=PAGE_IDS)
def test_dark_mode_has_dark_background_and_light_text(sites: dict[str, PublishedSite], tab: Tab, path: str) -> None:
    page = tab.open(sites["examples"].url(path))

    light_bg, light_fg = (_luminance(color) for color in _colors(page, "body"))
    assert light_bg > 0.8 and light_fg < 0.2, (light_bg, light_fg)

    tab.scheme(dark=True)
    assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    background, text = _colors(page, "body")
    dark_bg, dark_fg = _luminance(background), _luminance(text)
    assert dark_bg < 0.05, f"body background {background} is not dark"
    assert dark_fg > 0.6, f"body text {text} is not light"
    assert (dark_fg + 0.05) / (dark_bg + 0.05) >= 7, (background, text)

    # Cards and their headings follow the scheme too, not only the body.
    card_bg, _ = _colors(page, "article")
    _, heading = _colors(page, "article h2 a")
    _, masthead = _colors(page, "header.masthead .name")
    assert _luminance(card_bg) < 0.05, card_bg
    assert _luminance(heading) > 0.6, heading
    assert _luminance(masthead) > 0.6, masthead


@pytest.mark.parametrize("path", MAIN_PAGES, ids=PAGE_IDS)
@pytest.mark.parametrize("site_name", ["examples", "long"])
def test_no_script_and_no_foreign_request(sites: dict[str, PublishedSite], tab: Tab, site_name: str, path: str) -> None:
    site = sites[site_name]
    page = tab.open(site.url(path))
    # The one script is the search box's own, inline; it loads the index from the site itself.
    assert page.locator("script").count() == 1
    html = (site.root / path / "index.html").read_text(encoding="utf-8")
    assert html.lower().count("<script") == 1 and '<script type="module">' in html
    assert tab.requests, "no request was recorded at all"
    assert tab.foreign_requests() == []


def test_tag_page_heading(sites: dict[str, PublishedSite], tab: Tab) -> None:
    page = tab.open(sites["examples"].url("tags/mllm/"))
    assert page.locator("h1").count() == 1
    assert page.locator("h1").inner_text().strip() == TAG_HEADING.format(tag="mllm")
    assert page.title().strip()


def test_clicking_a_tag_on_the_index_opens_its_page(sites: dict[str, PublishedSite], tab: Tab) -> None:
    site = sites["examples"]
    page = tab.open(site.url())

    # The "all tags" box.
    page.locator("#tags a", has_text="mllm").first.click()
    page.wait_for_load_state("load")
    assert page.url == site.url("tags/mllm/")
    assert page.locator("h1").inner_text().strip() == TAG_HEADING.format(tag="mllm")

    # A tag chip on the newest card.
    page = tab.open(site.url())
    chip = page.locator("article").first.locator("ul.tags a").first
    name = chip.inner_text().strip()
    href = chip.get_attribute("href")
    assert href is not None and href.startswith(site.url("tags/"))
    chip.click()
    page.wait_for_load_state("load")
    assert page.url == href
    heading = page.locator("h1").inner_text().strip()
    assert heading.casefold() == TAG_HEADING.format(tag=name).casefold()
    assert tab.foreign_requests() == []
