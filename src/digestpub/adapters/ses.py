"""Amazon SES (API v2), raw content: the message goes out exactly as built."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from digestpub.errors import ConfigError, MailRejected, MailTransient

_THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "ServiceUnavailable",
    }
)
_REJECTED = frozenset({"MessageRejected", "BadRequestException", "NotFoundException"})
_SETUP = frozenset(
    {
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "SendingPausedException",
        "AccessDenied",
    }
)


class SesMailer:
    def __init__(self, configuration_set: str | None = None, client: Any = None) -> None:
        self.configuration_set = configuration_set or None
        # Retries are the send loop's, with its pacing; botocore's own would hide throttling.
        self.client = client or boto3.client("sesv2", config=Config(retries={"max_attempts": 1, "mode": "standard"}))

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
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in _THROTTLED or status == 429 or status >= 500:
                raise MailTransient(f"SES: {code or status}: {error}") from error
            if code in _SETUP:
                raise ConfigError(f"SES cannot send from {sender}: {code}: {error}") from error
            if code in _REJECTED:
                raise MailRejected(f"SES rejected the message to {recipient}: {error}") from error
            raise MailTransient(f"SES: {code}: {error}") from error
        except BotoCoreError as error:
            raise MailTransient(f"SES: {error}") from error
        return str(response.get("MessageId", ""))

    def close(self) -> None:
        return None
