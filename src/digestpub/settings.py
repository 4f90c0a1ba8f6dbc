"""Settings from flags, ``DIGESTPUB_*`` variables and a TOML file, in that order of weight."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from digestpub.errors import ConfigError
from digestpub.model import ConfirmationLimits
from digestpub.site import Site, parse_authority
from digestpub.text import is_language_tag, is_safe_url

_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})
"""Unicode categories of control characters and line and paragraph separators."""

MASK = "********"
"""What ``digestpub config`` shows instead of a secret."""


class Settings(BaseSettings):
    """Every setting a command understands; see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="DIGESTPUB_", extra="forbid", validate_default=True)

    source: str = "examples/summaries"
    dest: str = "public"
    state: str = ".digestpub/state"
    base_url: str = "http://localhost:8000/"
    api_url: str = ""
    site_title: str = "Ай Дайджест"
    site_description: str = "Свежая выжимка ml и AI статей - каждый день"
    lang: str = "ru"
    feed_size: int = Field(50, ge=1, le=1000)
    archive_page_size: int = Field(50, ge=1, le=1000)
    """Summaries per archive page: a site keeps the size of its first run, so its pages never renumber."""
    correction_days: float = Field(7.0, ge=0)
    """Days an edit or deletion of an archived summary stays in the subscription feeds."""
    timezone: str = "UTC"
    """The IANA time zone of the dates pages and emails show."""
    id_authority: str | None = None
    """``host`` or ``host,year`` of entry ids for a new site; by default fixed at its first run from base_url."""

    subscribers: str = "sqlite:///.digestpub/subscribers.db"
    mailer: str = "outbox:outbox"
    from_address: str = "AI Digest <digest@localhost>"
    reply_to: str | None = None
    token_key: SecretStr | None = None
    max_items: int = Field(30, ge=1, le=500)
    send_rate: float = Field(10.0, gt=0)
    """Emails per second across every sender at once (in the cloud: all send_batch workers)."""
    send_concurrency: int = Field(1, ge=1)
    """How many senders run at once; each paces itself at send_rate / send_concurrency."""
    send_queue_url: str = ""
    """The SQS queue that plan_newsletter fills and send_batch drains (cloud only)."""
    outage_limit: float = Field(60.0, gt=0)
    """Seconds of nothing but "try later" from the mail service after which a send stops."""
    retry_limit: float = Field(120.0, ge=0)
    """Seconds a send goes on retrying addresses answered "try later", once the others were tried."""

    confirm_interval: float = Field(600.0, ge=0)
    """Seconds between two confirmation emails to one address."""
    confirm_daily_limit: int = Field(3, ge=1)
    """Confirmation emails to one address in 24 hours."""
    confirm_hourly_limit: int = Field(500, ge=1)
    """Confirmation emails to all addresses together in one hour."""
    confirm_link_days: float = Field(7.0, gt=0)
    """Days a confirmation link works (once)."""

    lookback_days: int = Field(2, ge=0, le=366)
    """Days before the newest day seen that an incremental run lists again."""
    full_scan_hours: float = Field(24.0, ge=0)
    """A run lists the whole source when the last full listing is older than this."""
    lock_timeout: float = Field(120.0, ge=0)
    lock_ttl: float = Field(900.0, gt=0)
    max_summary_bytes: int = Field(65_536, ge=1_024)
    max_object_bytes: int = Field(1_048_576, ge=1_024)
    """Larger source objects are skipped before they are read."""
    feed_cache_control: str = "public, max-age=300"
    page_cache_control: str = "public, max-age=300"
    archive_cache_control: str = "public, max-age=604800"
    """For the complete archive pages, documents and web pages: they change only to correct an entry."""
    log_format: Literal["text", "json"] = "text"
    hubs: str = ""
    """WebSub hub URLs, separated by spaces: every feed names them, and each run tells them what changed."""

    _toml_file: ClassVar[Path | None] = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (such as UTC or Europe/Moscow)") from None
        return value

    @field_validator("base_url", "api_url")
    @classmethod
    def _absolute_with_slash(cls, value: str) -> str:
        if value and not is_safe_url(value):
            raise ValueError(f"{value!r} is not an absolute http(s) URL")
        return value if not value or value.endswith("/") else value + "/"

    @field_validator(
        "site_title", "from_address", "reply_to", "feed_cache_control", "page_cache_control", "archive_cache_control"
    )
    @classmethod
    def _header_safe(cls, value: str | None) -> str | None:
        # These end up in mail or HTTP headers (Subject, List-Id, From, Reply-To,
        # Cache-Control): a line break there would start a header of its own.
        found = next((char for char in value or "" if unicodedata.category(char) in _LINE_BREAKING), None)
        if found is not None:
            raise ValueError(f"holds the control character U+{ord(found):04X}; it would break a mail or HTTP header")
        return value

    @field_validator("hubs", mode="before")
    @classmethod
    def _hub_urls(cls, value: object) -> object:
        if isinstance(value, list | tuple):  # a TOML list reads as well as a string of URLs
            value = " ".join(str(item) for item in value)
        if isinstance(value, str):
            bad = [url for url in value.split() if not is_safe_url(url)]
            if bad:
                raise ValueError(f"{', '.join(map(repr, bad))}: a hub is an absolute http(s) URL")
        return value

    @field_validator("id_authority")
    @classmethod
    def _authority(cls, value: str | None) -> str | None:
        return parse_authority(value) if value else None

    @field_validator("lang")
    @classmethod
    def _language_tag(cls, value: str) -> str:
        if not is_language_tag(value):
            raise ValueError(f"{value!r} is not a BCP 47 language tag, such as ru or en-GB")
        return value

    @model_validator(mode="after")
    def _api_defaults_to_base(self) -> Settings:
        if not self.api_url:
            self.api_url = self.base_url
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_file))
        return tuple(sources)

    @classmethod
    def load(cls, config: Path | None = None, **flags: Any) -> Settings:
        """Settings with flags (``None`` means not given) over variables over the file."""
        given = {name: value for name, value in flags.items() if value is not None}
        if config is not None and not config.is_file():
            raise ConfigError(f"config file {config} does not exist")

        class _FromFile(cls):  # type: ignore[valid-type,misc]
            _toml_file = config

        try:
            return _FromFile(**given)
        except ValidationError as error:
            details = "; ".join(
                f"{'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}" for item in error.errors()
            )
            raise ConfigError(f"invalid settings: {details}") from None
        except (OSError, ValueError) as error:
            raise ConfigError(f"cannot read config file {config}: {error}") from None

    @classmethod
    def origins(cls, config: Path | None = None, **flags: Any) -> dict[str, str]:
        """Where each setting of ``load(config, **flags)`` comes from: flag, variable, file or default.

        Asks the very sources ``load`` reads, in its order of weight.
        """
        from_env = EnvSettingsSource(cls)()
        from_file = TomlConfigSettingsSource(cls, toml_file=config)() if config is not None else {}
        prefix = cls.model_config.get("env_prefix", "")
        found: dict[str, str] = {}
        for name in cls.model_fields:
            if flags.get(name) is not None:
                found[name] = f"flag --{name.replace('_', '-')}"
            elif name in from_env:
                found[name] = f"variable {prefix}{name.upper()}"
            elif name in from_file:
                found[name] = f"file {config}"
            else:
                found[name] = "default"
        if found["api_url"] == "default":
            found["api_url"] = "default: base_url"
        return found

    def masked(self) -> dict[str, Any]:
        """Every setting's value, with secrets (the token key, a password in a URL) masked."""
        values = self.model_dump()
        for name, value in values.items():
            if isinstance(value, SecretStr):
                values[name] = MASK
            elif isinstance(value, str) and "://" in value:
                values[name] = " ".join(_without_password(part) for part in value.split(" "))
        return values

    def confirmation_limits(self) -> ConfirmationLimits:
        return ConfirmationLimits(
            min_interval=timedelta(seconds=self.confirm_interval),
            per_day=self.confirm_daily_limit,
            per_hour=self.confirm_hourly_limit,
        )

    def site(self) -> Site:
        return Site(
            title=self.site_title,
            description=self.site_description,
            lang=self.lang,
            base_url=self.base_url,
            api_url=self.api_url,
            feed_size=self.feed_size,
            hubs=tuple(dict.fromkeys(self.hubs.split())),
            timezone=self.timezone,
            id_authority=self.id_authority or "",
        )


def _without_password(url: str) -> str:
    """``url`` with the password of its user part, if any, masked: smtp://user:********@host."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{host}"))
