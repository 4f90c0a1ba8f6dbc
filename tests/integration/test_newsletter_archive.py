"""The newsletter's archive (CONTRACT §2): ``newsletter/index.html`` and ``feeds/newsletter.xml``.

Issues are built through ``python -m digestpub newsletter`` on the embedded default
(SQLite subscribers, the outbox mailer) over folders; the archive is read back as a
reader would: the page's links followed to files, the feed through the Atom schema
and feedparser, the emails' footers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import etree, html

from digestpub.adapters.folder_store import FolderStore
from digestpub.app.wiring import SITE_PARTS
from digestpub.errors import PreconditionFailed, StorageError
from digestpub.newsletter.archive_index import INDEX_KEY, load_archive, record_issue
from digestpub.newsletter.issues import load_issue
from digestpub.publish import PublishOptions, publish
from tests.conftest import html_problems
from tests.newsletter_support import (
    BASE_URL,
    SITE,
    Scenario,
    body_parts,
    list_unsubscribe_url,
    outbox_messages,
    paper,
    run_cli,
    token_of,
)

ARCHIVE_URL = BASE_URL + "newsletter/"


@pytest.fixture
def built(tmp_path: Path) -> Scenario:
    """A daily issue for 19 November, then a weekly one for the 20th, each sent to its readers."""
    scenario = Scenario.create(tmp_path)
    scenario.publish([paper(1, ["mllm"]), paper(2, ["mllm", "vqa"]), paper(3, ["moe"])])
    scenario.subscribe("alice@example.com", "mllm")
    scenario.subscribe("bob@example.com", "", lang="en")
    scenario.subscribe("carol@example.com", "moe", frequency="weekly")
    for frequency, day in (("daily", "2026-11-19"), ("weekly", "2026-11-20")):
        result = run_cli(scenario, "newsletter", "--frequency", frequency, "--date", day)
        assert result.returncode == 0, result.stderr
    return scenario


def _page(scenario: Scenario) -> Path:
    return scenario.dest_dir / "newsletter" / "index.html"


def _feed(scenario: Scenario) -> Path:
    return scenario.dest_dir / "feeds" / "newsletter.xml"


def _local(scenario: Scenario, url: str) -> Path:
    assert url.startswith(BASE_URL), url
    return scenario.dest_dir / url.removeprefix(BASE_URL)


def _personal_data(scenario: Scenario) -> list[str]:
    """Every address, subscriber id and token a subscriber got: none of it may be public."""
    found = [*scenario.people, *(person.id for person in scenario.people.values())]
    for message in outbox_messages(scenario.outbox_dir):
        found.append(token_of(list_unsubscribe_url(message)))
    return found


def test_the_page_lists_every_issue_newest_first_each_linking_its_web_copy(built: Scenario) -> None:
    page = html.parse(str(_page(built))).getroot()
    articles = page.findall(".//main/article")
    links = [article.find(".//a").get("href") for article in articles]
    assert links == [
        BASE_URL + "newsletter/weekly-2026-W47/all.ru.html",
        BASE_URL + "newsletter/daily-2026-11-19/all.ru.html",
    ]
    metas = [article.findtext(".//p[@class='meta']") for article in articles]
    assert metas == ["Раз в неделю · 3 статьи", "Каждый день · 3 статьи"]
    assert [article.find(".//time").get("datetime") for article in articles] == ["2026-11-20", "2026-11-19"]
    for link in links:
        copy = _local(built, link).read_text(encoding="utf-8")
        for number in (1, 2, 3):
            assert f"Статья {number}:" in copy, f"{link} lacks paper {number}"
    # The page is one of the site's: its masthead, and a way back home.
    assert page.findtext(".//header[@class='masthead']/a") == "Ай Дайджест"
    assert page.find(".//footer/a").get("href") == BASE_URL


def test_the_feed_validates_parses_and_links_each_issue(built: Scenario, atom_schema: Any) -> None:
    document = etree.parse(str(_feed(built)))
    assert atom_schema.validate(document), atom_schema.error_log

    parsed = feedparser.parse(_feed(built).read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [entry.id for entry in parsed.entries] == [
        "tag:aidigest.example,2026:newsletter/weekly-2026-W47",
        "tag:aidigest.example,2026:newsletter/daily-2026-11-19",
    ]
    for entry in parsed.entries:
        assert _local(built, entry.link).is_file(), entry.link
        assert entry.title.startswith("Ай Дайджест: 3 новые статьи")
    self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
    assert self_links == [BASE_URL + "feeds/newsletter.xml"]
    # Its dates are the issues' own, never the clock's.
    assert parsed.feed.updated == max(entry.updated for entry in parsed.entries)


def test_no_personal_data_in_the_archive_or_the_copies_it_links(built: Scenario) -> None:
    public = [_page(built), _feed(built), *(built.dest_dir / "newsletter").rglob("*.html")]
    secrets = _personal_data(built)
    assert len(secrets) >= 3 * 3, secrets
    for path in public:
        text = path.read_text(encoding="utf-8")
        for secret in secrets:
            assert secret not in text, f"{path} holds {secret!r}"


def test_every_email_footer_links_the_archive_in_both_parts(built: Scenario) -> None:
    messages = outbox_messages(built.outbox_dir)
    assert len(messages) == 3
    for message in messages:
        text, body = body_parts(message)
        footer = text.rpartition(ARCHIVE_URL)
        assert footer[1], f"the text part to {message['To']} does not link the archive"
        assert f'href="{ARCHIVE_URL}"' in body, f"the HTML part to {message['To']} does not link the archive"
    # The web copies carry the public footer, which links it as well.
    copy = (built.dest_dir / "newsletter" / "daily-2026-11-19" / "all.ru.html").read_text(encoding="utf-8")
    assert f'href="{ARCHIVE_URL}"' in copy


def test_the_site_index_links_the_archive(built: Scenario) -> None:
    page = html.parse(str(built.dest_dir / "index.html")).getroot()
    assert ARCHIVE_URL in [link.get("href") for link in page.iter("a")]


def test_the_archive_page_is_valid_html(built: Scenario) -> None:
    assert html_problems([_page(built)]) == []


def test_a_rebuilt_issue_changes_neither_the_feed_nor_the_page(built: Scenario) -> None:
    feed, page = _feed(built).read_bytes(), _page(built).read_bytes()
    for frequency, day in (("daily", "2026-11-19"), ("weekly", "2026-11-20")):
        rerun = run_cli(built, "newsletter", "--frequency", frequency, "--date", day)
        assert rerun.returncode == 0, rerun.stderr
    assert _feed(built).read_bytes() == feed
    assert _page(built).read_bytes() == page
    assert len(outbox_messages(built.outbox_dir)) == 3, "a rerun sent again"


def test_a_dry_run_publishes_no_archive(tmp_path: Path) -> None:
    scenario = Scenario.create(tmp_path)
    scenario.publish([paper(1, ["mllm"])])
    # Publish wrote the archive with no issue in it: the dry run must leave it so.
    empty = _feed(scenario).read_bytes(), _page(scenario).read_bytes()
    scenario.subscribe("alice@example.com", "")
    result = run_cli(scenario, "newsletter", "--frequency", "daily", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert (_feed(scenario).read_bytes(), _page(scenario).read_bytes()) == empty
    assert feedparser.parse(empty[0]).entries == []
    assert not (scenario.state_dir / INDEX_KEY).exists()


def test_a_damaged_index_stops_the_run_saying_how_to_recover_and_rebuilds_from_saved_issues(
    built: Scenario,
) -> None:
    index = built.state_dir / INDEX_KEY
    index.write_text('[{"id": "daily-2026-11-19", "frequency": "hourly"', encoding="utf-8")
    built.publish([paper(4, ["mllm"])], day="2026/11/21")

    damaged = run_cli(built, "newsletter", "--frequency", "daily", "--date", "2026-11-21")
    assert damaged.returncode == 1, damaged.stderr
    assert INDEX_KEY in damaged.stderr and "delete it" in damaged.stderr, damaged.stderr

    index.unlink()
    recovered = run_cli(built, "newsletter", "--frequency", "daily", "--date", "2026-11-21")
    assert recovered.returncode == 0, recovered.stderr
    listed = [entry.id for entry in load_archive(built.state)]
    assert listed == ["daily-2026-11-21", "weekly-2026-W47", "daily-2026-11-19"]
    links = [a.get("href") for a in html.parse(str(_page(built))).getroot().findall(".//main/article//a")]
    assert links[0] == BASE_URL + "newsletter/daily-2026-11-21/all.ru.html"
    assert _local(built, links[0]).is_file()
    assert len(outbox_messages(built.outbox_dir)) == 3 + 2, "the recovered run did not send the issue"


class _RacingStore(FolderStore):
    """A state folder where another writer changes the index just before each of our first writes."""

    def __init__(self, root: Path, rival: Any, times: int) -> None:
        super().__init__(root)
        self.rival = rival
        self.times = times
        self.lost = 0

    def put(self, key: str, data: bytes, **options: Any) -> str:
        if key == INDEX_KEY and self.times > 0:
            self.times -= 1
            self.rival()
        try:
            return super().put(key, data, **options)
        except PreconditionFailed:
            self.lost += 1
            raise


def test_two_issues_recorded_at_once_are_both_listed(built: Scenario) -> None:
    daily = load_issue(built.state, "daily-2026-11-19")
    weekly = load_issue(built.state, "weekly-2026-W47")
    assert daily is not None and weekly is not None
    (built.state_dir / INDEX_KEY).unlink()
    plain = FolderStore(built.state_dir)
    racing = _RacingStore(built.state_dir, lambda: record_issue(plain, weekly.model_copy(update={"id": "weekly-x"})), 1)

    entries = record_issue(racing, daily)

    assert racing.lost == 1, "the rival's write did not race ours"
    assert {entry.id for entry in entries} >= {"daily-2026-11-19", "weekly-x"}
    assert {entry.id for entry in load_archive(plain)} >= {"daily-2026-11-19", "weekly-x"}


def test_an_index_that_never_settles_is_a_clear_error(built: Scenario) -> None:
    issue = load_issue(built.state, "daily-2026-11-19")
    assert issue is not None
    plain = FolderStore(built.state_dir)
    counter = iter(range(100))

    def rival() -> None:
        record_issue(plain, issue.model_copy(update={"id": f"daily-rival-{next(counter)}"}))

    racing = _RacingStore(built.state_dir, rival, times=100)
    fresh = issue.model_copy(update={"id": "daily-2026-11-30"})
    with pytest.raises(StorageError, match="kept changing"):
        record_issue(racing, fresh)
    # Nothing the other writer recorded is lost.
    assert {entry.id for entry in load_archive(plain)} >= {f"daily-rival-{number}" for number in range(10)}


def test_before_the_first_issue_the_index_links_an_empty_archive_that_the_first_issue_replaces(
    tmp_path: Path,
) -> None:
    scenario = Scenario.create(tmp_path)
    scenario.publish([paper(1, ["mllm"])])
    index = html.parse(str(scenario.dest_dir / "index.html")).getroot()
    [link] = [a.get("href") for a in index.iter("a") if a.get("href", "").startswith(ARCHIVE_URL)]
    page = _local(scenario, link + "index.html" if link.endswith("/") else link)  # as a web server serves it
    assert page.is_file(), "the index page links a newsletter archive that is not there"
    assert "Здесь пока пусто." in page.read_text(encoding="utf-8")
    assert html_problems([page]) == []
    assert feedparser.parse(_feed(scenario).read_bytes()).entries == []

    scenario.subscribe("alice@example.com", "mllm")
    result = run_cli(scenario, "newsletter", "--frequency", "daily", "--date", "2026-11-19")
    assert result.returncode == 0, result.stderr
    issued = page.read_bytes()
    assert b"daily-2026-11-19" in issued

    # A publish keeps the newsletter's archive; a rebuild renders it again from the state's list of issues.
    scenario.publish([paper(2, ["moe"])])
    assert page.read_bytes() == issued
    rebuilt = publish(
        scenario.source,
        scenario.dest,
        scenario.state,
        SITE,
        PublishOptions(rebuild=True, workers=1, site_parts=SITE_PARTS),
    )
    assert rebuilt.summaries_new == 2
    assert page.read_bytes() == issued
