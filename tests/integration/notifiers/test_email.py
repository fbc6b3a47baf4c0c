"""Tests for the email notifier against a real SMTP server (aiosmtpd) on the loopback interface."""

import email
import email.policy
import hashlib
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from notifiers import (
    EmailNotifier,
    Notification,
    PermanentDeliveryError,
    TransientDeliveryError,
    build_notifiers,
)

MakeNotification = Callable[..., Notification]
SENDER = "sojourn@example.com"
USERNAME = "sojourn"
PASSWORD = "correct-horse-battery"


@dataclass
class Delivered:
    """One message the server accepted, with the session facts tests look at."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: Any
    tls: bool
    login: bytes | None


@dataclass
class RecordingHandler:
    """Accepts mail and records it, unless told to answer RCPT or DATA with a scripted reply."""

    mail_replies: list[str] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None
    delivered: list[Delivered] = field(default_factory=list)

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        """Answer with the next scripted reply if any, else accept the sender."""
        if self.mail_replies:
            return self.mail_replies.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        """Refuse with rcpt_reply if set, else accept the recipient."""
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        """Refuse with data_reply if set, else record the message."""
        if self.data_reply is not None:
            return self.data_reply
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.delivered.append(
            Delivered(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                peer=session.peer,
                tls=session.ssl is not None,
                login=session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None,
            )
        )
        return "250 Message accepted for delivery"


def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object) -> AuthResult:
    """Accept only USERNAME with PASSWORD."""
    valid = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    # handled=False makes aiosmtpd answer the refusal with 535 itself.
    return AuthResult(success=valid, handled=False, auth_data=auth_data)


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Certificate:
    """A self-signed certificate for 127.0.0.1 and the contexts both ends use with it."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """Return a server context presenting this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Return a verifying client context that trusts only this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """Generate a throwaway self-signed certificate with openssl."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Certificate(cert, key)


@dataclass
class SmtpServer:
    """A running aiosmtpd server and its recording handler."""

    controller: Controller
    handler: RecordingHandler
    running: bool = True

    @property
    def port(self) -> int:
        """The port the server listens on."""
        port: int = self.controller.port
        return port

    def stop(self) -> None:
        """Stop the server, closing every connection it holds."""
        if self.running:
            self.controller.stop()
            self.running = False


StartServer = Callable[..., SmtpServer]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Return a function starting an SMTP server with the given aiosmtpd options; all stop afterwards."""
    servers: list[SmtpServer] = []

    def start(port: int | None = None, **options: Any) -> SmtpServer:
        handler = RecordingHandler()
        controller = Controller(
            handler, hostname="127.0.0.1", port=port or free_port(), server_hostname="localhost", **options
        )
        controller.start()
        servers.append(SmtpServer(controller, handler))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: StartServer) -> SmtpServer:
    """A plain SMTP server without TLS or authentication."""
    return start_server()


MakeNotifier = Callable[..., EmailNotifier]


@pytest.fixture
def make_notifier(start_server: StartServer) -> Iterator[MakeNotifier]:
    """Return a function building EmailNotifiers for 127.0.0.1; all are closed before the servers stop."""
    notifiers: list[EmailNotifier] = []

    def make(port: int, **options: Any) -> EmailNotifier:
        notifier = EmailNotifier("127.0.0.1", port, SENDER, **options)
        notifiers.append(notifier)
        return notifier

    yield make
    for notifier in notifiers:
        notifier.close()


