"""WebSub publish notifications: which feeds to announce, and telling every hub within a bounded time.

A hub that fails is reported and logged, never raised: the feeds are published
either way, and its readers still poll. Each hub is told on a thread of its
own, so one that never answers costs no other hub its notification, and the
run waits for none of them past ``within`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from digestpub.errors import HubError
from digestpub.model import HubFailure
from digestpub.ports import HubNotifier
from digestpub.render import feed_formats
from digestpub.site import Site

log = logging.getLogger("digestpub.publish.websub")

MAX_TOPICS_PER_REQUEST = 100
"""hub.url values in one request: hubs that take several (Google's, Superfeedr) get them in few requests."""
_REQUEST_TIMEOUT = 10.0
_GRACE = 1.0
"""How long past the deadline a hub's thread may take to give up its last request."""


@dataclass(frozen=True)
class HubPolicy:
    within: float = 15.0
    """Seconds a run may spend telling its hubs, all of them at once."""
    attempts: int = 4
    backoff: float = 0.5
    """Seconds before the second attempt; doubled before each next one."""


def changed_feed_urls(site: Site, changed_files: Iterable[tuple[str, str]]) -> list[str]:
    """The public URLs of the feeds among ``(kind, path)`` files whose bytes changed: WebSub's topics."""
    return sorted({site.url(path) for kind, path in changed_files if feed_formats.named(kind) is not None})


def notify_hubs(
    notifier: HubNotifier,
    hubs: Sequence[str],
    topics: Sequence[str],
    policy: HubPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> list[HubFailure]:
    """Tell each hub of ``topics``; the hubs that could not be told, and why."""
    if not hubs or not topics:
        return []
    deadline = time.monotonic() + policy.within
    outcomes: dict[str, HubFailure | None] = {}

    def tell(hub: str) -> None:
        try:
            outcomes[hub] = _tell(notifier, hub, topics, deadline, policy, sleep)
        except Exception as error:  # a hub's failure, whatever it is, must not become the run's
            log.exception("telling WebSub hub %s failed", hub)
            outcomes[hub] = HubFailure(hub=hub, feeds=len(topics), reason=f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=tell, args=(hub,), name="digestpub-websub", daemon=True) for hub in hubs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + _GRACE)
    failures = []
    silent = f"no answer within {policy.within:g} s"
    for hub in hubs:
        failure = outcomes.get(hub, HubFailure(hub=hub, feeds=len(topics), reason=silent))
        if failure is None:
            log.info("told WebSub hub %s of %d changed feed(s)", hub, len(topics))
        else:
            log.warning("WebSub hub %s was not told of %d changed feed(s): %s", hub, failure.feeds, failure.reason)
            failures.append(failure)
    return failures


def _tell(
    notifier: HubNotifier,
    hub: str,
    topics: Sequence[str],
    deadline: float,
    policy: HubPolicy,
    sleep: Callable[[float], None],
) -> HubFailure | None:
    pending = [list(topics[at : at + MAX_TOPICS_PER_REQUEST]) for at in range(0, len(topics), MAX_TOPICS_PER_REQUEST)]
    untold, reason = 0, ""
    while pending:
        batch = pending.pop(0)
        error = _send(notifier, hub, batch, deadline, policy, sleep)
        if error is None:
            continue
        if len(batch) > 1 and _refused(error):
            # Not every hub takes several hub.url values: it is asked once per feed instead.
            pending[:0] = [[topic] for topic in batch]
            continue
        untold += len(batch)
        reason = str(error)
    return None if not untold else HubFailure(hub=hub, feeds=untold, reason=reason)


def _send(
    notifier: HubNotifier,
    hub: str,
    batch: list[str],
    deadline: float,
    policy: HubPolicy,
    sleep: Callable[[float], None],
) -> HubError | None:
    delay = policy.backoff
    last = HubError(f"no time left within {policy.within:g} s")
    for attempt in range(1, policy.attempts + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            notifier.publish(hub, batch, min(remaining, _REQUEST_TIMEOUT))
            return None
        except HubError as error:
            last = HubError(f"{error} (attempt {attempt} of {policy.attempts})", error.status)
            if _refused(error) or attempt == policy.attempts:
                break
        sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay *= 2
    return last


def _refused(error: HubError) -> bool:
    """A redirect or a 4xx answer other than "too many" or "timed out": asking again the same way will not help."""
    return error.status is not None and 300 <= error.status < 500 and error.status not in (408, 429)
