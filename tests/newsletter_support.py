"""Shared building blocks of the newsletter tests.

A ``Scenario`` is one digest on disk: source, dest and state folders, summaries
published into them with ``digestpub.publish.publish``, subscribers in a real
SQLite file, the send ledger in the same file (as ``digestpub`` opens it) and an
outbox folder. Tests send with ``digestpub.newsletter.run.send_newsletter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import ipaddress
import os
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from digestpub.adapters.folder_store import FolderStore
from digestpub.adapters.outbox_mailer import OutboxMailer
from digestpub.adapters.sqlite_ledger import SqliteLedger
from digestpub.adapters.sqlite_subscribers import SqliteSubscriberStore
from digestpub.app.wiring import SITE_PARTS
from digestpub.model import PublishReport, Subscriber
from digestpub.newsletter.run import NewsletterContext, send_newsletter
from digestpub.newsletter.send import SendOptions, SendReport
from digestpub.ports import Ledger, Mailer, SubscriberStore
from digestpub.publish import PublishOptions, publish
from digestpub.site import Site
from digestpub.subscriptions.subscribers import new_subscriber
from tests.conftest import summary, write_json
from tests.local_ports import free_port
from tests.serve_support import run_digestpub

BASE_URL = "https://aidigest.example/"
API_URL = "https://api.aidigest.example/"
SITE_TITLE = "Ай Дайджест"
TAGLINE = "Свежая выжимка ml и AI статей - каждый день"
FROM_ADDRESS = "AI Digest <digest@digest.example>"
TOKEN_KEY = b"newsletter-tests-token-key-0123456789"
FAST = SendOptions(send_rate=1000)

SITE = Site(title=SITE_TITLE, description=TAGLINE, lang="ru", base_url=BASE_URL, api_url=API_URL)

RU_MONTHS = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
]
EN_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def long_date(lang: str, day: date) -> str:
    """The date as the subject should spell it: ``20 ноября 2026`` / ``20 November 2026``."""
    months = RU_MONTHS if lang == "ru" else EN_MONTHS
    return f"{day.day} {months[day.month - 1]} {day.year}"


def paper(number: int, tags: list[str], **fields: Any) -> dict[str, Any]:
    """A realistic summary document (about 1.5 KB of Russian Markdown) with these tags."""
    body = (
        f"**Что сделали.** Авторы статьи {number} предлагают способ дообучать мультимодальные "
        "языковые модели на парах «картинка — вопрос» без ручной разметки: модель сама "
        "порождает вопросы к изображениям, отбирает удачные ответы и учится на них.\n\n"
        "**Результаты.**\n\n"
        "- прирост на VQAv2 и GQA на 2–4 пункта при том же бюджете обучения;\n"
        "- модель реже выдумывает объекты, которых нет на картинке;\n"
        "- код и веса открыты.\n\n"
        "**Почему это важно.** Разметка пар для визуальных вопросов стоит дорого, а такой "
        "подход масштабируется вместе с количеством неразмеченных изображений. "
        f"Подробности — в [статье](https://arxiv.org/abs/2611.{number:05d})."
    )
    document = summary(
        number,
        title=f"Статья {number}: самообучение мультимодальных моделей",
        summary=body,
        tags=tags,
        published_at=f"2026-11-20T{number // 60 % 24:02d}:{number % 60:02d}:00+00:00",
        paper_url=f"https://arxiv.org/abs/2611.{number:05d}",
    )
    document.update(fields)
    return document


@dataclass
class Scenario:
    """One digest in ``root``: folders, a subscriber database with its ledger, an outbox."""

    root: Path
    source_dir: Path
    dest_dir: Path
    state_dir: Path
    outbox_dir: Path
    db_path: Path
    subscribers: SqliteSubscriberStore
    ledger: SqliteLedger
    people: dict[str, Subscriber] = field(default_factory=dict)
    """Subscribers by email, as saved."""

    @classmethod
    def create(cls, root: Path) -> Scenario:
        db_path = root / "subscribers.db"
        subscribers = SqliteSubscriberStore(db_path)
        return cls(
            root=root,
            source_dir=root / "source",
            dest_dir=root / "dest",
            state_dir=root / "state",
            outbox_dir=root / "outbox",
            db_path=db_path,
            subscribers=subscribers,
            ledger=SqliteLedger(db_path),
        )

    @property
    def source(self) -> FolderStore:
        return FolderStore(self.source_dir)

    @property
    def dest(self) -> FolderStore:
        return FolderStore(self.dest_dir)

    @property
    def state(self) -> FolderStore:
        return FolderStore(self.state_dir)

    def publish(self, documents: list[dict[str, Any]], day: str = "2026/11/20") -> PublishReport:
        """Write the documents into the source (one file each) and run a publish."""
        for document in documents:
            write_json(self.source_dir, f"{day}/{document['id']}.json", document)
        report = publish(
            self.source, self.dest, self.state, SITE, PublishOptions(full_scan=True, workers=1, site_parts=SITE_PARTS)
        )
        assert not [problem for problem in report.problems if problem.outcome == "skipped"], report.problems
        return report

    def subscribe(
        self,
        address: str,
        tags: str = "",
        *,
        frequency: str = "daily",
        lang: str = "ru",
        status: str = "confirmed",
        store: SubscriberStore | None = None,
    ) -> Subscriber:
        subscriber = new_subscriber(address, tags, frequency, lang)
        subscriber = subscriber.model_copy(update={"status": status})
        (store or self.subscribers).save(subscriber)
        self.people[subscriber.email] = subscriber
        return subscriber

    def context(
        self,
        mailer: Mailer | None = None,
        *,
        ledger: Ledger | None = None,
        subscribers: SubscriberStore | None = None,
        **overrides: Any,
    ) -> NewsletterContext:
        fields: dict[str, Any] = {
            "site": SITE,
            "state": self.state,
            "dest": self.dest,
            "subscribers": subscribers or self.subscribers,
            "ledger": ledger or self.ledger,
            "mailer": mailer or OutboxMailer(self.outbox_dir),
            "token_key": TOKEN_KEY,
            "from_address": FROM_ADDRESS,
        }
        fields.update(overrides)
        return NewsletterContext(**fields)

    def send(
        self,
        mailer: Mailer | None = None,
        *,
        on: date | None = None,
        now: datetime | None = None,
        options: SendOptions = FAST,
        frequency: str = "daily",
        **context: Any,
    ) -> SendReport:
        """One ``send_newsletter`` run; ``now`` defaults to this moment and ``on`` to its day."""
        now = now or datetime.now(UTC)
        return send_newsletter(
            self.context(mailer, **context),
            frequency,  # type: ignore[arg-type]
            on or now.date(),
            options,
            now=now,
        )

    def outbox(self, folder: Path | None = None) -> list[EmailMessage]:
        return outbox_messages(folder or self.outbox_dir)

    def ids_by_email(self) -> dict[str, str]:
        return {address: subscriber.id for address, subscriber in self.people.items()}


class CollectingMailer:
    """A mail service in memory that accepts everything (thread-safe)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()

    def send(self, sender: str, recipient: str, message: bytes) -> str:
        with self._lock:
            self.sent.append((sender, recipient, message))
        return ""

    def close(self) -> None:
        return None

    def messages(self) -> list[EmailMessage]:
        return [parse(raw) for _sender, _recipient, raw in self.sent]