def test_email_delivers_to_the_recipient_with_sojourn_headers(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """The message goes to the recipient from the sender, with subject, key headers and the plain-text body."""
    notification = make_notification()

    make_notifier(server.port).send(notification)

    (delivered,) = server.handler.delivered
    assert delivered.mail_from == SENDER
    assert delivered.rcpt_tos == ["ada@example.com"]
    message = delivered.message
    assert message["From"] == SENDER
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Relocation checklist is due today"
    assert message["X-Sojourn-Key"] == notification.key
    digest = hashlib.sha256(notification.key.encode()).hexdigest()[:32]
    assert message["Message-ID"] == f"<{digest}@example.com>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "text/plain"
    assert message.get_content().splitlines() == notification.body.splitlines()


def test_email_attaches_the_calendar_as_a_text_calendar_publish_part(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """A notification with a calendar arrives as the plain-text body plus a text/calendar; method=PUBLISH part."""
    ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:PUBLISH\r\nBEGIN:VEVENT\r\n"
           "UID:sponsor_contact-7-2027-02-04@sojourn\r\nDTSTAMP:20270201T100000Z\r\nSUMMARY:Sponsor café\r\n"
           "DTSTART;VALUE=DATE:20270204\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    notification = make_notification(kind="contact_due", calendar=ics)

    make_notifier(server.port).send(notification)

    message = server.handler.delivered[0].message
    assert message.get_content_type() == "multipart/mixed"
    body, attachment = list(message.iter_parts())
    assert body.get_content().splitlines() == notification.body.splitlines()
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_filename() == "event.ics"
    assert attachment.get_payload(decode=True) == ics.encode()


def test_email_message_id_depends_only_on_the_key(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """Resending a key reuses its Message-ID, so mail clients show a retry once; another key gets another id."""
    notifier = make_notifier(server.port)

    notifier.send(make_notification(key="k-1", subject="first try"))
    notifier.send(make_notification(key="k-1", subject="retry"))
    notifier.send(make_notification(key="k-2"))

    ids = [delivered.message["Message-ID"] for delivered in server.handler.delivered]
    assert ids[0] == ids[1]
    assert ids[2] != ids[0]


def test_email_encodes_non_ascii_and_flattens_multiline_subjects(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """Non-ASCII text arrives intact, and a subject with line breaks becomes one line."""
    notification = make_notification(subject="Entretien préalable\nà Genève", body="Grüße aus Zürich")

    make_notifier(server.port).send(notification)

    message = server.handler.delivered[0].message
    assert message["Subject"] == "Entretien préalable à Genève"
    assert message.get_content().strip() == "Grüße aus Zürich"


def test_email_subject_with_line_breaks_cannot_add_headers(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """A subject carrying CR/LF and a `Bcc:` line arrives as one Subject header: no Bcc header, no extra recipient."""
    notification = make_notification(subject="Plan for Ana\r\nBcc: spy@evil.example\r\n\r\nInjected body\u2028end")

    make_notifier(server.port).send(notification)

    delivered = server.handler.delivered[0]
    assert delivered.rcpt_tos == [notification.recipient]
    assert delivered.message["Bcc"] is None
    assert delivered.message.get_all("Subject") == ["Plan for Ana Bcc: spy@evil.example Injected body end"]
    assert "Injected body" not in delivered.message.get_content()


def test_email_delivers_to_international_addresses(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """A non-ASCII recipient is delivered with SMTPUTF8 and arrives unmangled in the To header."""
    make_notifier(server.port).send(make_notification(recipient="josé@exämple.com"))

    delivered = server.handler.delivered[0]
    assert delivered.rcpt_tos == ["josé@exämple.com"]
    assert delivered.message["To"] == "josé@exämple.com"


def test_email_sender_may_carry_a_display_name(server: SmtpServer, make_notification: MakeNotification) -> None:
    """A sender like 'Sojourn <addr>' shows the name in From and uses the bare address for the envelope."""
    notifier = EmailNotifier("127.0.0.1", server.port, f"Sojourn <{SENDER}>")
    try:
        notifier.send(make_notification())
    finally:
        notifier.close()

    delivered = server.handler.delivered[0]
    assert delivered.mail_from == SENDER
    assert delivered.message["From"] == f"Sojourn <{SENDER}>"
    assert delivered.message["Message-ID"].endswith("@example.com>")


def test_email_reuses_one_connection_across_sends(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """Consecutive sends travel over the same SMTP connection."""
    notifier = make_notifier(server.port)

    for number in range(3):
        notifier.send(make_notification(key=f"k-{number}"))

    assert len({delivered.peer for delivered in server.handler.delivered}) == 1


def test_email_reconnects_when_the_server_dropped_the_connection(
    start_server: StartServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """A connection the server closed in the meantime is replaced without failing the send."""
    first = start_server()
    notifier = make_notifier(first.port)
    notifier.send(make_notification(key="before"))
    first.stop()
    second = start_server(port=first.port)

    notifier.send(make_notification(key="after"))

    assert [d.message["X-Sojourn-Key"] for d in second.handler.delivered] == ["after"]


def test_email_reconnects_when_the_server_announces_closing(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """A 421 on a reused connection, as servers send after an idle timeout, leads to one fresh connection."""
    notifier = make_notifier(server.port)
    notifier.send(make_notification(key="before"))
    server.handler.mail_replies.append("421 4.4.2 idle timeout, closing connection")

    notifier.send(make_notification(key="after"))

    delivered = server.handler.delivered
    assert [d.message["X-Sojourn-Key"] for d in delivered] == ["before", "after"]
    assert delivered[0].peer != delivered[1].peer


def test_email_marks_421_on_a_fresh_connection_transient(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """A 421 on a new connection is not retried at once but reported as a transient failure."""
    server.handler.mail_replies.extend(["421 4.3.2 shutting down"] * 2)

    with pytest.raises(TransientDeliveryError, match=r"421 4\.3\.2 shutting down"):
        make_notifier(server.port).send(make_notification())

    assert server.handler.mail_replies == ["421 4.3.2 shutting down"]


@pytest.mark.parametrize("phase", ["rcpt_reply", "data_reply"])
def test_email_marks_4yz_replies_transient(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification, phase: str
) -> None:
    """A 451 reply to RCPT or DATA is a transient failure that quotes the server."""
    setattr(server.handler, phase, "451 try later")

    with pytest.raises(TransientDeliveryError, match="451 try later"):
        make_notifier(server.port).send(make_notification())


@pytest.mark.parametrize("phase", ["rcpt_reply", "data_reply"])
def test_email_marks_5yz_replies_permanent(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification, phase: str
) -> None:
    """A 550 reply to RCPT or DATA is a permanent failure that quotes the server."""
    setattr(server.handler, phase, "550 no such user")

    with pytest.raises(PermanentDeliveryError, match="550 no such user"):
        make_notifier(server.port).send(make_notification())


def test_email_recovers_after_a_refused_message(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """After a refusal the next notification is delivered normally."""
    notifier = make_notifier(server.port)
    server.handler.rcpt_reply = "550 no such user"
    with pytest.raises(PermanentDeliveryError):
        notifier.send(make_notification(key="refused"))

    server.handler.rcpt_reply = None
    notifier.send(make_notification(key="accepted"))

    assert [d.message["X-Sojourn-Key"] for d in server.handler.delivered] == ["accepted"]


def test_email_logs_in_with_username_and_password(
    start_server: StartServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """With credentials the notifier authenticates before sending."""
    server = start_server(authenticator=authenticate, auth_require_tls=False)

    make_notifier(server.port, username=USERNAME, password=PASSWORD).send(make_notification())

    assert server.handler.delivered[0].login == USERNAME.encode()


def test_email_marks_wrong_password_permanent_without_revealing_it(
    start_server: StartServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """A 535 login refusal is permanent, and neither the error nor its cause mentions the password."""
    server = start_server(authenticator=authenticate, auth_require_tls=False)
    wrong = "wrong-horse-battery"

    with pytest.raises(PermanentDeliveryError, match="535") as caught:
        make_notifier(server.port, username=USERNAME, password=wrong).send(make_notification())

    assert wrong not in str(caught.value)
    assert wrong not in repr(caught.value.__cause__)
    assert server.handler.delivered == []


def test_email_delivers_over_starttls(
    start_server: StartServer,
    make_notifier: MakeNotifier,
    make_notification: MakeNotification,
    certificate: Certificate,
) -> None:
    """tls="starttls" upgrades the plain connection, verifying the server's certificate, then delivers."""
    server = start_server(tls_context=certificate.server_context(), require_starttls=True)
    notifier = make_notifier(server.port, tls="starttls", ssl_context=certificate.client_context())

    notifier.send(make_notification())

    assert server.handler.delivered[0].tls


def test_email_delivers_over_implicit_tls(
    start_server: StartServer,
    make_notifier: MakeNotifier,
    make_notification: MakeNotification,
    certificate: Certificate,
) -> None:
    """tls="ssl" speaks TLS from the first byte, verifying the server's certificate, then delivers."""
    server = start_server(ssl_context=certificate.server_context())
    notifier = make_notifier(server.port, tls="ssl", ssl_context=certificate.client_context())

    notifier.send(make_notification())

    assert len(server.handler.delivered) == 1


def test_email_marks_untrusted_certificate_transient(
    start_server: StartServer,
    make_notifier: MakeNotifier,
    make_notification: MakeNotification,
    certificate: Certificate,
) -> None:
    """A certificate the client does not trust stops delivery with a transient error, sending nothing."""
    server = start_server(ssl_context=certificate.server_context())
    notifier = make_notifier(server.port, tls="ssl", ssl_context=ssl.create_default_context())

    with pytest.raises(TransientDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        notifier.send(make_notification())

    assert server.handler.delivered == []


def test_email_marks_missing_starttls_permanent(
    server: SmtpServer, make_notifier: MakeNotifier, make_notification: MakeNotification
) -> None:
    """A server without STARTTLS cannot satisfy tls="starttls"; the error says how to change the setting."""
    notifier = make_notifier(server.port, tls="starttls")

    with pytest.raises(PermanentDeliveryError, match='tls = "none"'):
        notifier.send(make_notification())


def test_email_marks_closed_port_transient(make_notifier: MakeNotifier, make_notification: MakeNotification) -> None:
    """Nothing listening on the port is a transient failure."""
    with pytest.raises(TransientDeliveryError, match=r"could not talk to SMTP server 127\.0\.0\.1"):
        make_notifier(free_port()).send(make_notification())


def test_email_marks_silent_server_transient(make_notifier: MakeNotifier, make_notification: MakeNotification) -> None:
    """A server that accepts the connection but never greets times out as a transient failure."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()

        with pytest.raises(TransientDeliveryError):
            make_notifier(silent.getsockname()[1], timeout=0.2).send(make_notification())


def test_email_from_config_logs_in_with_the_password_from_the_environment(
    start_server: StartServer, make_notification: MakeNotification
) -> None:
    """build_notifiers reads the password from the variable password_env names, and the login succeeds."""
    server = start_server(authenticator=authenticate, auth_require_tls=False)
    section = {
        "email": {
            "host": "127.0.0.1",
            "port": server.port,
            "sender": SENDER,
            "tls": "none",
            "username": USERNAME,
            "password_env": "TEST_SMTP_PASSWORD",
        }
    }
    (notifier,) = build_notifiers(section, {"TEST_SMTP_PASSWORD": PASSWORD})
    assert isinstance(notifier, EmailNotifier)

    try:
        notifier.send(make_notification())
    finally:
        notifier.close()

    assert server.handler.delivered[0].login == USERNAME.encode()
