"""Search in Chromium, on pages ``digestpub serve`` serves: a Russian word in another inflection finds its
summary, the hit leads to its card, an edit and a deletion are found as they now are, at 375 px, in dark
mode, and without script the box is a link to the archive."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import EXAMPLES, write_json
from tests.e2e import test_pages_browser
from tests.e2e.browser import BROWSER_MARKS
from tests.search_support import edited_version, index_records, searched_summaries
from tests.serve_support import free_port, running_serve, serve_env

sync_api = pytest.importorskip("playwright.sync_api", reason="the Python playwright package is not installed")

pytestmark = BROWSER_MARKS

browser = test_pages_browser.browser
"""The page tests' headless Chromium."""

DAY = "2026/11/22"
_SMALL_GROUPS = (
    "import digestpub.publish.search as search; search._SHARD_POSITIONS = 5; search._GROUP_SHARDS = 2; "
    "from digestpub.app.cli import main; main()"
)
"""``digestpub`` with bundles of ten places: the examples make four of them."""


def _publish(root: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SMALL_GROUPS, "publish", *arguments],
        env=env, cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _group_of_titles(public: Path) -> dict[str, str]:
    """The group of each title in the index, by the folder of its fragment."""
    fragments = list((public / "pagefind").glob("*/fragment/*.pf_fragment"))
    return {
        index_records([str(path)], lambda name: Path(name).read_bytes())[0]["meta"]["title"]: path.parent.parent.name
        for path in fragments
    }


@pytest.fixture
def digest(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], str]]:
    """The examples and three summaries to look for, published and served by ``digestpub serve``."""
    source = tmp_path / "summaries"
    shutil.copytree(EXAMPLES, source)
    for name, document in searched_summaries().items():
        write_json(source, f"{DAY}/{name}.json", document)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/"
    env = serve_env(tmp_path, base_url, source=str(source))
    published = _publish(tmp_path, env)
    assert published.returncode == 0, published.stderr
    assert "search index:" in published.stdout
    with running_serve(tmp_path, env, port):
        yield tmp_path, env, base_url


def _local_only(route: Any) -> None:
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


def _page(browser: Any, **options: Any) -> tuple[Any, list[str]]:
    context = browser.new_context(viewport={"width": 375, "height": 800}, **options)
    context.route("**/*", _local_only)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    return page, requests


def _search(page: Any, words: str) -> list[str]:
    """The titles the box lists for ``words``, once it has answered."""
    box = page.locator("div.search input")
    box.fill("")
    box.press_sequentially(words)
    results = page.locator("div.search ol li")
    results.first.wait_for(timeout=15_000)
    page.wait_for_timeout(400)  # the box waits for typing to pause before it searches
    return [text.strip() for text in page.locator("div.search ol li a").all_inner_texts()]


def test_a_russian_word_in_another_form_finds_its_summary_and_leads_to_its_card(
    digest: tuple[Path, dict[str, str], str], browser: Any
) -> None:
    _, _, base_url = digest
    page, requests = _page(browser)
    page.goto(base_url + "tags/mllm/", wait_until="load")
    assert page.locator("nav.site a.search-link").is_hidden()
    titles = _search(page, "квазикристаллами")
    wanted = searched_summaries()["found"]["title"]
    assert titles == [wanted]
    # The box fits a phone: nothing wider than the page.
    overflow = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert overflow[0] <= overflow[1], overflow
    assert page.locator("div.search input").bounding_box()["width"] <= 375

    # A Russian page finds the English summaries too, stemmed as English.
    assert "GroundedChart: Do MLLMs Actually Read the Axes?" in _search(page, "charts")

    _search(page, "квазикристаллами")
    page.locator("div.search ol li a").first.click()
    page.wait_for_load_state("load")
    anchor = urlsplit(page.url).fragment
    assert anchor.startswith("s-")
    card = page.locator(f"article#{anchor}")
    assert card.locator("h2").inner_text().strip() == wanted
    assert card.is_visible()
    # Everything came from the site itself: no script, font or index from elsewhere.
    assert [url for url in requests if urlsplit(url).hostname != "127.0.0.1"] == []
    assert any("/pagefind/" in url for url in requests)


def test_one_search_ranks_hits_from_every_bundle(digest: tuple[Path, dict[str, str], str], browser: Any) -> None:
    root, _, base_url = digest
    groups = _group_of_titles(root / "public")
    assert len(set(groups.values())) == 4
    page, requests = _page(browser)
    page.goto(base_url + "archive/", wait_until="load")
    titles = _search(page, "модели")
    assert len({groups[title] for title in titles}) >= 2, titles
    # The box read the list of bundles, then loaded Pagefind from one of them only.
    assert sum(url.endswith("/pagefind/bundles.json") for url in requests) == 1
    assert [url for url in requests if url.endswith("/pagefind.js")] == [base_url + "pagefind/00003/pagefind.js"]


def test_an_edited_and_a_deleted_summary_are_found_as_they_now_are(
    digest: tuple[Path, dict[str, str], str], browser: Any
) -> None:
    root, env, base_url = digest
    documents = searched_summaries()
    source = Path(env["DIGESTPUB_SOURCE"])
    page, _ = _page(browser)
    page.goto(base_url, wait_until="load")
    assert _search(page, "гиперболоида") == [documents["edited"]["title"]]
    assert _search(page, "метаматериалами") == [documents["deleted"]["title"]]

    write_json(source, f"{DAY}/edited.json", edited_version(documents["edited"]))
    (source / DAY / "deleted.json").unlink()
    again = _publish(root, env, "--keys", f"{DAY}/edited.json", "--keys", f"{DAY}/deleted.json")
    assert again.returncode == 0, again.stderr
    assert "1 updated, 1 deleted" in again.stdout

    page.goto(base_url, wait_until="load")
    nothing = "Ничего не нашлось"
    assert _search(page, "эллипсоида") == [edited_version(documents["edited"])["title"]]
    assert page.locator("div.search ol").inner_text().strip() != nothing
    _search(page, "гиперболоида")
    assert page.locator("div.search ol").inner_text().strip() == nothing
    _search(page, "метаматериалами")
    assert page.locator("div.search ol").inner_text().strip() == nothing


def test_dark_mode_and_no_script(digest: tuple[Path, dict[str, str], str], browser: Any) -> None:
    _, _, base_url = digest
    page, _ = _page(browser, color_scheme="dark")
    page.goto(base_url, wait_until="load")
    colours = page.evaluate(
        "(() => { const s = getComputedStyle(document.querySelector('div.search input'));"
        " return [s.backgroundColor, s.color]; })()"
    )
    assert colours == ["rgb(18, 19, 20)", "rgb(232, 234, 237)"], colours

    page, _ = _page(browser, java_script_enabled=False)
    page.goto(base_url + "tags/mllm/", wait_until="load")
    link = page.locator("nav.site a.search-link")
    assert link.is_visible()
    assert link.get_attribute("href") == base_url + "archive/"
    assert page.locator("div.search").is_hidden()
