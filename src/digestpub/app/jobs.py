"""The two jobs, each from settings to report: publish the site, send a newsletter issue.

The command line and the Python API (``digestpub.publish``, ``digestpub.send_newsletter``)
both run them, so a job opens its stores and services the same way from either.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

from digestpub.app.locations import open_store
from digestpub.app.wiring import hub_notifier, newsletter_context, publish_options, send_options
from digestpub.publish import Progress, publish

if TYPE_CHECKING:
    from digestpub.model import Frequency, PublishReport
    from digestpub.newsletter.send import SendReport
    from digestpub.settings import Settings


def publish_site(
    settings: Settings,
    *,
    full_scan: bool = False,
    rebuild: bool = False,
    keys: Iterable[str] = (),
    progress: Progress | None = None,
) -> PublishReport:
    """Read what is new in the source and write the feeds and pages it changes.

    Raises ``ConfigError`` for keys that are not summary keys, ``StorageError``
    when a store fails and ``StateLocked`` when another run holds the state.
    """
    options = publish_options(settings, full_scan=full_scan, rebuild=rebuild, keys=keys)
    return publish(
        open_store(settings.source, required_as="source"),
        open_store(settings.dest),
        open_store(settings.state),
        settings.site(),
        options,
        progress,
        hub_notifier(settings),
    )


def send_issue(
    settings: Settings,
    frequency: Frequency,
    day: date,
    *,
    dry_run: bool = False,
    resend_unknown: bool = False,
    progress: Progress | None = None,
) -> SendReport:
    """Build (or read back) the ``frequency`` issue of ``day`` and send it to every confirmed subscriber.

    A mail service that fails stops the run: the report's ``stopped`` says why, and
    a rerun sends exactly what is left.
    """
    from digestpub.newsletter.run import send_newsletter

    newsletter = newsletter_context(settings)
    try:
        options = send_options(settings, dry_run=dry_run, resend_unknown=resend_unknown)
        return send_newsletter(newsletter, frequency, day, options, progress=progress)
    finally:
        newsletter.mailer.close()
