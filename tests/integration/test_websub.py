"""WebSub: every feed names the hubs, and after each run a hub of our own on 127.0.0.1 is told
exactly the feeds whose bytes changed. Hubs that fail (500, a refusal of several topics at
once, no answer at all, nobody listening) leave the run green, quick, and in its report.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from digestpub.adapters.folder_store import FolderStore
from digestpub.adapters.websub_hubs import HttpHubNotifier
from digestpub.model import PublishReport
from digestpub.publish import PublishOptions, publish
from digestpub.publish.websub import HubPolicy
from digestpub.site import Site
from tests.conftest import summary, write_json
from tests.e2e.test_cli import _env as cli_env
from tests.e2e.test_cli import run as run_cli
from tests.websub_support import Hub

BASE_URL = "https://aidigest.example/"
ATOM = "{http://www.w3.org/2005/Atom}"
FAST = HubPolicy(within=5.0, attempts=3, backoff=0.05)


@pytest.fixture
def silent_hub() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hub"
    stop.set()
    thread.join(5)
    for connection in held:
        connection.close()
    listener.close()


def site(*hubs: str) -> Site:
    return Site("Ай Дайджест", "Свежая выжимка", "ru", BASE_URL, BASE_URL, hubs=hubs)


def run(root: Path, hubs: tuple[str, ...], policy: HubPolicy = FAST) -> PublishReport:
    return publish(
        FolderStore(root / "source"),
        FolderStore(root / "public"),
        FolderStore(root / "state"),
        site(*hubs),
        PublishOptions(workers=1, lock_wait=timedelta(seconds=2), hub_policy=policy),
        notifier=HttpHubNotifier(),
    )


def add(root: Path, number: int, tags: list[str]) -> None:
    write_json(root / "source", f"2026/11/20/{number}.json", summary(number, tags=tags))


def feed_urls(public: Path) -> set[str]:
    """Every subscription feed published; archive months are not subscribed to, so hubs never hear of them."""
    names = {"rss.xml", "atom.xml", "feed.json"}
    paths = (path.relative_to(public).as_posix() for path in public.rglob("*") if path.name in names)
    return {BASE_URL + path for path in paths if "/archive/" not in path}


def feeds_of(*folders: str) -> set[str]:
    return {f"{BASE_URL}{folder}/{name}" for folder in folders for name in ("rss.xml", "atom.xml", "feed.json")}


def test_every_feed_declares_the_hubs_beside_rel_self(tmp_path: Path, hub_server: Callable[[Hub], Hub]) -> None:
    first, second = hub_server(Hub()), hub_server(Hub())
    add(tmp_path, 1, ["mllm"])
    run(tmp_path, (first.url, second.url))
    public = tmp_path / "public"
    for folder in ("feeds", "feeds/tags/mllm"):
        atom = etree.fromstring((public / folder / "atom.xml").read_bytes())
        links = [(link.get("rel"), link.get("href")) for link in atom.findall(f"{ATOM}link")]
        assert links[:3] == [
            ("self", f"{BASE_URL}{folder}/atom.xml"),
            ("hub", first.url),
            ("hub", second.url),
        ]
        rss = etree.fromstring((public / folder / "rss.xml").read_bytes())
        rss_links = [(link.get("rel"), link.get("href")) for link in rss.find("channel").findall(f"{ATOM}link")]
        assert rss_links == [("self", f"{BASE_URL}{folder}/rss.xml"), ("hub", first.url), ("hub", second.url)]
        feed = json.loads((public / folder / "feed.json").read_text(encoding="utf-8"))
        assert feed["hubs"] == [{"type": "WebSub", "url": first.url}, {"type": "WebSub", "url": second.url}]
        assert feed["items"], folder


def test_without_hubs_no_feed_names_one(tmp_path: Path) -> None:
    add(tmp_path, 1, ["mllm"])
    run(tmp_path, ())
    for path in (tmp_path / "public").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert 'rel="hub"' not in text and '"hubs"' not in text, path


def test_a_hub_is_told_exactly_the_feeds_whose_bytes_changed(tmp_path: Path, hub_server: Callable[[Hub], Hub]) -> None:
    hub = hub_server(Hub())
    add(tmp_path, 1, ["mllm"])
    add(tmp_path, 2, ["vqa"])
    report = run(tmp_path, (hub.url,))
    assert hub.told() == feed_urls(tmp_path / "public") == feeds_of("feeds", "feeds/tags/mllm", "feeds/tags/vqa")
    assert (report.feeds_announced, report.hub_failures) == (9, [])
    assert all(form["hub.mode"] == ["publish"] for form in hub.requests)
    assert set(hub.content_types) == {"application/x-www-form-urlencoded"}
    assert len(hub.requests) == 1  # one request for the batch

    hub.requests.clear()
    again = run(tmp_path, (hub.url,))
    assert hub.requests == [] and again.feeds_announced == 0

    add(tmp_path, 3, ["moe"])
    run(tmp_path, (hub.url,))
    # The new tag's feeds and the feed of everything; mllm and vqa did not change.
    assert hub.told() == feeds_of("feeds", "feeds/tags/moe")


def test_a_hub_answering_500_leaves_the_run_green_with_the_failure_in_its_report(
    tmp_path: Path, hub_server: Callable[[Hub], Hub]
) -> None:
    broken = hub_server(Hub(status=lambda topics: 500))
    working = hub_server(Hub())
    add(tmp_path, 1, ["mllm"])
    report = run(tmp_path, (broken.url, working.url))

    assert report.summaries_new == 1 and report.files_written > 0
    assert len(broken.requests) == FAST.attempts  # retried, then given up
    assert working.told() == feeds_of("feeds", "feeds/tags/mllm")
    [failure] = report.hub_failures
    assert (failure.hub, failure.feeds) == (broken.url, 6)
    assert "500" in failure.reason
    saved = PublishReport.model_validate_json((tmp_path / "state" / "reports" / "latest.json").read_bytes())
    assert saved.hub_failures == report.hub_failures
    assert "1 WebSub hub(s) not told" in report.summary_line()


def test_a_hub_that_refuses_several_topics_is_told_one_at_a_time(
    tmp_path: Path, hub_server: Callable[[Hub], Hub]
) -> None:
    hub = hub_server(Hub(status=lambda topics: 400 if len(topics) > 1 else 204))
    add(tmp_path, 1, ["mllm"])
    report = run(tmp_path, (hub.url,))
    assert report.hub_failures == []
    assert hub.told() == feeds_of("feeds", "feeds/tags/mllm")
    assert len(hub.requests) == 1 + 6


def test_a_hub_that_refuses_a_topic_is_not_asked_again(tmp_path: Path, hub_server: Callable[[Hub], Hub]) -> None:
    hub = hub_server(Hub(status=lambda topics: 404))
    add(tmp_path, 1, ["mllm"])
    report = run(tmp_path, (hub.url,))
    assert [(failure.feeds, "404" in failure.reason) for failure in report.hub_failures] == [(6, True)]
    assert len(hub.requests) == 1 + 6  # the batch, then each topic once: a refusal is not retried


def test_a_hub_that_never_answers_does_not_hang_the_run(
    tmp_path: Path, silent_hub: str, hub_server: Callable[[Hub], Hub]
) -> None:
    working = hub_server(Hub())
    add(tmp_path, 1, ["mllm"])
    started = time.monotonic()
    report = run(tmp_path, (silent_hub, working.url), HubPolicy(within=1.5, attempts=3, backoff=0.1))
    took = time.monotonic() - started

    assert took < 5, took
    assert working.told() == feeds_of("feeds", "feeds/tags/mllm")
    [failure] = report.hub_failures
    assert failure.hub == silent_hub and failure.feeds == 6
    assert report.seconds["notify_hubs"] < 3


def test_the_cli_publishes_green_when_no_hub_listens_and_report_shows_it(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}/hub"
    add(tmp_path, 1, ["mllm"])

    def digestpub(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(tmp_path, *args, env=cli_env(DIGESTPUB_HUBS=nowhere))

    published = digestpub("publish", "--source", "source", "--dest", "public", "--state", "state")
    assert published.returncode == 0, published.stderr
    assert "1 WebSub hub(s) not told" in published.stdout
    assert nowhere in " ".join(published.stderr.split())
    assert 'rel="hub"' in (tmp_path / "public" / "feeds" / "atom.xml").read_text(encoding="utf-8")
    shown = digestpub("report", "--state", "state")
    assert shown.returncode == 0
    assert f"WebSub hub {nowhere} was not told of 6 feed(s)" in " ".join(shown.stdout.split())

    bad = digestpub("publish", "--hubs", "ftp://hub.example/", "--source", "source", "--dest", "public")
    assert bad.returncode == 2
    assert "hub" in bad.stderr and "http(s)" in bad.stderr


def test_hubs_come_from_a_toml_list_or_string_and_bad_ones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digestpub.errors import ConfigError
    from digestpub.settings import Settings

    monkeypatch.delenv("DIGESTPUB_HUBS", raising=False)
    config = tmp_path / "digestpub.toml"
    config.write_text('hubs = ["https://hub.example/", "https://other.example/hub", "https://hub.example/"]\n')
    assert Settings.load(config).site().hubs == ("https://hub.example/", "https://other.example/hub")
    monkeypatch.setenv("DIGESTPUB_HUBS", "  https://env.example/hub  ")
    assert Settings.load(config).site().hubs == ("https://env.example/hub",)
    assert Settings.load(config, hubs="").site().hubs == ()
    with pytest.raises(ConfigError, match="javascript:x"):
        Settings.load(None, hubs="https://ok.example/ javascript:x")


def test_a_run_killed_after_its_commit_leaves_its_hubs_to_the_next_run(
    tmp_path: Path, hub_server: Callable[[Hub], Hub]
) -> None:
    """A process killed (or a function timed out) between committing and telling the hubs: the next
    run tells them, even with nothing new of its own, and the run after it does not tell them again."""
    arrived, answer = threading.Event(), threading.Event()

    def held_until_answered(topics: list[str]) -> int:
        arrived.set()
        answer.wait(30)
        return 204

    hub = hub_server(Hub(status=held_until_answered))
    add(tmp_path, 1, ["mllm"])
    env = cli_env(DIGESTPUB_HUBS=hub.url, DIGESTPUB_BASE_URL=BASE_URL)
    arguments = [sys.executable, "-m", "digestpub", "publish", "--source", "source", "--dest", "public"]
    killed = subprocess.Popen([*arguments, "--state", "state"], cwd=tmp_path, env=env)
    try:
        assert arrived.wait(60), "the run never told the hub"
    finally:
        killed.kill()
        killed.wait(30)
    answer.set()
    assert (tmp_path / "state" / "catalog" / "head.json").is_file()  # it had committed
    hub.requests.clear()

    recovered = run_cli(tmp_path, "publish", "--source", "source", "--dest", "public", "--state", "state", env=env)
    assert recovered.returncode == 0, recovered.stderr
    assert "summaries: 0 new" in recovered.stdout
    assert "stopped before it told the WebSub hubs of 6 changed feed(s)" in " ".join(recovered.stderr.split())
    assert hub.told() == feeds_of("feeds", "feeds/tags/mllm")

    hub.requests.clear()
    quiet = run_cli(tmp_path, "publish", "--source", "source", "--dest", "public", "--state", "state", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert hub.requests == []
