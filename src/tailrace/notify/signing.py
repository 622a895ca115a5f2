"""SNS message signatures: the service's RSA key pair and certificate, SNS's string to sign, and
the message bodies and headers of HTTP/S deliveries.

SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA (PKCS #1 v1.5), over `Name\\nValue\\n` pairs
in SNS's order: Notification signs Message, MessageId, Subject (when present), Timestamp, TopicArn,
Type; the two confirmation types sign Message, MessageId, SubscribeURL, Timestamp, Token,
TopicArn, Type. A subscriber checks it with the certificate downloaded from SigningCertURL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii as encode_string
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
CERT_PATH_PREFIX = "/sns/"
USER_AGENT = "Amazon Simple Notification Service Agent"
SIGNATURES_KEPT = 4096
"""Signatures kept for retries (a retried message whose signature was dropped is signed again,
to the same value: PKCS #1 v1.5 is deterministic)."""


def string_to_sign(message: Mapping[str, Any]) -> str:
    fields = NOTIFICATION_FIELDS if message["Type"] == "Notification" else CONFIRMATION_FIELDS
    return "".join(f"{name}\n{message[name]}\n" for name in fields if message.get(name) is not None)


class Signer:
    """The key pair under `directory` (created on first use, key file mode 0600) and its
    self-signed certificate, served at `CERT_PATH_PREFIX + cert_name`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None
        self._cert_pem: bytes | None = None
        self._signatures: dict[tuple[bytes, str], str] = {}
        self._signing: dict[tuple[bytes, str], threading.Event] = {}
        self._cert_name: str | None = None

    @property
    def key_path(self) -> Path:
        return self.directory / "sns-signing-key.pem"

    @property
    def cert_path(self) -> Path:
        return self.directory / "sns-signing-cert.pem"

    def _load(self) -> tuple[rsa.RSAPrivateKey, bytes]:
        with self._lock:
            if self._key is None or self._cert_pem is None:
                self._key, self._cert_pem = self._load_or_create()
            return self._key, self._cert_pem

    def _load_or_create(self) -> tuple[rsa.RSAPrivateKey, bytes]:
        if self.key_path.exists() and self.cert_path.exists():
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            return key, self.cert_path.read_bytes()
        self.directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tailrace notification signing")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Written 0600 from the start and renamed into place, so no reader ever sees a partial key
        # and no other user can read it; two processes racing both write a valid pair, one wins.
        tmp = self.key_path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        ctmp = self.cert_path.with_suffix(f".tmp{os.getpid()}")
        ctmp.write_bytes(cert_pem)
        if self.key_path.exists() and self.cert_path.exists():
            tmp.unlink()
            ctmp.unlink()
            return self._load_or_create()
        os.replace(tmp, self.key_path)
        os.replace(ctmp, self.cert_path)
        return key, cert_pem

    @property
    def cert_pem(self) -> bytes:
        return self._load()[1]

    @property
    def cert_name(self) -> str:
        if self._cert_name is None:  # a hash of the certificate, once (it is in every message)
            self._cert_name = (
                f"SimpleNotificationService-{hashlib.sha256(self.cert_pem).hexdigest()[:32]}.pem"
            )
        return self._cert_name

    def sign(self, text: str, version: str) -> str:
        """The signature of `text`. A message's string to sign covers no subscription, so every
        subscriber's copy carries the same signature: it is computed once (the deliveries of one
        message are sent at the same moment by several threads; the first signs, the others wait
        for it) and kept for the retries."""
        key = (hashlib.sha256(text.encode("utf-8")).digest(), version)
        with self._lock:
            hit = self._signatures.get(key)
            if hit is not None:
                return hit
            pending = self._signing.get(key)
            mine = pending is None
            if pending is None:
                pending = self._signing[key] = threading.Event()
        if not mine:
            pending.wait()
            with self._lock:
                hit = self._signatures.get(key)
            return hit if hit is not None else self._sign(text, version)  # the first one failed
        try:
            signature = self._sign(text, version)
            with self._lock:
                while len(self._signatures) >= SIGNATURES_KEPT:  # oldest first
                    del self._signatures[next(iter(self._signatures))]
                self._signatures[key] = signature
            return signature
        finally:
            with self._lock:
                del self._signing[key]
            pending.set()

    def _sign(self, text: str, version: str) -> str:
        key, _ = self._load()
        algorithm: hashes.HashAlgorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
        return base64.b64encode(key.sign(text.encode("utf-8"), padding.PKCS1v15(), algorithm)).decode()


def http_request(
    payload: dict[str, Any], subscription_arn: str, signer: Signer
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one HTTP/S delivery, as SNS sends them. Built from the stored
    payload, so every try carries the same MessageId, Timestamp and Signature."""
    return assemble(payload, shared_document(payload, signer), subscription_arn)


