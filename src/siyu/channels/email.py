"""E-mail through Django's SMTP backend (EMAIL_* settings), one connection per batch."""

import contextlib
import smtplib
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from siyu.channels.base import ChannelAdapter, Message, Result, register


def _message_id(key: str) -> str:
    # The same key gives the same Message-ID on a retry, so a receiving server or mail client
    # that dedupes by it shows one message.
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "siyu.local"
    return f"<{key}@{domain}>"


@register
class EmailChannel(ChannelAdapter):
    name = "email"
    address_kind = "email"

    def send(self, messages: Sequence[Message]) -> list[Result]:
        connection = get_connection(
            "django.core.mail.backends.smtp.EmailBackend", fail_silently=False
        )
        try:
            connection.open()
        except (OSError, smtplib.SMTPException) as error:
            return [Result.failed(f"SMTP connection: {error}") for _ in messages]
        results = []
        try:
            for message in messages:
                results.append(self._send_one(connection, message))
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                connection.close()
        return results

    def _send_one(self, connection, message: Message) -> Result:
        email = EmailMessage(
            subject=message.subject,
            body=message.body,
            to=[message.address],
            connection=connection,
            headers={
                "Message-ID": _message_id(message.idempotency_key),
                "X-Siyu-Idempotency-Key": message.idempotency_key,
            },
        )
        try:
            email.send()
        except smtplib.SMTPRecipientsRefused as error:
            # The server refused the address itself: sending again cannot help.
            return Result.failed(f"recipient refused: {error.recipients}", retryable=False)
        except smtplib.SMTPResponseException as error:
            permanent = 500 <= error.smtp_code < 600
            detail = error.smtp_error.decode("utf-8", "replace")
            return Result.failed(f"SMTP {error.smtp_code}: {detail}", retryable=not permanent)
        except (TimeoutError, OSError, smtplib.SMTPException) as error:
            return Result.failed(f"SMTP: {error}")
        return Result.sent(_message_id(message.idempotency_key))
