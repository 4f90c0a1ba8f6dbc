"""``digestpub serve`` over HTTP on 127.0.0.1: concurrent readers, hostile requests, feeds.

One ``digestpub serve`` subprocess (SQLite subscribers, an outbox folder) runs over
the published examples for the whole module; every loop is bounded in count and time.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import pytest
import requests

from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.model import Subscriber
from digestpub.subscriptions.endpoints import form_token
from digestpub.subscriptions.subscribers import new_subscriber
from digestpub.subscriptions.tokens import make_token
from tests.conftest import FEED_TYPES
from tests.serve_support import free_port, publish_examples, running_serve, serve_env
from tests.subscriber_contract import publish_tags

TOKEN_KEY = "a-test-key-that-is-long-enough-0123456789"
TIMEOUT = 20


@dataclass(frozen=True)
class Served:
    base_url: str
    port: int
    root: Path

    def store(self) -> SqliteSubscriberStore:
        return SqliteSubscriberStore(self.root / "s.db")

    def preferences_url(self, subscriber: Subscriber) -> str:
        return f"{self.base_url}preferences?token={make_token(TOKEN_KEY.encode(), subscriber.id, 'preferences')}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/"
    publish_examples(root, base_url)
    with running_serve(root, serve_env(root, base_url, token_key=TOKEN_KEY), port):
        yield Served(base_url, port, root)


def _confirmed(served: Served, address: str) -> Subscriber:
    subscriber = new_subscriber(address, "mllm", "daily", "en", status="confirmed")
    served.store().save(subscriber)
    return subscriber


# --- no shared request state ---------------------------------------------------------------


def test_concurrent_preference_pages_each_carry_only_their_own_subscriber(served: Served) -> None:
    alice = _confirmed(served, "alice-pages@example.com")
    bob = _confirmed(served, "bob-pages@example.com")
    people = {alice.email: (served.preferences_url(alice), bob), bob.email: (served.preferences_url(bob), alice)}

    def fetch(number: int) -> str:
        address = (alice.email, bob.email)[number % 2]
        url, other = people[address]
        response = requests.get(url, timeout=TIMEOUT)
        token = url.rpartition("token=")[2]
        other_token = people[other.email][0].rpartition("token=")[2]
        page = response.text
        problems = []
        if response.status_code != 200:
            problems.append(f"status {response.status_code}")
        if address not in page or token not in page:
            problems.append("own address or token missing")
        if other.email in page or other_token in page:
            problems.append("the other subscriber's address or token shown")
        return f"{address}: {', '.join(problems)}" if problems else ""

    with ThreadPoolExecutor(max_workers=24) as pool:
        outcomes = list(pool.map(fetch, range(600), timeout=240))
    wrong = [outcome for outcome in outcomes if outcome]
    assert not wrong, f"{len(wrong)} of 600 pages wrong, e.g. {wrong[:3]}"


def test_fifty_simultaneous_subscribes_are_all_answered(served: Served) -> None:
    start = threading.Barrier(50, timeout=TIMEOUT)

    def subscribe(number: int) -> int:
        start.wait()
        body = {"email": f"burst{number}@example.com", "tags": "mllm", "lang": "en"}
        return requests.post(served.base_url + "subscribe", data=body, timeout=TIMEOUT).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(subscribe, range(50), timeout=120))
    assert statuses == [200] * 50
    store = served.store()
    assert all(store.find(f"burst{number}@example.com") is not None for number in range(50))


# --- malformed requests ----------------------------------------------------------------------


def _exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Send raw bytes, read the answer to its end: a reset or silence fails the test."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
        connection.sendall(request)
        received = bytearray()
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", head)
    assert match, f"no HTTP answer, got {bytes(received[:200])!r}"
    return int(match.group(1)), body


def _post(path: str, body: bytes, content_type: str = "application/x-www-form-urlencoded", **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
    if "Content_Length" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _get(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode("latin-1")


_NESTED = b"[" * 30_000 + b"]" * 30_000
MALFORMED = {
    "content-length abc": (_post("/subscribe", b"email=x%40example.com", Content_Length="abc"), 400),
    "content-length -5": (_post("/subscribe", b"email=x%40example.com", Content_Length="-5"), 400),
    "two content-lengths": (_post("/subscribe", b"email=x", Content_Length="7\r\nContent-Length: 9"), 400),
    "content-length huge": (_post("/subscribe", b"email=x%40example.com", Content_Length="99999999999"), 413),
    "10 MB body": (_post("/subscribe", b"tags=" + b"a+" * 5_000_000), 413),
    "chunked body": (_post("/subscribe", b"5\r\nemail\r\n0\r\n\r\n", Transfer_Encoding="chunked"), 411),
    "json list": (_post("/subscribe", b"[1,2,3]", "application/json"), 400),
    "json null": (_post("/subscribe", b"null", "application/json"), 400),
    "json number": (_post("/subscribe", b"5", "application/json"), 400),
    "json nested": (_post("/subscribe", _NESTED, "application/json"), 400),
    "json nested field": (_post("/subscribe", b'{"email": {"a": [1]}}', "application/json"), 400),
    "json not json": (_post("/subscribe", b'{"email": ', "application/json"), 400),
    "form not utf-8": (_post("/subscribe", b"email=\xff\xfe@example.com"), 400),
    "form percent not utf-8": (_post("/subscribe", b"email=%ff%fe%40example.com"), 400),
    "too many fields": (_post("/subscribe", b"&".join(b"f%d=1" % n for n in range(200))), 400),
    "multipart without boundary": (_post("/subscribe", b"--x\r\n\r\n", "multipart/form-data"), 400),
    "unknown content type": (_post("/subscribe", b"email=x", "text/plain"), 415),
    "21 tags": (_post("/subscribe", b"email=t21%40example.com&tags=" + b"+".join(b"t%d" % n for n in range(21))), 400),
    "300,000 tags": (_post("/subscribe", b"tags=" + b"+".join(b"t%d" % n for n in range(300_000))), 413),
    "overlong tag": (_post("/subscribe", b"email=tl%40example.com&tags=" + b"a" * 101), 400),
    "query not utf-8": (_get("/confirm?token=%ff%fe"), 400),
    "query too long": (_get("/confirm?token=" + "a" * 5000), 414),
    "path with NUL": (_get("/%00"), 400),
    "api path with NUL": (_get("/preferences%00?token=x"), 400),
    "path with control characters": (_get("/feeds/%0d%0aSet-Cookie:%20a=b"), 400),
    "long path": (_get("/" + "a" * 5_000), 414),
    "very long path": (_get("/" + "a" * 70_000), 414),
    "long file name": (_get("/" + "a" * 1_000), 404),
    "path outside the site": (_get("/../../etc/passwd"), 404),
    "garbled request line": (b"GET\r\n\r\n", 400),
    "150 headers": (
        _get("/").replace(b"\r\n\r\n", b"".join(b"\r\nX-%d: 1" % n for n in range(150)) + b"\r\n\r\n"),
        431,
    ),
    "a 70 KB header": (_get("/").replace(b"\r\n\r\n", b"\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n"), 431),
    "post to a page": (_post("/index.html", b"a=b"), 405),
    "put to an endpoint": (b"PUT /subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 501),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_requests_get_a_short_page_and_the_server_keeps_answering(served: Served, name: str) -> None:
    request, expected = MALFORMED[name]
    status, body = _exchange(served.port, request)
    assert status == expected, body[:300]
    assert b"<html" in body and len(body) < 20_000
    assert requests.get(served.base_url, timeout=TIMEOUT).status_code == 200
    follow_up = requests.post(served.base_url + "subscribe", data={"email": "after@example.com"}, timeout=TIMEOUT)
    assert follow_up.status_code == 200


def test_a_body_that_stops_short_gets_408(served: Served) -> None:
    # serve waits 10 seconds for a body before it gives up on it.
    status, body = _exchange(served.port, _post("/subscribe", b"email=", Content_Length="100"))
    assert status == 408 and b"<html" in body
    assert requests.get(served.base_url, timeout=TIMEOUT).status_code == 200


def test_a_target_starting_with_two_slashes_stays_on_the_site(served: Served) -> None:
    status, _ = _exchange(served.port, _get("//evil.example/feeds"))
    assert status == 404
    response = requests.get(served.base_url + "/feeds", allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code == 301 and response.headers["Location"] == "/feeds/"


def test_refused_form_values_store_nothing(served: Served) -> None:
    for address in ("t21@example.com", "tl@example.com"):
        assert served.store().find(address) is None


def test_a_json_subscribe_and_a_multipart_one_are_read(served: Served) -> None:
    body = json.dumps({"email": "json@example.com", "tags": ["mllm", "vqa"], "lang": "en"}).encode()
    assert _exchange(served.port, _post("/subscribe", body, "application/json"))[0] == 200
    found = served.store().find("json@example.com")
    assert found is not None and found.tags == ("mllm", "vqa")
    boundary = "b0und"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\nmulti@example.com\r\n--{boundary}--\r\n'
    ).encode()
    request = _post("/subscribe", multipart, f"multipart/form-data; boundary={boundary}")
    assert _exchange(served.port, request)[0] == 200
    assert served.store().find("multi@example.com") is not None


def test_a_preference_save_within_the_limits_still_works(served: Served) -> None:
    person = _confirmed(served, "limits@example.com")
    url = served.preferences_url(person)
    form = form_token(TOKEN_KEY.encode(), url.rpartition("token=")[2])
    twenty = " ".join(f"tag{number}" for number in range(20))
    publish_tags(served.root, {*twenty.split(), "one-more"}, with_examples=True)  # only real tags are chosen
    response = requests.post(url, data={"form": form, "tags": twenty, "frequency": "weekly"}, timeout=TIMEOUT)
    assert response.status_code == 200
    saved = served.store().get(person.id)
    assert saved is not None and len(saved.tags) == 20 and saved.frequency == "weekly"
    response = requests.post(url, data={"form": form, "tags": twenty + " one-more"}, timeout=TIMEOUT)
    assert response.status_code == 400
    assert served.store().get(person.id) == saved


# --- feeds as S3 serves them -----------------------------------------------------------------

SERVED_TYPES = {
    **FEED_TYPES,
    "feeds/tags.opml": "text/x-opml; charset=utf-8",
    "tags/mllm/": "text/html; charset=utf-8",
}


@pytest.mark.parametrize("path", list(SERVED_TYPES))
def test_feeds_have_the_contract_types_and_answer_conditional_gets(served: Served, path: str) -> None:
    url = served.base_url + path
    response = requests.get(url, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == SERVED_TYPES[path]
    etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"other", W/{etag}'}, {"If-Modified-Since": modified}):
        again = requests.get(url, headers=headers, timeout=TIMEOUT)
        assert again.status_code == 304, headers
        assert again.content == b"" and again.headers["ETag"] == etag

    # A changed tag or an older date gets the whole file; If-None-Match decides over the date.
    for headers in (
        {"If-None-Match": '"not-this-one"'},
        {"If-Modified-Since": formatdate(0, usegmt=True)},
        {"If-None-Match": '"not-this-one"', "If-Modified-Since": modified},
        {"If-Modified-Since": "not a date"},
    ):
        again = requests.get(url, headers=headers, timeout=TIMEOUT)
        assert again.status_code == 200 and again.content == response.content, headers

    head = requests.head(url, timeout=TIMEOUT)
    assert head.status_code == 200 and head.headers["ETag"] == etag and head.content == b""


def test_a_rewritten_feed_gets_a_new_etag(served: Served) -> None:
    target = served.root / "public" / "feeds" / "extra" / "rss.xml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"<rss>one</rss>")
    first = requests.get(served.base_url + "feeds/extra/rss.xml", timeout=TIMEOUT)
    target.write_bytes(b"<rss>two</rss>")
    second = requests.get(
        served.base_url + "feeds/extra/rss.xml", headers={"If-None-Match": first.headers["ETag"]}, timeout=TIMEOUT
    )
    assert second.status_code == 200 and second.content == b"<rss>two</rss>"
    assert second.headers["ETag"] != first.headers["ETag"]