def shared_document(payload: Mapping[str, Any], signer: Signer) -> tuple[str, str] | None:
    """The JSON document's text around its one per-subscriber field (UnsubscribeURL): what
    every subscriber's copy of the message shares, the signature included; None for raw delivery."""
    kind = payload["Type"]
    if kind == "Notification" and payload.get("Raw"):
        return None
    base = payload.get("BaseURL", "")
    message: dict[str, Any] = {"Type": kind, "MessageId": payload["MessageId"]}
    if kind != "Notification":
        message["Token"] = payload["Token"]
    message["TopicArn"] = payload["TopicArn"]
    if kind == "Notification" and payload.get("Subject") is not None:
        message["Subject"] = payload["Subject"]
    message["Message"] = payload["Message"]
    if kind != "Notification":
        message["SubscribeURL"] = payload["SubscribeURL"]
    message["Timestamp"] = payload["Timestamp"]
    version = str(payload.get("SignatureVersion", "1"))
    message["SignatureVersion"] = version
    message["Signature"] = signer.sign(string_to_sign(message), version)
    message["SigningCertURL"] = f"{base}{CERT_PATH_PREFIX}{signer.cert_name}"
    head = json_document(message)[:-2]  # without "\n}"
    attributes = payload.get("MessageAttributes") if kind == "Notification" else None
    tail = "," + json_document({"MessageAttributes": attributes})[1:-2] if attributes else ""
    return head, tail


def assemble(
    payload: Mapping[str, Any], shared: tuple[str, str] | None, subscription_arn: str
) -> tuple[bytes, dict[str, str]]:
    """One subscriber's body and headers from the shared document."""
    kind = payload["Type"]
    headers = {
        "x-amz-sns-message-type": kind,
        "x-amz-sns-message-id": payload["MessageId"],
        "x-amz-sns-topic-arn": payload["TopicArn"],
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": USER_AGENT,
    }
    if kind == "Notification":
        headers["x-amz-sns-subscription-arn"] = subscription_arn
    if shared is None:
        headers["x-amz-sns-rawdelivery"] = "true"
        return payload["Message"].encode("utf-8"), headers
    head, tail = shared
    if kind == "Notification":
        url = f"{payload.get('BaseURL', '')}/?Action=Unsubscribe&SubscriptionArn={subscription_arn}"
        head = f'{head},\n  "UnsubscribeURL": {encode_string(url)}'
    return f"{head}{tail}\n}}".encode(), headers


class Documents:
    """`http_request` for the delivery loop, by stored payload text: the parsed payload and its
    shared document are kept (bounded) for the other subscribers of the message, which carry the
    same payload text; only their headers and UnsubscribeURL are theirs."""

    def __init__(self, signer: Signer, *, size: int = 1024) -> None:
        self.signer = signer
        self.size = size
        self._kept: dict[str, tuple[dict[str, Any], tuple[str, str] | None]] = {}
        self._lock = threading.Lock()

    def request(self, payload_text: str, subscription_arn: str) -> tuple[bytes, dict[str, str]]:
        hit = self._kept.get(payload_text)
        if hit is None:
            payload = json.loads(payload_text)
            hit = (payload, shared_document(payload, self.signer))
            with self._lock:
                while len(self._kept) >= self.size:  # oldest first
                    del self._kept[next(iter(self._kept))]
                self._kept[payload_text] = hit
        return assemble(hit[0], hit[1], subscription_arn)


def json_document(message: Mapping[str, Any]) -> str:
    """`json.dumps(message, indent=2)`, the layout of SNS's bodies, with the string fields
    escaped by the C encoder (json's indented output is written in Python: slow, per delivery)."""
    fields = [
        f"  {encode_string(key)}: "
        + (
            encode_string(value)
            if isinstance(value, str)
            else json.dumps(value, indent=2).replace("\n", "\n  ")
        )
        for key, value in message.items()
    ]
    return "{\n" + ",\n".join(fields) + "\n}" if fields else "{}"
