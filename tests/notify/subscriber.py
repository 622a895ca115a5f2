"""An HTTP endpoint written the way real SNS subscribers are: it confirms subscriptions by
fetching SubscribeURL and accepts a message only when its signature verifies against the
certificate downloaded from SigningCertURL. Independent of tailrace's code on purpose: the
string to sign is rebuilt here from SNS's documented field order."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
    "UnsubscribeConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}


def verify(message: dict[str, Any]) -> None:
    """Raise unless the message's Signature verifies with the certificate at SigningCertURL."""
    with urllib.request.urlopen(message["SigningCertURL"], timeout=5) as resp:
        cert = x509.load_pem_x509_certificate(resp.read())
    text = "".join(f"{k}\n{message[k]}\n" for k in SIGNED[message["Type"]] if k in message)
    algorithm = hashes.SHA256() if message["SignatureVersion"] == "2" else hashes.SHA1()
    cert.public_key().verify(  # type: ignore[union-attr,call-arg]
        base64.b64decode(message["Signature"]), text.encode(), padding.PKCS1v15(), algorithm
    )


class Subscriber:
    """Records what it accepted. `fail_next` answers 500 that many times; `status` overrides the
    answer; `hang` holds requests without answering; `redirect_to` answers 302."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.raw: list[tuple[dict[str, str], bytes]] = []
        self.attempts: list[str] = []
        self.rejected: list[str] = []
        self.fail_next = 0
        self.status: int | None = None
        self.hang = 0.0
        self.redirect_to: str | None = None
        self.redirect_hits = 0
        self.lock = threading.Lock()
        sub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # the redirect target: must never be reached
                with sub.lock:
                    sub.redirect_hits += 1
                self.send_response(200)
                self.end_headers()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with sub.lock:
                    sub.attempts.append(headers.get("x-amz-sns-message-id", ""))
                    fail = sub.fail_next > 0
                    sub.fail_next -= 1 if fail else 0
                if sub.hang:
                    time.sleep(sub.hang)
                if sub.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", sub.redirect_to)
                    self.end_headers()
                    return
                if fail or sub.status:
                    self.send_response(sub.status or 500)
                    self.end_headers()
                    return
                if headers.get("x-amz-sns-rawdelivery") == "true":
                    with sub.lock:
                        sub.raw.append((headers, body))
                    self.send_response(200)
                    self.end_headers()
                    return
                message = json.loads(body)
                try:
                    verify(message)
                except InvalidSignature:
                    with sub.lock:
                        sub.rejected.append(message["MessageId"])
                    self.send_response(400)
                    self.end_headers()
                    return
                if message["Type"] == "SubscriptionConfirmation":
                    with urllib.request.urlopen(message["SubscribeURL"], timeout=5) as resp:
                        resp.read()
                with sub.lock:
                    sub.received.append({"headers": headers, "message": message})
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Subscriber:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r["message"] for r in self.received if r["message"]["Type"] == kind]
