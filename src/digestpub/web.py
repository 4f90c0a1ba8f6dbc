"""The subscription endpoints, one set of routes for the cloud function and ``digestpub serve``.

Routes use aws-lambda-powertools' HTTP API resolver; ``digestpub serve`` turns each
local request into the same API Gateway v2 event, so both answer alike.
"""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import logging
from collections.abc import Callable
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from digestpub.errors import DigestpubError
from digestpub.model import Subscriber
from digestpub.site import Site
from digestpub.subscribers import InvalidAddress, InvalidSubscriber
from digestpub.subscriptions import Subscriptions
from digestpub.templates import environment
from digestpub.tokens import InvalidToken
from digestpub.words import words_for

log = logging.getLogger("digestpub.web")

HTML = "text/html; charset=utf-8"
ROUTES = ("/subscribe", "/confirm", "/unsubscribe", "/preferences")


def form_token(key: bytes, token: str) -> str:
    """The hidden field a page's form must send back: only our own page knows it."""
    return hmac.new(key, b"form\x00" + token.encode(), hashlib.sha256).hexdigest()[:32]


def build_app(subscriptions: Callable[[], Subscriptions], site: Site) -> APIGatewayHttpResolver:
    """The routes; ``subscriptions`` builds the use cases on first need (cold starts stay cheap)."""
    app = APIGatewayHttpResolver()
    cache: list[Subscriptions] = []

    def use() -> Subscriptions:
        if not cache:
            cache.append(subscriptions())
        return cache[0]

    def page(status: int, lang: str, **context: Any) -> Response[str]:
        words = words_for(lang)
        template = environment().get_template("web/page.html.j2")
        body = template.render(site=site, words=words, lang=lang, title=site.title, **{"kind": "", **context})
        headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
        return Response(status_code=status, content_type=HTML, body=body, headers=headers)

    def form() -> dict[str, str]:
        event = app.current_event
        body = event.decoded_body or ""
        content_type = (event.headers or {}).get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            return _multipart_fields(content_type, body)
        if "json" in content_type:
            import json

            try:
                data = json.loads(body)
            except ValueError:
                return {}
            return {str(key): " ".join(value) if isinstance(value, list) else str(value) for key, value in data.items()}
        return {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}

    def token() -> str:
        return app.current_event.get_query_string_value("token", "") or ""

    def invalid(lang: str, error: InvalidSubscriber) -> Response[str]:
        wording = "bad_address" if isinstance(error, InvalidAddress) else "bad_request"
        return page(400, lang, message=words_for(lang)[wording].format(reason=error))

    def refused(lang: str) -> Response[str]:
        return page(403, lang, message=words_for(lang)["bad_link"])

    def same_origin() -> bool:
        headers = app.current_event.headers or {}
        origin = headers.get("origin") or headers.get("referer")
        if not origin:
            return True  # browsers send Origin on cross-site POSTs; other clients are not CSRF
        allowed = {_origin(site.base_url), _origin(site.api_url)}
        return _origin(origin) in allowed

    @app.post("/subscribe")
    def subscribe() -> Response[str]:
        fields = form()
        lang = fields.get("lang") or site.lang
        if not same_origin():
            return page(403, lang, message=words_for(lang)["bad_link"])
        try:
            use().subscribe(fields.get("email", ""), fields.get("tags", ""), fields.get("frequency", "daily"), lang)
        except InvalidSubscriber as error:
            return invalid(lang, error)
        return page(200, lang, message=words_for(lang)["check_inbox"])

    @app.get("/confirm")
    def confirm() -> Response[str]:
        try:
            subscriber = use().confirm(token())
        except InvalidToken:
            return refused(site.lang)
        return page(200, subscriber.lang, message=words_for(subscriber.lang)["confirmed"], subscriber=subscriber)

    @app.get("/unsubscribe")
    def unsubscribe_page() -> Response[str]:
        # Link scanners follow GETs: this only shows the button.
        try:
            subscriber = use().peek(token(), "unsubscribe")
        except InvalidToken:
            return refused(site.lang)
        return _form_page("unsubscribe", subscriber)

    @app.post("/unsubscribe")
    def unsubscribe() -> Response[str]:
        # RFC 8058 one-click: List-Unsubscribe=One-Click, url-encoded or multipart.
        one_click = form().get("List-Unsubscribe") == "One-Click"
        try:
            subscriber = use().peek(token(), "unsubscribe")
            if not one_click and form().get("form") != form_token(use().token_key, token()):
                return refused(subscriber.lang)
            subscriber = use().unsubscribe(token())
        except InvalidToken:
            return refused(site.lang)
        if one_click:  # RFC 8058: a plain 200, no redirect
            return Response(status_code=200, content_type="text/plain; charset=utf-8", body="unsubscribed\n")
        return page(200, subscriber.lang, message=words_for(subscriber.lang)["unsubscribed"])

    @app.get("/preferences")
    def preferences_page() -> Response[str]:
        try:
            subscriber = use().peek(token(), "preferences")
        except InvalidToken:
            return refused(site.lang)
        return _form_page("preferences", subscriber)

    @app.post("/preferences")
    def preferences() -> Response[str]:
        fields = form()
        try:
            subscriber = use().peek(token(), "preferences")
        except InvalidToken:
            return refused(site.lang)
        if fields.get("form") != form_token(use().token_key, token()):
            return refused(subscriber.lang)
        try:
            subscriber = use().update_preferences(
                token(),
                fields.get("tags", ""),
                fields.get("frequency", subscriber.frequency),
                fields.get("lang", subscriber.lang),
            )
        except InvalidToken:
            return refused(site.lang)
        except InvalidSubscriber as error:
            return invalid(subscriber.lang, error)
        return _form_page("preferences", subscriber, message=words_for(subscriber.lang)["saved"])

    def _form_page(kind: str, subscriber: Subscriber, message: str = "") -> Response[str]:
        return page(
            200,
            subscriber.lang,
            kind=kind,
            subscriber=subscriber,
            message=message,
            action=site.api(f"{kind}?token={token()}"),
            form_token=form_token(use().token_key, token()),
        )

    @app.exception_handler(DigestpubError)  # type: ignore[untyped-decorator]
    def failed(error: DigestpubError) -> Response[str]:
        log.exception("subscription request failed")
        return page(503, site.lang, message=words_for(site.lang)["try_later"])

    return app


def _multipart_fields(content_type: str, body: str) -> dict[str, str]:
    """The plain fields of a multipart/form-data body (no files are expected here)."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body.encode("utf-8", "surrogateescape")
    )
    fields: dict[str, str] = {}
    if message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    fields[name] = payload.decode("utf-8", "replace").strip()
    return fields


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
