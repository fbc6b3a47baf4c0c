"""Sends notifications as plain-text email over SMTP (with any calendar attached), with a stable Message-ID."""

from __future__ import annotations

import email.policy
import hashlib
import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from notifiers.base import DeliveryError, Notification, PermanentDeliveryError, TransientDeliveryError
from notifiers.escape import header_text

TLS_MODES = ("none", "starttls", "ssl")
CALENDAR_FILENAME = "event.ics"

# 7bit makes non-ASCII bodies quoted-printable, so servers without 8BITMIME accept them too.
_POLICY = email.policy.SMTP.clone(cte_type="7bit")


def message_id(key: str, sender: str) -> str:
    """Return the Message-ID for a notification key: the same key always gives the same id."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "sojourn"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def build_message(notification: Notification, sender: str) -> EmailMessage:
    """Build the message for a notification; raises ValueError when a header cannot be encoded."""
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = notification.recipient
    message["Subject"] = header_text(notification.subject)
    message["Date"] = format_datetime(notification.created_at)
    message["Message-ID"] = message_id(notification.key, sender)
    message["X-Sojourn-Key"] = notification.key
    # RFC 3834: tells vacation responders and mailing lists not to answer a machine.
    message["Auto-Submitted"] = "auto-generated"
    body = notification.body
    if notification.action_url is not None and notification.action_url not in body:  # else the body shows it
        body = f"{body}\n\nAct on it here: {notification.action_url}"
    message.set_content(body)
    if notification.calendar is not None:
        # Base64 keeps the iCalendar CRLF line ends intact; method=PUBLISH lets mail clients offer "add to calendar".
        message.add_attachment(notification.calendar.encode(), maintype="text", subtype="calendar",
                               filename=CALENDAR_FILENAME, params={"method": "PUBLISH", "charset": "utf-8"})
    return message


class EmailNotifier:
    """Sends each notification to its recipient through one SMTP server.

    One connection is kept open across sends and reopened when the server has dropped it. `send` may be called
    from several threads; they take turns on the connection. The password never appears in an error message.
    """

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        tls: str = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if tls not in TLS_MODES:
            raise ValueError(f"tls must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        self.host = host
        self.port = port
        self.sender = sender
        self.tls = tls
        self.username = username
        self._password = password
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._connection: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        """Hand the message to the server; 5yz replies are permanent, 4yz and network failures transient."""
        try:
            message = build_message(notification, self.sender)
        except ValueError as exc:
            raise PermanentDeliveryError(f"cannot build an email for {notification.key}: {exc}") from exc
        with self._lock:
            try:
                self._deliver(message, notification.recipient)
            except (smtplib.SMTPException, OSError) as exc:
                self._discard_connection()
                raise self._classify(exc) from exc

    def close(self) -> None:
        """Say goodbye to the server and close the connection, if one is open."""
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is None:
                return
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()

    def _deliver(self, message: EmailMessage, recipient: str) -> None:
        if self._connection is not None:
            try:
                self._connection.send_message(message, from_addr=self.sender, to_addrs=[recipient])
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as exc:
                if not _closed_by_server(exc):
                    raise
                # Servers drop idle connections; one try on a new connection tells that apart from an outage.
                self._discard_connection()
            else:
                return
        self._connection = self._connect()
        self._connection.send_message(message, from_addr=self.sender, to_addrs=[recipient])

    def _connect(self) -> smtplib.SMTP:
        context = self._ssl_context or ssl.create_default_context()
        connection: smtplib.SMTP
        if self.tls == "ssl":
            connection = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.tls == "starttls":
                connection.starttls(context=context)
            if self.username is not None and self._password is not None:
                connection.login(self.username, self._password)
        except BaseException:
            connection.close()
            raise
        return connection

    def _discard_connection(self) -> None:
        # No QUIT: after a failure the server may be gone, and waiting for its reply would only add a timeout.
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _classify(self, exc: smtplib.SMTPException | OSError) -> DeliveryError:
        server = f"SMTP server {self.host}:{self.port}"
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, text = next(iter(exc.recipients.values()), (0, b""))
            return _by_code(code, self._redact(f"{server} refused the recipient: {code} {_text(text)}"))
        if isinstance(exc, smtplib.SMTPResponseException):
            what = "rejected the login" if isinstance(exc, smtplib.SMTPAuthenticationError) else "answered"
            reply = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            return _by_code(exc.smtp_code, self._redact(f"{server} {what}: {reply}"))
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            hint = ' (use tls = "none" if it has no STARTTLS)' if "STARTTLS" in str(exc) else ""
            return PermanentDeliveryError(self._redact(f"{server} lacks a needed feature: {exc}{hint}"))
        return TransientDeliveryError(self._redact(f"could not talk to {server}: {exc}"))

    def _redact(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text


def _closed_by_server(exc: smtplib.SMTPException) -> bool:
    # 421 is how a server announces it is closing the connection, typically after an idle timeout.
    return isinstance(exc, smtplib.SMTPServerDisconnected) or (
        isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421
    )


def _by_code(code: int, message: str) -> DeliveryError:
    # Only a 5yz reply is a final no; 4yz, and anything that is not a reply code at all, may succeed later.
    if 500 <= code <= 599:
        return PermanentDeliveryError(message)
    return TransientDeliveryError(message)


def _text(reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())
