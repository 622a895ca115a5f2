"""Deliveries that are not HTTP: email and email-json (SMTP), redis (PUBLISH to a channel) and
store (one JSON object per message under an s3:// prefix). Each sender takes a claimed delivery
row and its stored payload and returns an Outcome; the delivery loop retries them on the same
policy as HTTP, from the same payload (same MessageId, Timestamp and Signature on every try).

Endpoints, as Subscribe takes them:

- email, email-json: an address, `user@example.com`; confirmed by the SubscribeURL in a
  confirmation mail, as SNS does.
- redis: `redis://HOST[:PORT][/DB]#CHANNEL`; the host obeys the same destination rules as HTTP
  (loopback and private ranges only when allowed), credentials in the URL are refused (ListSubscriptions
  shows endpoints), channels named `tailrace:*` are the service's own.
- store: `s3://BUCKET/PREFIX/`; a bucket the subscriber's owner owns or was granted. Each message
  is `PREFIX/YYYY/MM/DD/<MessageId>.json`.
"""

from __future__ import annotations

import json
import re
import smtplib
import threading
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

from tailrace.config import SmtpSettings
from tailrace.notify.errors import AuthorizationError, InvalidParameter
from tailrace.notify.httpsend import DeliveryRefused, DestinationPolicy, Outcome
from tailrace.notify.signing import Signer, http_request

ChannelSender = Callable[[Mapping[str, Any], dict[str, Any]], Outcome]
"""(delivery row, its stored payload) -> Outcome."""

