"""The subscription endpoints, one set of routes for the cloud function and ``digestpub serve``.

``Endpoints.handle`` answers one API Gateway HTTP API (payload 2.0) event with its
response; ``digestpub serve`` turns each local request into the same event, so
both answer alike. Each handler receives its ``Request`` as an argument and the
``Endpoints`` object holds only the site and the use cases, so requests served
at once on several threads cannot see each other's data. (Powertools' resolver
keeps the current event on its class, which only one request at a time may use.)
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from digestpub.errors import BadRequest, DigestpubError, StoreBusy
from digestpub.model import Subscriber
from digestpub.render import feed_formats
from digestpub.site import Site
from digestpub.subscriptions.request import Request, etag_matches, read_request
from digestpub.subscriptions.subscribers import InvalidAddress, InvalidSubscriber, UnknownTags
from digestpub.subscriptions.tokens import InvalidToken, TokenKey, signing_key
from digestpub.subscriptions.use_cases import Confirmation, Subscriptions
from digestpub.templates import environment
from digestpub.words import words_for

if TYPE_CHECKING:
    from digestpub.publish.combined import CombinedFeeds

log = logging.getLogger("digestpub.subscriptions.endpoints")

HTML = "text/html; charset=utf-8"
_RETRY_AFTER = "2"
"""Seconds a client is asked to wait when racing writes to one subscriber outlasted the retries."""
_PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def form_token(key: TokenKey, token: str) -> str:
    """The hidden field a page's form must send back: only our own page knows it."""
    return hmac.new(signing_key(key), b"form\x00" + token.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    content_type: str = HTML
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_event_response(self) -> dict[str, Any]:
        """The HTTP API (payload 2.0) response."""
        headers = {**self.headers, "Content-Type": self.content_type}
        return {"statusCode": self.status, "headers": headers, "body": self.body, "isBase64Encoded": False}


class Endpoints:
    """The routes. ``subscriptions`` builds the use cases on first need (cold starts stay cheap);
    ``feeds`` builds the combined feeds, and without it ``/feed`` is not served."""

    def __init__(
        self,
        subscriptions: Callable[[], Subscriptions],
        site: Site,
        feeds: Callable[[], CombinedFeeds] | None = None,
    ) -> None:
        self.site = site
        self._build = subscriptions
        self._built: Subscriptions | None = None
        self._building = threading.Lock()
        self._feeds = feeds

    def use(self) -> Subscriptions:
        built = self._built
        if built is None:
            with self._building:
                if self._built is None:
                    self._built = self._build()
                built = self._built
        return built

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The response to one HTTP API event: a page for every request, bad ones included."""
        try:
            request = read_request(event)
            handler = ROUTES.get(request.path, {}).get(request.method)
            reply = self._no_route(request) if handler is None else handler(self, request)
        except BadRequest as error:
            log.info("request refused (%s): %s", error.status, error.reason)
            reply = self.refusal(error.status, error.reason)
        except StoreBusy as error:
            # Racing writes to one subscriber outlasted the store's retries: the moment, not a fault.
            log.warning("subscription request not served, try later: %s", error)
            reply = self._try_later(retry_after=_RETRY_AFTER)
        except DigestpubError:
            log.exception("subscription request failed")
            reply = self._try_later()
        # Anything else is a bug: it propagates, so the function's error metric and alarm see it.
        return reply.to_event_response()

    def _no_route(self, request: Request) -> Reply:
        methods = ROUTES.get(request.path)
        if methods is None:
            return self.refusal(404, "there is no such page")
        reply = self.refusal(405, f"{request.method} is not answered here")
        return Reply(reply.status, reply.body, headers={**reply.headers, "Allow": ", ".join(sorted(methods))})

    # --- pages -------------------------------------------------------------------------------

    def page(self, status: int, lang: str, **context: Any) -> Reply:
        words = words_for(lang)
        template = environment().get_template("web/page.html.j2")
        body = template.render(
            site=self.site,
            words=words,
            lang=lang,
            title=self.site.title,
            feeds=feed_formats.offered(),
            **{"kind": "", **context},
        )
        return Reply(status, body, headers=_PAGE_HEADERS)

    def _try_later(self, retry_after: str | None = None) -> Reply:
        """503: a store or the mail service failed; with ``Retry-After`` when a moment's wait will do."""
        reply = self.page(503, self.site.lang, message=words_for(self.site.lang)["try_later"])
        if retry_after is None:
            return reply
        return Reply(reply.status, reply.body, headers={**reply.headers, "Retry-After": retry_after})

    def refusal(self, status: int, reason: str) -> Reply:
        """The short page for a request that cannot be served as sent (any 4xx)."""
        lang = self.site.lang
        return self.page(status, lang, message=words_for(lang)["bad_request"].format(reason=reason))

    def _invalid(self, lang: str, error: InvalidSubscriber) -> Reply:
        words = words_for(lang)
        if isinstance(error, UnknownTags):
            return self.page(400, lang, message=words["unknown_tags"].format(tags=", ".join(error.tags)))
        wording = "bad_address" if isinstance(error, InvalidAddress) else "bad_request"
        return self.page(400, lang, message=words[wording].format(reason=error))

    def _refused(self, lang: str) -> Reply:
        return self.page(403, lang, message=words_for(lang)["bad_link"])

    def _form_page(
        self, kind: str, subscriber: Subscriber, token: str, message: str = "", *, route: str = "", status: int = 200
    ) -> Reply:
        """A page whose form posts back to ``route`` (default: ``kind``) with the link's token."""
        tags = (
            sorted(self.use().tags().values(), key=lambda tag: (-tag.count, tag.slug)) if kind == "preferences" else []
        )
        return self.page(
            status,
            subscriber.lang,
            kind=kind,
            subscriber=subscriber,
            message=message,
            tags=tags,
            action=self.site.api(f"{route or kind}?token={token}"),
            form_token=form_token(self.use().token_key, token),
        )

    def _same_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not origin:
            return True  # browsers send Origin on cross-site POSTs; other clients are not CSRF
        allowed = {_origin(self.site.base_url), _origin(self.site.api_url)}
        return _origin(origin) in allowed

    # --- handlers ----------------------------------------------------------------------------

    def subscribe(self, request: Request) -> Reply:
        fields = request.form
        lang = fields.get("lang") or self.site.lang
        if not self._same_origin(request):
            return self._refused(lang)
        try:
            self.use().subscribe(fields.get("email", ""), _chosen_tags(fields), fields.get("frequency", "daily"), lang)
        except InvalidSubscriber as error:
            return self._invalid(lang, error)
        return self.page(200, lang, message=words_for(lang)["check_inbox"])

    def confirm_page(self, request: Request) -> Reply:
        # Mail scanners fetch every link before the person sees it: a GET only shows the button.
        try:
            confirmation = self.use().confirmation(request.token)
        except InvalidToken:
            return self._refused(self.site.lang)
        return self._confirmation_reply(confirmation, request.token)

    def confirm(self, request: Request) -> Reply:
        try:
            subscriber = self.use().peek(request.token, "confirm")
            if request.form.get("form") != form_token(self.use().token_key, request.token):
                return self._refused(subscriber.lang)
            if request.form.get("action") == "renew":
                self.use().renew_confirmation(request.token)
                return self.page(200, subscriber.lang, message=words_for(subscriber.lang)["check_inbox"])
            confirmation = self.use().confirm(request.token)
        except InvalidToken:
            return self._refused(self.site.lang)
        return self._confirmation_reply(confirmation, request.token)

    def _confirmation_reply(self, confirmation: Confirmation, token: str) -> Reply:
        subscriber = confirmation.subscriber
        words = words_for(subscriber.lang)
        if confirmation.state == "open":
            return self._form_page("confirm", subscriber, token)
        if confirmation.state == "expired":  # 410: this link is gone; the page offers a new one
            return self._form_page("confirm_expired", subscriber, token, route="confirm", status=410)
        wording = "confirmed" if confirmation.state == "confirmed" else "already_confirmed"
        return self.page(200, subscriber.lang, message=words[wording], subscriber=subscriber)

    def unsubscribe_page(self, request: Request) -> Reply:
        # Link scanners follow GETs: this only shows the button.
        try:
            subscriber = self.use().peek(request.token, "unsubscribe")
        except InvalidToken:
            return self._refused(self.site.lang)
        return self._form_page("unsubscribe", subscriber, request.token)

    def unsubscribe(self, request: Request) -> Reply:
        # RFC 8058 one-click: List-Unsubscribe=One-Click, url-encoded or multipart.
        one_click = request.form.get("List-Unsubscribe") == "One-Click"
        try:
            subscriber = self.use().peek(request.token, "unsubscribe")
            if not one_click and request.form.get("form") != form_token(self.use().token_key, request.token):
                return self._refused(subscriber.lang)
            subscriber = self.use().unsubscribe(request.token)
        except InvalidToken:
            return self._refused(self.site.lang)
        if one_click:  # RFC 8058: a plain 200, no redirect
            return Reply(200, "unsubscribed\n", content_type="text/plain; charset=utf-8")
        return self.page(200, subscriber.lang, message=words_for(subscriber.lang)["unsubscribed"])

    def preferences_page(self, request: Request) -> Reply:
        try:
            subscriber = self.use().peek(request.token, "preferences")
        except InvalidToken:
            return self._refused(self.site.lang)
        return self._form_page("preferences", subscriber, request.token)

    def preferences(self, request: Request) -> Reply:
        fields = request.form
        try:
            subscriber = self.use().peek(request.token, "preferences")
        except InvalidToken:
            return self._refused(self.site.lang)
        if fields.get("form") != form_token(self.use().token_key, request.token):
            return self._refused(subscriber.lang)
        if fields.get("action") == "resubscribe":
            self.use().resubscribe(request.token)
            return self.page(200, subscriber.lang, message=words_for(subscriber.lang)["check_inbox"])
        try:
            subscriber = self.use().update_preferences(
                request.token,
                _chosen_tags(fields),
                fields.get("frequency", subscriber.frequency),
                fields.get("lang", subscriber.lang),
            )
        except InvalidToken:
            return self._refused(self.site.lang)
        except InvalidSubscriber as error:
            return self._invalid(subscriber.lang, error)
        message = words_for(subscriber.lang)["saved"]
        return self._form_page("preferences", subscriber, request.token, message=message)

    def feed(self, request: Request) -> Reply:
        """The feed of the tags the query names (``tags=a,b``, repeated or both) in ``format``."""
        from digestpub.publish.combined import UnknownFeedTags  # lxml and feedgen load with the first feed asked for

        if self._feeds is None:
            return self.refusal(404, "there is no such page")
        feeds = self._feeds()
        try:
            built = feeds.build(
                request.query_values("tags"), request.query.get("format", feed_formats.preferred().name)
            )
        except UnknownFeedTags as error:
            lang = self.site.lang
            return self.page(400, lang, message=words_for(lang)["unknown_tags"].format(tags=", ".join(error.tags)))
        headers = {"Cache-Control": feeds.cache_control, "ETag": built.etag}
        if etag_matches(request.headers.get("if-none-match", ""), built.etag):
            return Reply(304, "", built.content_type, headers)
        return Reply(200, built.body.decode(), built.content_type, headers)


ROUTES: dict[str, dict[str, Callable[[Endpoints, Request], Reply]]] = {
    "/subscribe": {"POST": Endpoints.subscribe},
    "/confirm": {"GET": Endpoints.confirm_page, "POST": Endpoints.confirm},
    "/unsubscribe": {"GET": Endpoints.unsubscribe_page, "POST": Endpoints.unsubscribe},
    "/preferences": {"GET": Endpoints.preferences_page, "POST": Endpoints.preferences},
    "/feed": {"GET": Endpoints.feed},
}


def _chosen_tags(fields: Mapping[str, str]) -> str:
    """The page's ticked boxes (``tag-<slug>``) and any ``tags`` typed or sent by a client."""
    ticked = [name.removeprefix("tag-") for name, value in fields.items() if name.startswith("tag-") and value]
    return " ".join([fields.get("tags", ""), *ticked]).strip()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
