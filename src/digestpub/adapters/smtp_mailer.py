"""Any SMTP server: one connection reused across messages, STARTTLS or implicit TLS, auth.

A login goes only over TLS whose certificate was verified: a server that offers no
STARTTLS (or a man in the middle who strips the offer) never gets the password.

Every answer of the server is sorted into one of the mail error classes here, by
its reply code (RFC 5321), its enhanced status code (RFC 3463) and the command it
answered: ``_refusal`` for answers to a message, ``_session_error`` for the session.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
import time
from urllib.parse import unquote, urlsplit

from digestpub.errors import (
    AddressRefused,
    ConfigError,
    MailError,
    MailOutcomeUnknown,
    MailTransient,
    MailUnreachable,
    MessageRefused,
)

_TIMEOUT = 30
_IDLE = 5.0
"""Seconds after which a kept connection is checked with NOOP before it carries a message."""
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_MAILBOX_CODES = frozenset({550, 551, 553})
"""Answers to RCPT about the mailbox itself, when no enhanced code says more."""
_LOGIN_CODES = frozenset({530, 534, 535, 538})
_LEADING_DOT = re.compile(rb"(?m)^\.")
"""A line of the message starting with a dot gets a second one (RFC 5321 4.5.2)."""


class SmtpMailer:
    """``smtp://user:pass@host:port`` (STARTTLS; without a login, when offered) or ``smtps://`` (TLS from the start)."""

    def __init__(self, url: str, *, timeout: float = _TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(f"mailer {url!r}: expected smtp://user:pass@host:port or smtps://…")
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._connection: smtplib.SMTP | None = None
        self._last_used = 0.0

    @property
    def where(self) -> str:
        return f"SMTP server {self.host}:{self.port}"

    def send(self, sender: str, recipient: str, message: bytes) -> str:
        connection = self._connect()
        try:
            self._transmit(connection, sender, recipient, message)
            code, reply = self._answer_to_message(connection)
        finally:
            self._last_used = time.monotonic()
        if code != 250:
            raise self._refused(connection, code, reply, recipient, "DATA")
        return ""

    def _transmit(self, connection: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
        """MAIL, RCPT, DATA and every byte of the message; the server's answer to it is left to read.

        ``sendmail`` would hide whether a dropped connection came before the last byte (the
        message was not taken: try later) or after it (it may have been: unknown).
        """
        options = [] if (sender + recipient).isascii() else ["SMTPUTF8"]
        try:
            code, reply = connection.mail(sender, options)
            if code != 250:
                raise self._refused(connection, code, reply, recipient, "MAIL")
            code, reply = connection.rcpt(recipient)
            if code not in (250, 251):
                raise self._refused(connection, code, reply, recipient, "RCPT")
            connection.putcmd("data")
            code, reply = connection.getreply()
            if code != 354:
                raise self._refused(connection, code, reply, recipient, "DATA")
            body = _LEADING_DOT.sub(b"..", message)
            connection.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        except (smtplib.SMTPException, OSError) as error:
            # A dropped connection or a timeout before the message's end: a new connection may work.
            self._drop()
            raise MailTransient(f"{self.where}: {error}") from error

    def _answer_to_message(self, connection: smtplib.SMTP) -> tuple[int, bytes]:
        try:
            return connection.getreply()
        except (smtplib.SMTPException, OSError) as error:
            self._drop()
            raise MailOutcomeUnknown(
                f"{self.where} received the whole message and the connection failed before its answer "
                f"({error}): it may have been delivered"
            ) from error

    def _refused(self, connection: smtplib.SMTP, code: int, reply: bytes, recipient: str, command: str) -> MailError:
        """The answer's error class; the session is reset, so that it can carry the next message."""
        error = self._refusal(code, reply, recipient, command)
        if self._connection is connection:
            try:
                connection.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()
        return error

    def _refusal(self, code: int, reply: bytes | str, recipient: str, command: str) -> MailError:
        """The one place an SMTP answer to a message becomes an error class."""
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
        # The ledger keeps this text: it must not carry the address (erasure stays simple).
        anonymous = text.replace(f"<{recipient}>", "<recipient>").replace(recipient, "<recipient>")
        detail = f"{code} {' '.join(anonymous.split())}"
        if code == 421:
            self._drop()  # the server closes the session with 421
            return MailTransient(f"{self.where} is not taking mail now: {detail}")
        if 400 <= code < 500:
            return MailTransient(f"{self.where} answered {command} with try later: {detail}")
        if code in _LOGIN_CODES:
            return MessageRefused(f"{self.where} wants a login it accepts: {detail}; check user and password in mailer")
        enhanced = _ENHANCED.match(text)
        subject = (int(enhanced[2]), int(enhanced[3])) if enhanced else None
        if command != "MAIL" and subject is not None:
            if subject[0] == 1 or subject == (2, 1):
                return AddressRefused(f"the recipient's server refused the address: {detail}")
            if subject == (2, 2):
                return MailTransient(f"the recipient's mailbox is full: {detail}")
        if command == "RCPT" and subject is None and code in _MAILBOX_CODES:
            return AddressRefused(f"the recipient's server refused the address: {detail}")
        if command == "MAIL":
            return MessageRefused(
                f"{self.where} refused the sender: {detail}; check from_address and that this login may send as it"
            )
        if command == "RCPT":
            return MessageRefused(
                f"{self.where} refused to take the message for a recipient: {detail}; "
                "check that it relays for this login or host"
            )
        return MessageRefused(f"{self.where} refused the message itself: {detail}; its policy refuses the content")

    def _connect(self) -> smtplib.SMTP:
        """The open session, checked when it sat idle; a new one otherwise, its failures sorted."""
        if self._connection is not None:
            if time.monotonic() - self._last_used < _IDLE:
                return self._connection
            try:
                if self._connection.noop()[0] == 250:
                    return self._connection
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()
        try:
            connection = self._open()
        except (smtplib.SMTPException, OSError) as error:
            raise self._session_error(error) from error
        try:
            self._start(connection)
        except MailError:
            connection.close()
            raise
        except (smtplib.SMTPException, OSError) as error:
            connection.close()
            raise self._session_error(error) from error
        self._connection = connection
        return connection

    def _open(self) -> smtplib.SMTP:
        """A session with the server's greeting read. Given the host here, smtplib keeps it for
        TLS to check the certificate against."""
        try:
            if self.implicit_tls:
                return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=_verified())
            return smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (smtplib.SMTPException, ssl.SSLError):
            raise  # the server answered: sorted by _session_error
        except OSError as error:
            raise MailUnreachable(f"cannot reach {self.where}: {error}") from error

    def _start(self, connection: smtplib.SMTP) -> None:
        """EHLO, STARTTLS, and the login, which goes only over TLS with a verified certificate.

        Without a login nothing secret is sent: STARTTLS is taken when offered, with any
        certificate, as relays do (a local relay's is rarely one a client can verify).
        """
        connection.ehlo()
        if not self.implicit_tls and connection.has_extn("starttls"):
            connection.starttls(context=_verified() if self.username else _unverified())
            connection.ehlo()
        elif not self.implicit_tls and self.username:
            raise MessageRefused(
                f"{self.where} offers no STARTTLS, so the login in mailer would cross the network in "
                "clear: it was not sent. Use smtps:// if the server speaks TLS from the start, make it "
                "offer STARTTLS, or drop user:pass from mailer for a relay that needs no login"
            )
        if self.username:
            connection.login(self.username, self.password or "")

    def _session_error(self, error: smtplib.SMTPException | OSError) -> MailError:
        """The one place a failure to open a session becomes an error class."""
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return MessageRefused(
                f"{self.where} refused the login: {error.smtp_code} {error.smtp_error!r}; "
                "check user and password in mailer"
            )
        if isinstance(error, smtplib.SMTPNotSupportedError):
            return MessageRefused(f"{self.where} offers no login (AUTH): {error}; drop user:pass from mailer")
        if isinstance(error, smtplib.SMTPResponseException):
            if 400 <= error.smtp_code < 500:
                return MailTransient(f"{self.where} is not taking mail now: {error.smtp_code} {error.smtp_error!r}")
            return MessageRefused(
                f"{self.where} refused the session: {error.smtp_code} {error.smtp_error!r}; "
                "check that it accepts mail from this host"
            )
        if isinstance(error, ssl.SSLError):
            return MessageRefused(
                f"TLS with {self.where} failed: {error}; smtps:// is TLS from the start, smtp:// uses STARTTLS, "
                "and a login needs a certificate valid for the host in mailer"
            )
        return MailTransient(f"{self.where} dropped the session: {error}")

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


def _verified() -> ssl.SSLContext:
    """TLS that checks the server's certificate and host name against the system's CAs."""
    return ssl.create_default_context()


def _unverified() -> ssl.SSLContext:
    """Opportunistic TLS: encrypted against listeners, the certificate unchecked."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
