"""Adapters and options built from settings: shared by the CLI and the cloud functions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from digestpub.app.locations import open_key_home, open_ledger, open_mailer, open_store, open_subscribers
from digestpub.errors import ConfigError
from digestpub.ports import HubNotifier, ObjectStore, SubscriberStore
from digestpub.publish import PublishOptions
from digestpub.publish.identity import published_site
from digestpub.publish.listing import named_keys
from digestpub.publish.options import SitePart
from digestpub.publish.parallel import default_workers
from digestpub.render import Output
from digestpub.settings import Settings
from digestpub.site import NEWSLETTER_ARCHIVE_PAGE, Site
from digestpub.subscriptions.keyring import load_ring
from digestpub.subscriptions.tokens import KeyRing

if TYPE_CHECKING:
    from digestpub.newsletter.run import NewsletterContext
    from digestpub.newsletter.send import SendOptions
    from digestpub.publish.combined import CombinedFeeds
    from digestpub.subscriptions.use_cases import Job, Subscriptions


def publish_options(
    settings: Settings,
    *,
    full_scan: bool = False,
    rebuild: bool = False,
    workers: int | None = None,
    keys: Iterable[str] = (),
) -> PublishOptions:
    """The options of a publish run; ``keys``: source keys to read whatever their day.

    Raises ``ConfigError`` for a key that is not a summary key: a run named
    keys to read, and reading fewer than it was told would pass unnoticed.
    """
    found, others = named_keys(keys)
    if others:
        raise ConfigError(
            f"not summary keys: {', '.join(map(repr, others))}; a key is YYYY/MM/DD/NAME.json or .jsonl, "
            "relative to the source"
        )
    return PublishOptions(
        lookback_days=settings.lookback_days,
        full_scan_every=timedelta(hours=settings.full_scan_hours),
        full_scan=full_scan,
        rebuild=rebuild,
        lock_ttl=timedelta(seconds=settings.lock_ttl),
        lock_wait=timedelta(seconds=settings.lock_timeout),
        max_summary_bytes=settings.max_summary_bytes,
        max_object_bytes=settings.max_object_bytes,
        feed_cache_control=settings.feed_cache_control,
        page_cache_control=settings.page_cache_control,
        archive_cache_control=settings.archive_cache_control,
        archive_page_size=settings.archive_page_size,
        correction_days=settings.correction_days,
        workers=default_workers() if workers is None else workers,
        site_parts=SITE_PARTS,
        keys=tuple(found),
    )


def _newsletter_archive(site: Site, state: ObjectStore) -> list[Output]:
    # Imported when a site first needs it: the newsletter's modules (MJML among them)
    # stay out of every other publish run's start-up.
    from digestpub.newsletter.archive import site_part

    return site_part(site, state)


SITE_PARTS = (SitePart(NEWSLETTER_ARCHIVE_PAGE, _newsletter_archive),)
"""The parts of the published site that capabilities other than publish keep."""


def hub_notifier(settings: Settings) -> HubNotifier | None:
    """What tells the WebSub hubs of changed feeds; ``None`` when no hub is set."""
    if not settings.hubs.split():
        return None
    from digestpub.adapters.websub_hubs import HttpHubNotifier

    return HttpHubNotifier()


def newsletter_context(settings: Settings, secret: str | None = None) -> NewsletterContext:
    """Everything a newsletter run talks to; the token keys from ``secret`` (the cloud's SSM
    parameter), else the ``token_key`` setting, else the ring kept beside the subscribers."""
    # Imported here: publish runs, which use this module too, need none of them.
    from digestpub.newsletter.run import NewsletterContext

    state = open_store(settings.state)
    subscribers = open_subscribers(settings.subscribers)
    return NewsletterContext(
        site=published_site(settings.site(), state),
        state=state,
        dest=open_store(settings.dest),
        subscribers=subscribers,
        ledger=open_ledger(settings.subscribers),
        mailer=open_mailer(settings.mailer),
        token_key=token_keys(settings, state, subscribers, secret),
        from_address=settings.from_address,
        reply_to=settings.reply_to,
        max_items=settings.max_items,
        page_cache_control=settings.page_cache_control,
    )


def token_keys(
    settings: Settings, state: ObjectStore, subscribers: SubscriberStore, secret: str | None = None
) -> KeyRing:
    """The token key ring (see ``keyring``); ``ConfigError`` when subscribers exist and the key is gone."""
    if secret is None and settings.token_key is not None:
        secret = settings.token_key.get_secret_value()
    home = open_key_home(settings.subscribers, state)
    return load_ring(secret, home, lambda: next(iter(subscribers.iter_all()), None) is not None)


def send_options(
    settings: Settings, *, senders: int = 1, dry_run: bool = False, resend_unknown: bool = False
) -> SendOptions:
    """How a send paces and gives up; ``senders`` share ``send_rate`` (cloud workers at once)."""
    from digestpub.newsletter.send import SendOptions

    return SendOptions(
        send_rate=settings.send_rate / senders,
        outage_limit=settings.outage_limit,
        retry_limit=settings.retry_limit,
        lock_wait=timedelta(seconds=settings.lock_timeout),
        dry_run=dry_run,
        resend_unknown=resend_unknown,
    )


def subscriptions(
    settings: Settings, context: NewsletterContext, dispatch: Callable[[Job], None] | None = None
) -> Subscriptions:
    """The subscription use cases over a newsletter context; tags come from the publish state.

    ``dispatch`` runs confirmation sends after the answer (``serve``). Without it (the
    cloud function, frozen once it answers) a send happens before the answer, so the
    answer's floor is long enough to cover one.
    """
    from digestpub.state.catalog import published_tags
    from digestpub.subscriptions.use_cases import ANSWER_FLOOR, INLINE_SEND_ANSWER_FLOOR, Subscriptions, send_now

    state = context.state
    return Subscriptions(
        context.site,
        context.subscribers,
        context.mailer,
        context.token_key,
        settings.from_address,
        tags=lambda: published_tags(state),
        limits=settings.confirmation_limits(),
        confirm_link_lifetime=timedelta(days=settings.confirm_link_days),
        dispatch=dispatch or send_now,
        answer_floor=ANSWER_FLOOR if dispatch is not None else INLINE_SEND_ANSWER_FLOOR,
    )


def combined_feeds(settings: Settings) -> CombinedFeeds:
    """The feeds of any set of tags, read from the published tag feeds in ``dest``."""
    from digestpub.publish.combined import CombinedFeeds

    return CombinedFeeds(open_store(settings.dest), settings.site(), settings.feed_cache_control)
