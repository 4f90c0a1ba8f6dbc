"""Adapters and options built from settings: shared by the CLI and the cloud functions."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from digestpub.parallel import default_workers
from digestpub.publish import PublishOptions
from digestpub.settings import Settings

if TYPE_CHECKING:
    from digestpub.newsletter.run import NewsletterContext


def publish_options(
    settings: Settings, *, full_scan: bool = False, rebuild: bool = False, workers: int | None = None
) -> PublishOptions:
    return PublishOptions(
        lookback_days=settings.lookback_days,
        full_scan_every=timedelta(hours=settings.full_scan_hours),
        full_scan=full_scan,
        rebuild=rebuild,
        lock_ttl=timedelta(seconds=settings.lock_ttl),
        lock_wait=timedelta(seconds=settings.lock_timeout),
        max_summary_bytes=settings.max_summary_bytes,
        feed_cache_control=settings.feed_cache_control,
        page_cache_control=settings.page_cache_control,
        archive_cache_control=settings.archive_cache_control,
        workers=default_workers() if workers is None else workers,
    )


def newsletter_context(settings: Settings, token_key: bytes | None = None) -> NewsletterContext:
    """Everything a newsletter run talks to; the token key from settings or state unless given."""
    # Imported here: publish runs, which use this module too, need none of them.
    from digestpub.adapters import open_ledger, open_mailer, open_store
    from digestpub.adapters.subscribers_factory import open_subscribers
    from digestpub.newsletter.run import NewsletterContext
    from digestpub.tokens import key_from_setting

    state = open_store(settings.state)
    if token_key is None:
        secret = settings.token_key.get_secret_value() if settings.token_key is not None else None
        token_key = key_from_setting(secret, state)
    return NewsletterContext(
        site=settings.site(),
        state=state,
        dest=open_store(settings.dest),
        subscribers=open_subscribers(settings.subscribers),
        ledger=open_ledger(settings.subscribers),
        mailer=open_mailer(settings.mailer),
        token_key=token_key,
        from_address=settings.from_address,
        reply_to=settings.reply_to,
        max_items=settings.max_items,
        page_cache_control=settings.page_cache_control,
    )
