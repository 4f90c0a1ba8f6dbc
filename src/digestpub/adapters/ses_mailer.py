"""Amazon SES (API v2), raw content: the message goes out exactly as built.

SES never refuses an address synchronously: bounces and complaints come later as
configuration-set events (``ses_events``). Its synchronous errors are about the
account, the sender or the message, or ask to slow down; ``_classify`` sorts them.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from digestpub.errors import MailError, MailOutcomeUnknown, MailTransient, MailUnreachable, MessageRefused

_TRY_LATER = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "ServiceUnavailable",
        "InternalFailure",
    }
)
_WHAT_TO_FIX = {
    "MessageRejected": (
        "verify the From address or its domain in SES (create_email_identity), and while the account "
        "is in the sandbox, the recipients too; or fix what SES says it refused in the content"
    ),
    "MailFromDomainNotVerifiedException": "publish the custom MAIL FROM domain's MX and SPF records, or stop using it",
    "AccountSuspendedException": "the account may not send: see the SES console and AWS support",
    "SendingPausedException": "sending is paused for the account or the configuration set: resume it",
    "NotFoundException": "the configuration set in mailer (ses://NAME) does not exist in this region",
    "AccessDenied": "the function's role needs ses:SendEmail and ses:SendRawEmail on the identity",
    "AccessDeniedException": "the function's role needs ses:SendEmail and ses:SendRawEmail on the identity",
}

CLIENT_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"})
"""One attempt: retries are the send loop's, with its pacing. botocore's own would hide
throttling, and would resend a message that SES took but did not answer."""


class SesMailer:
    def __init__(self, configuration_set: str | None = None, client: Any = None) -> None:
        self.configuration_set = configuration_set or None
        self.client = client or boto3.client("sesv2", config=CLIENT_CONFIG)

    def send(self, sender: str, recipient: str, message: bytes) -> str:
        arguments: dict[str, Any] = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": [recipient]},
            "Content": {"Raw": {"Data": message}},
        }
        if self.configuration_set:
            arguments["ConfigurationSetName"] = self.configuration_set
        try:
            response = self.client.send_email(**arguments)
        except (ClientError, BotoCoreError) as error:
            raise _classify(error, sender) from error
        return str(response.get("MessageId", ""))

    def close(self) -> None:
        return None


def _classify(error: ClientError | BotoCoreError, sender: str) -> MailError:
    """The one place an SES answer becomes an error class."""
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        return MailUnreachable(f"cannot reach SES: {error}")
    if isinstance(error, (ReadTimeoutError, ConnectionClosedError)):
        # The request went out and no answer came back: SES may have sent the message.
        return MailOutcomeUnknown(f"SES took the request and gave no answer ({error}): it may have sent it")
    if isinstance(error, (NoCredentialsError, NoRegionError)):
        return MessageRefused(f"SES: {error}; set AWS credentials and region for the sender")
    if isinstance(error, BotoCoreError):
        return MailTransient(f"SES: {error}")
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    text = str(error.response.get("Error", {}).get("Message", "")) or str(error)
    if code in _TRY_LATER or status == 429 or status >= 500:
        return MailTransient(f"SES asks to slow down or try later: {code or status}: {text}")
    # Anything else is about the account, the sender or the message: every recipient
    # would get the same answer, so the run stops and nobody is marked.
    fix = _WHAT_TO_FIX.get(code, "see the SES documentation of this error")
    return MessageRefused(f"SES refused to send from {sender}: {code or status}: {text}; {fix}")
