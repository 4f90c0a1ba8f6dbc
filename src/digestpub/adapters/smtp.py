"""Any SMTP server: one connection reused across messages, STARTTLS or implicit TLS, auth."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from urllib.parse import unquote, urlsplit

from digestpub.errors import ConfigError, MailRejected, MailTransient

_TIMEOUT = 30


class SmtpMailer:
    """``smtp://user:pass@host:port`` (STARTTLS when offered) or ``smtps://`` (TLS from the start)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(f"mailer {url!r}: expected smtp://user:pass@host:port or smtps://…")
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        context = ssl.create_default_context()
        connection: smtplib.SMTP
        if self.implicit_tls:
            connection = smtplib.SMTP_SSL(self.host, self.port, timeout=_TIMEOUT, context=context)
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=_TIMEOUT)
        connection.ehlo()
        if not self.implicit_tls and connection.has_extn("starttls"):
            connection.starttls(context=context)
            connection.ehlo()
        if self.username:
            connection.login(self.username, self.password or "")
        self._connection = connection
        return connection

    def send(self, sender: str, recipient: str, message: bytes) -> str:
        try:
            connection = self._connect()
            options = [] if (sender + recipient).isascii() else ["SMTPUTF8"]
            refused = connection.sendmail(sender, [recipient], message, mail_options=options)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()), (450, b""))
            raise self._classify(code, reply, recipient) from error
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as error:
            raise self._classify(error.smtp_code, error.smtp_error, recipient) from error
        except smtplib.SMTPAuthenticationError as error:
            raise ConfigError(f"SMTP {self.host}:{self.port} refused the login: {error}") from error
        except (smtplib.SMTPException, OSError) as error:
            self._drop()
            raise MailTransient(f"SMTP {self.host}:{self.port}: {error}") from error
        if refused:
            code, reply = refused[recipient]
            raise self._classify(code, reply, recipient)
        return ""

    def _classify(self, code: int, reply: bytes | str, recipient: str) -> MailTransient | MailRejected:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
        if 500 <= code < 600:
            return MailRejected(f"{recipient}: {code} {text}")
        self._drop()
        return MailTransient(f"{recipient}: {code} {text}")

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._connection.quit()
            self._connection = None