def parse(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))


def outbox_messages(folder: Path) -> list[EmailMessage]:
    if not folder.is_dir():
        return []
    return [parse(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def recipient(message: EmailMessage) -> str:
    return message["To"].addresses[0].addr_spec


def recipients(messages: list[EmailMessage]) -> Counter[str]:
    return Counter(recipient(message) for message in messages)


def by_recipient(messages: list[EmailMessage]) -> dict[str, EmailMessage]:
    found: dict[str, EmailMessage] = {}
    for message in messages:
        address = recipient(message)
        assert address not in found, f"{address} got two emails"
        found[address] = message
    return found


def body_parts(message: EmailMessage) -> tuple[str, str]:
    """``(plain text, HTML)`` of a multipart/alternative message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "the message lacks a text or an HTML part"
    return cast(EmailMessage, text).get_content(), cast(EmailMessage, html).get_content()


def token_of(url: str) -> str:
    values = parse_qs(urlsplit(url).query).get("token", [])
    assert len(values) == 1, f"no single token in {url}"
    return values[0]


def list_unsubscribe_url(message: EmailMessage) -> str:
    value = str(message["List-Unsubscribe"]).strip()
    assert value.startswith("<") and value.endswith(">"), value
    return value[1:-1]


# --- SMTP servers and the command, for the tests that send ---------------------------


class Recorder:
    """An aiosmtpd handler that keeps what it accepts and answers as told.

    ``refuse``: addresses answered ``550 no such user`` on RCPT; ``rcpt``: other RCPT
    answers by address; ``busy``: addresses answered 451 on DATA that many times;
    ``data``: other DATA answers by address;
    ``mail``: an answer to every MAIL FROM once ``accept_first`` messages were
    accepted (``None``: accept); ``drop``: addresses whose message is kept and the
    connection then dropped before the answer, ``drop_at_rcpt``: addresses whose RCPT
    drops it (once each). Tests change these between runs. ``events`` logs
    (time, command, address) of every MAIL, RCPT and accepted message, in order.
    """

    def __init__(
        self,
        refuse: set[str] | None = None,
        busy: dict[str, int] | None = None,
        rcpt: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        mail: str | None = None,
        accept_first: int = 0,
        drop: set[str] | None = None,
        drop_at_rcpt: set[str] | None = None,
    ) -> None:
        self.refuse = refuse or set()
        self.busy = dict(busy or {})
        self.rcpt = dict(rcpt or {})
        self.data = dict(data or {})
        self.mail = mail
        self.accept_first = accept_first
        self.drop = set(drop or ())
        self.drop_at_rcpt = set(drop_at_rcpt or ())
        self.dropped: list[str] = []
        self.logins: list[tuple[str, object]] = []
        self.accepted: list[tuple[list[str], bytes]] = []
        self.sessions: list[Any] = []
        self.data_attempts: dict[str, int] = {}
        self.events: list[tuple[float, str, str]] = []

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if not any(seen is session for seen in self.sessions):
            self.sessions.append(session)
        self.events.append((time.monotonic(), "MAIL", address))
        if self.mail is not None and len(self.accepted) >= self.accept_first:
            return self.mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self.events.append((time.monotonic(), "RCPT", address))
        if address in self.drop_at_rcpt:
            self.drop_at_rcpt.discard(address)
            server.transport.abort()
            return "451 never heard"
        if address in self.refuse:
            return "550 no such user"
        if address in self.rcpt:
            return self.rcpt[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        (address,) = envelope.rcpt_tos
        self.data_attempts[address] = self.data_attempts.get(address, 0) + 1
        if self.busy.get(address, 0) > 0:
            self.busy[address] -= 1
            return "451 4.3.0 try again later"
        if address in self.data:
            return self.data[address]
        self.accepted.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        self.events.append((time.monotonic(), "ACCEPTED", address))
        if address in self.drop:
            self.drop.discard(address)
            self.dropped.append(address)
            server.transport.abort()  # the message is taken; its 250 never reaches the client
        return "250 Message accepted for delivery"


def localhost_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files in ``folder``).

    A client trusts it when ``SSL_CERT_FILE`` names the certificate.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_path, key_path


@contextlib.contextmanager
def smtp_servers() -> Iterator[Callable[..., tuple[Recorder, str]]]:
    """Starts aiosmtpd on 127.0.0.1 (on ``port``, or a free one) with a ``Recorder``; stops them all after.

    With ``login=(user, password)`` the server wants AUTH and takes only that login
    (every AUTH it is sent is kept in ``Recorder.logins``). ``certificate`` (a
    certificate and its key) makes it offer STARTTLS and AUTH only after it, or with
    ``implicit_tls`` speak TLS from the start (``smtps://``); without, it offers AUTH
    in clear, as a man in the middle who strips STARTTLS would.
    """
    controllers: list[Controller] = []

    def start(
        port: int | None = None,
        login: tuple[str, str] | None = None,
        certificate: tuple[Path, Path] | None = None,
        implicit_tls: bool = False,
        **handler_options: Any,
    ) -> tuple[Recorder, str]:
        handler = Recorder(**handler_options)
        port = port or free_port()
        auth: dict[str, Any] = {}
        if login is not None:
            wanted = (login[0].encode(), login[1].encode())

            def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                given = (data.login, data.password) if isinstance(data, LoginPassword) else None
                handler.logins.append((mechanism, given))
                return AuthResult(success=given == wanted, handled=False)

            auth = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": certificate is not None}
            if implicit_tls:
                auth["auth_require_tls"] = False  # aiosmtpd counts only STARTTLS as TLS
        if certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*certificate)
            auth["ssl_context" if implicit_tls else "tls_context"] = context
        controller = Controller(handler, hostname="127.0.0.1", port=port, **auth)
        controller.start()
        controllers.append(controller)
        return handler, f"{'smtps' if implicit_tls else 'smtp'}://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for controller in controllers:
            controller.stop()
        asyncio.set_event_loop(None)


def cli_env(scenario: Scenario) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("DIGESTPUB_")}
    env.update(
        {
            "COLUMNS": "400",
            "NO_COLOR": "1",
            "TERM": "dumb",
            "DIGESTPUB_SOURCE": str(scenario.source_dir),
            "DIGESTPUB_DEST": str(scenario.dest_dir),
            "DIGESTPUB_STATE": str(scenario.state_dir),
            "DIGESTPUB_SUBSCRIBERS": f"sqlite:///{scenario.db_path}",
            "DIGESTPUB_MAILER": f"outbox:{scenario.outbox_dir}",
            "DIGESTPUB_BASE_URL": SITE.base_url,
            "DIGESTPUB_API_URL": SITE.api_url,
            "DIGESTPUB_SEARCH": "every-run" if SITE.search else "off",
            # The key the scenario's own runs sign with: its subscribers are saved straight into the store.
            "DIGESTPUB_TOKEN_KEY": TOKEN_KEY.decode(),
        }
    )
    return env


def run_cli(scenario: Scenario, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """``python -m digestpub`` in a folder of the scenario, its settings from ``DIGESTPUB_*``.

    ``env`` adds variables, or removes those given as ``None``.
    """
    cwd = scenario.root / "cwd"
    cwd.mkdir(exist_ok=True)
    environment = cli_env(scenario)
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return run_digestpub(cwd, environment, *args)