EMAIL_PROTOCOLS = frozenset({"email", "email-json"})
_ADDRESS = re.compile(r"[^@\s<>(),;:\"\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
RESERVED_CHANNEL_PREFIX = "tailrace:"


# --- endpoints ------------------------------------------------------------------------------------


def check_email(endpoint: str) -> str:
    if not _ADDRESS.fullmatch(endpoint) or ".." in endpoint:
        raise InvalidParameter(f"Endpoint: {endpoint[:200]!r} is not an email address")
    return endpoint


def parse_redis(endpoint: str) -> tuple[str, int, int, str]:
    """(host, port, db, channel) of `redis://HOST[:PORT][/DB]#CHANNEL`. :raises InvalidParameter:"""
    parts = urlsplit(endpoint)
    if parts.scheme != "redis" or not parts.hostname:
        raise InvalidParameter(f"Endpoint: {endpoint[:200]!r} is not redis://HOST[:PORT][/DB]#CHANNEL")
    if parts.username or parts.password:
        raise InvalidParameter(
            "Endpoint: credentials in a redis endpoint are not accepted (ListSubscriptions shows endpoints)"
        )
    if parts.query:
        raise InvalidParameter("Endpoint: a redis endpoint takes no query string")
    try:
        port = parts.port or 6379
    except ValueError:
        raise InvalidParameter(f"Endpoint: {endpoint[:200]!r} has an invalid port")
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit() or int(db_text) > 1023:
        raise InvalidParameter(f"Endpoint: redis database {db_text!r} must be a number 0-1023")
    channel = parts.fragment
    if not channel or len(channel) > 256 or any(ord(c) < 32 for c in channel):
        raise InvalidParameter(
            "Endpoint: a redis endpoint names its channel after '#' (1-256 printable characters), "
            "e.g. redis://127.0.0.1:6379/0#alarms"
        )
    if channel.startswith(RESERVED_CHANNEL_PREFIX):
        raise InvalidParameter(f"Endpoint: channels named {RESERVED_CHANNEL_PREFIX}* are the service's own")
    return parts.hostname, port, int(db_text), channel


def store_key(prefix_key: str, timestamp: str, message_id: str) -> str:
    """PREFIX/YYYY/MM/DD/<MessageId>.json, from the message's own Timestamp (retries keep it)."""
    day = timestamp[:10].replace("-", "/")
    base = prefix_key if not prefix_key or prefix_key.endswith("/") else prefix_key + "/"
    return f"{base}{day}/{message_id}.json"


class EndpointRules:
    """Subscribe's checks for every protocol: HTTP's destination rules, and the ones above.
    `storage` has `for_owner(owner).resolve(uri)` (tailrace.storage.Storage)."""

    def __init__(
        self,
        destinations: DestinationPolicy,
        *,
        storage: Any = None,
        smtp: SmtpSettings | None = None,
    ) -> None:
        self.destinations = destinations
        self.storage = storage
        self.smtp = smtp

    @property
    def protocols(self) -> tuple[str, ...]:
        out = ["http", "https", "redis"]
        if self.smtp is not None and self.smtp.host:
            out += sorted(EMAIL_PROTOCOLS)
        if self.storage is not None:
            out.append("store")
        return tuple(out)

    def check(self, owner: str, protocol: str, endpoint: str) -> None:
        if protocol in ("http", "https"):
            self.destinations.check_endpoint(protocol, endpoint)
        elif protocol in EMAIL_PROTOCOLS:
            check_email(endpoint)
        elif protocol == "redis":
            host, port, _, _ = parse_redis(endpoint)
            self.destinations.resolve(host, port)
        elif protocol == "store":
            self.store_location(owner, endpoint)

    def store_location(self, owner: str, endpoint: str) -> Any:
        """The owner's Location of an s3:// prefix. :raises InvalidParameter, AuthorizationError:"""
        from tailrace.errors import StorageError
        from tailrace.storage import AccessDeniedError

        if not endpoint.startswith("s3://"):
            raise InvalidParameter(f"Endpoint: {endpoint[:200]!r} must be an s3://BUCKET/PREFIX/ location")
        try:
            return self.storage.for_owner(owner).resolve(endpoint)
        except AccessDeniedError as exc:
            raise AuthorizationError(f"Endpoint: {exc}")
        except StorageError as exc:
            raise InvalidParameter(f"Endpoint: {exc}")


# --- senders ------------------------------------------------------------------------------------


def email_message(
    row: Mapping[str, Any], payload: dict[str, Any], signer: Signer, sender: str
) -> EmailMessage:
    """The mail SNS would send: for `email` the message text (or the confirmation text with its
    link) and an unsubscribe footer; for `email-json` the signed JSON document."""
    kind = payload["Type"]
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = row["endpoint"]
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(idstring=payload["MessageId"].replace("-", ""))
    mail["X-Amz-Sns-Message-Type"] = kind
    mail["X-Amz-Sns-Message-Id"] = payload["MessageId"]
    mail["X-Amz-Sns-Topic-Arn"] = payload["TopicArn"]
    topic_name = payload["TopicArn"].rsplit(":", 1)[-1]
    if kind == "Notification":
        mail["Subject"] = payload.get("Subject") or "AWS Notification Message"
    elif kind == "SubscriptionConfirmation":
        mail["Subject"] = "AWS Notification - Subscription Confirmation"
    else:
        mail["Subject"] = "AWS Notification - Unsubscribe Confirmation"
    if row["protocol"] == "email-json":
        body, _ = http_request(payload, row["subscription_arn"], signer)
        mail.set_content(body.decode("utf-8"), subtype="plain", charset="utf-8")
        return mail
    base = payload.get("BaseURL", "")
    if kind == "Notification":
        text = (
            f"{payload['Message']}\n\n--\nIf you wish to stop receiving notifications from this topic, "
            "please click or visit the link below to unsubscribe:\n"
            f"{base}/?Action=Unsubscribe&SubscriptionArn={row['subscription_arn']}\n"
        )
    else:
        text = (
            f"You have chosen to subscribe to the topic:\n{payload['TopicArn']}\n\n"
            f"To confirm this subscription, click or visit the link below (If this was in error no "
            f"action is necessary):\n{payload['SubscribeURL']}\n\n"
            f"({topic_name})\n"
        )
    mail.set_content(text, subtype="plain", charset="utf-8")
    return mail


class SmtpSender:
    """email and email-json through the configured SMTP server, one connection per message."""

    def __init__(self, settings: SmtpSettings, signer: Signer) -> None:
        self.settings = settings
        self.signer = signer

    def __call__(self, row: Mapping[str, Any], payload: dict[str, Any]) -> Outcome:
        s = self.settings
        if not s.host:
            return Outcome(delivered=False, retry=False, detail="no [smtp] host is configured")
        mail = email_message(row, payload, self.signer, s.from_address)
        stage = "connect"
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as smtp:
                if s.starttls:
                    stage = "STARTTLS"
                    smtp.starttls()
                if s.user:
                    stage = "login"
                    smtp.login(s.user, s.password or "")
                stage = "send"
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            temporary = all(400 <= c < 500 for c in codes)
            return Outcome(delivered=False, retry=temporary, detail=f"SMTP recipient refused ({codes})")
        except (OSError, smtplib.SMTPException) as exc:
            # Named by stage and code only: a server may echo what was sent (the login).
            code = getattr(exc, "smtp_code", None)
            retry = stage != "send" or code is None or not 500 <= code < 600
            what = "SMTP login refused" if stage == "login" else f"SMTP {stage} failed"
            return Outcome(
                delivered=False,
                retry=retry,
                detail=f"{what}: {type(exc).__name__}" + (f" {code}" if code else ""),
            )
        return Outcome(delivered=True, retry=False, detail="accepted by the SMTP server")


class RedisSender:
    """PUBLISH the signed JSON document (the message itself with RawMessageDelivery) to the
    endpoint's channel, connecting only to the address the destination policy allowed."""

    def __init__(self, destinations: DestinationPolicy, signer: Signer, *, timeout: float = 5.0) -> None:
        self.destinations = destinations
        self.signer = signer
        self.timeout = timeout
        self._clients: dict[tuple[str, int, int], Any] = {}
        self._lock = threading.Lock()

    def _client(self, address: str, port: int, db: int) -> Any:
        import redis

        key = (address, port, db)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                if len(self._clients) > 64:
                    self._clients.clear()
                client = redis.Redis(
                    host=address,
                    port=port,
                    db=db,
                    socket_timeout=self.timeout,
                    socket_connect_timeout=self.timeout,
                )
                self._clients[key] = client
            return client

    def __call__(self, row: Mapping[str, Any], payload: dict[str, Any]) -> Outcome:
        import redis

        try:
            host, port, db, channel = parse_redis(row["endpoint"])
            address = self.destinations.resolve(host, port)
        except (DeliveryRefused, InvalidParameter) as exc:
            return Outcome(delivered=False, retry=False, detail=exc.message)
        body, _ = http_request(payload, row["subscription_arn"], self.signer)
        try:
            receivers = self._client(address, port, db).publish(channel, body)
        except (TimeoutError, redis.RedisError, OSError) as exc:
            return Outcome(delivered=False, retry=True, detail=f"redis: {type(exc).__name__}")
        return Outcome(delivered=True, retry=False, detail=f"published to {receivers} listener(s)")


class StoreSender:
    """One JSON object per message (the signed document) under the subscription's prefix, through
    the owner's view of the store: a bucket taken from the owner since is refused, not written."""

    def __init__(self, rules: EndpointRules, signer: Signer) -> None:
        self.rules = rules
        self.signer = signer

    def __call__(self, row: Mapping[str, Any], payload: dict[str, Any]) -> Outcome:
        try:
            location = self.rules.store_location(row["owner"], row["endpoint"])
        except (InvalidParameter, AuthorizationError) as exc:
            return Outcome(delivered=False, retry=False, detail=exc.message)
        body, _ = http_request(payload, row["subscription_arn"], self.signer)
        document = json.loads(body)
        key = store_key(location.key, payload["Timestamp"], payload["MessageId"])
        try:
            location.store.put(location.bucket, key, json.dumps(document).encode("utf-8"))
        except Exception as exc:  # a local disk or an S3 endpoint: either may be down for a while
            return Outcome(delivered=False, retry=True, detail=f"store: {type(exc).__name__}")
        return Outcome(delivered=True, retry=False, detail=f"s3://{location.bucket}/{key}")


def senders(
    rules: EndpointRules, signer: Signer, smtp: SmtpSettings | None = None
) -> dict[str, ChannelSender]:
    """The non-HTTP senders this installation has, by protocol."""
    out: dict[str, ChannelSender] = {"redis": RedisSender(rules.destinations, signer)}
    if smtp is not None and smtp.host:
        mail = SmtpSender(smtp, signer)
        out["email"] = mail
        out["email-json"] = mail
    if rules.storage is not None:
        out["store"] = StoreSender(rules, signer)
    return out
