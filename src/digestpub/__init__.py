"""digestpub: per-tag feeds, tag pages and email digests from paper summaries.

The Python API runs the same jobs as the ``digestpub`` command, with the same
settings (a ``Settings``, or the TOML file ``DIGESTPUB_CONFIG`` names, the
``DIGESTPUB_*`` variables and the defaults, under keyword overrides)::

    import digestpub

    report = digestpub.publish_site(source="examples/summaries", dest="public")
    print(report.summary_line())

Every error it raises is a ``DigestpubError``. (``publish_site`` is not called
``publish``: that name is the ``digestpub.publish`` package, the publish core.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from digestpub.errors import ConfigError, DigestpubError, MailError, StateLocked, StorageError
from digestpub.version import __version__

if TYPE_CHECKING:
    from collections.abc import Iterable

    from digestpub.model import Frequency, PublishReport
    from digestpub.newsletter.send import SendReport
    from digestpub.settings import Settings


__all__ = [
    "ConfigError",
    "DigestpubError",
    "MailError",
    "PublishReport",
    "SendReport",
    "Settings",
    "StateLocked",
    "StorageError",
    "__version__",
    "publish_site",
    "send_newsletter",
]


def publish_site(
    settings: Settings | None = None,
    *,
    full_scan: bool = False,
    rebuild: bool = False,
    keys: Iterable[str] = (),
    **overrides: Any,
) -> PublishReport:
    """Publish what is new in the source: the feeds, pages and archives it changes.

    ``overrides`` are settings by name (``source="s3://bucket/summaries"``).
    ``full_scan`` reads every day of the source, ``rebuild`` renders the whole
    site again, ``keys`` are source keys to read whatever their day. Bad input
    never raises: it is in the report's ``problems``.
    """
    from digestpub.app import jobs

    return jobs.publish_site(_settings(settings, overrides), full_scan=full_scan, rebuild=rebuild, keys=keys)


def send_newsletter(
    frequency: Frequency = "daily",
    on: date | None = None,
    settings: Settings | None = None,
    *,
    dry_run: bool = False,
    resend_unknown: bool = False,
    **overrides: Any,
) -> SendReport:
    """Send the ``frequency`` issue of the day ``on`` (default: today, UTC) to its subscribers.

    A mail service that fails stops the run without raising: the report's
    ``stopped`` says why, and calling again sends exactly what is left.
    """
    if frequency not in ("daily", "weekly"):
        raise ConfigError(f"frequency must be daily or weekly, not {frequency!r}")
    from digestpub.app import jobs

    day = on or datetime.now(UTC).date()
    return jobs.send_issue(
        _settings(settings, overrides), frequency, day, dry_run=dry_run, resend_unknown=resend_unknown
    )


def _settings(settings: Settings | None, overrides: dict[str, Any]) -> Settings:
    from digestpub.settings import Settings

    if settings is None:
        return Settings.load(None, **overrides)
    if not overrides:
        return settings
    # Validated as a new set: an override is checked as a flag would be.
    return Settings.load(None, **{**settings.model_dump(), **overrides})


def __getattr__(name: str) -> Any:
    # The models load with their module when first asked for: ``digestpub --version``
    # and a run with nothing to do stay free of pydantic's import.
    if name == "Settings":
        from digestpub.settings import Settings

        return Settings
    if name == "PublishReport":
        from digestpub.model import PublishReport

        return PublishReport
    if name == "SendReport":
        from digestpub.newsletter.send import SendReport

        return SendReport
    raise AttributeError(f"module 'digestpub' has no attribute {name!r}")
