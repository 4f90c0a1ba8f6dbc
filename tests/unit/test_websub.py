"""The WebSub core's retry rules over a scripted notifier; the real HTTP hub is in tests/integration/test_websub.py."""

from __future__ import annotations

from collections.abc import Iterator

from digestpub.errors import HubError
from digestpub.publish.websub import MAX_TOPICS_PER_REQUEST, HubPolicy, changed_feed_urls, notify_hubs
from digestpub.site import Site

HUB = "https://hub.example/"


class ScriptedNotifier:
    """Answers each request with the next status of its script (``None``: no answer at all)."""

    def __init__(self, answers: Iterator[int | None]) -> None:
        self.answers = answers
        self.requests: list[list[str]] = []

    def publish(self, hub: str, topics: list[str], timeout: float) -> None:
        self.requests.append(list(topics))
        status = next(self.answers)
        if status is None:
            raise HubError("unreachable: connection refused")
        if status >= 300:
            raise HubError(f"answered {status}", status)


def repeat(*statuses: int | None) -> Iterator[int | None]:
    yield from statuses
    while True:
        yield statuses[-1]


def test_only_feed_files_are_topics_at_their_public_urls() -> None:
    site = Site("t", "d", "ru", "https://aidigest.example/", "https://aidigest.example/")
    changed = [("rss", "feeds/rss.xml"), ("page", "tags/moe/index.html"), ("json", "feeds/tags/moe/feed.json")]
    assert changed_feed_urls(site, changed) == [
        "https://aidigest.example/feeds/rss.xml",
        "https://aidigest.example/feeds/tags/moe/feed.json",
    ]


def test_server_errors_are_retried_with_doubling_backoff() -> None:
    notifier, slept = ScriptedNotifier(repeat(503, None, 429, 204)), []
    failures = notify_hubs(notifier, [HUB], ["a", "b"], HubPolicy(attempts=4, backoff=0.5), sleep=slept.append)
    assert failures == []
    assert len(notifier.requests) == 4
    assert slept == [0.5, 1.0, 2.0]


def test_a_hub_failing_every_attempt_is_reported_with_its_last_answer() -> None:
    notifier, slept = ScriptedNotifier(repeat(500)), []
    [failure] = notify_hubs(notifier, [HUB], ["a", "b", "c"], HubPolicy(attempts=3), sleep=slept.append)
    assert (failure.hub, failure.feeds) == (HUB, 3)
    assert "answered 500 (attempt 3 of 3)" in failure.reason
    assert len(slept) == 2  # no wait after the last attempt


def test_many_topics_go_in_batches_and_a_refused_batch_goes_one_by_one() -> None:
    topics = [f"https://aidigest.example/feeds/tags/t{n}/rss.xml" for n in range(MAX_TOPICS_PER_REQUEST + 3)]
    accepted = ScriptedNotifier(repeat(204))
    assert notify_hubs(accepted, [HUB], topics, HubPolicy(), sleep=lambda _: None) == []
    assert [len(batch) for batch in accepted.requests] == [MAX_TOPICS_PER_REQUEST, 3]

    # The batch is refused, then the first topic alone (a refusal is final), then the rest are taken.
    picky = ScriptedNotifier(repeat(400, 400, 204))
    [failure] = notify_hubs(picky, [HUB], topics[:3], HubPolicy(), sleep=lambda _: None)
    assert failure.feeds == 1 and "answered 400" in failure.reason
    assert picky.requests == [topics[:3], topics[:1], topics[1:2], topics[2:3]]


def test_an_unexpected_error_in_a_notifier_is_a_failure_not_a_crash() -> None:
    class Broken:
        def publish(self, hub: str, topics: list[str], timeout: float) -> None:
            raise RuntimeError("bug")

    [failure] = notify_hubs(Broken(), [HUB], ["a"], HubPolicy(), sleep=lambda _: None)
    assert failure.reason == "RuntimeError: bug"
