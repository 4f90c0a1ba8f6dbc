"""WebSub publish notifications over HTTP(S): the hubs' form-encoded ``POST`` (urllib is enough)."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlencode

from digestpub.errors import HubError
from digestpub.version import __version__

_FORM = "application/x-www-form-urlencoded"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would repeat a redirected POST as a GET without its form: a hub that moved is reported instead."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class HttpHubNotifier:
    """``hub.mode=publish`` with one ``hub.url`` per topic; any 2xx answer is taken as accepted."""

    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirects)

    def publish(self, hub: str, topics: list[str], timeout: float) -> None:
        body = urlencode([("hub.mode", "publish"), *(("hub.url", topic) for topic in topics)]).encode()
        if not hub.lower().startswith(("http://", "https://")):
            raise HubError(f"{hub!r} is not an http(s) URL")
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            hub,
            data=body,
            method="POST",
            headers={"Content-Type": _FORM, "User-Agent": f"digestpub/{__version__}"},
        )
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read(65_536)
        except urllib.error.HTTPError as error:
            error.close()
            raise HubError(f"answered {error.code} {error.reason}", error.code) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise HubError(f"unreachable: {reason}") from None
