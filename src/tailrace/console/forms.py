"""Form bodies (url-encoded and multipart) read with a size limit, without third-party parsers
(the stdlib's email parser reads multipart/form-data). Read once per request and kept in the
scope, so the CSRF check and the page see the same form."""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.requests import Request

FORM_LIMIT = 64 * 1024
"""Bytes of a form without a file."""
_SCOPE = "tailrace.console.form"


class FormTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit:,} bytes")
        self.limit = limit


class BadForm(Exception):
    pass


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)


async def read_form(request: Request, limit: int = FORM_LIMIT) -> Form:
    cached = request.scope.get(_SCOPE)
    if isinstance(cached, Form):
        return cached
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FormTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormTooLarge(limit)
    kind = request.headers.get("content-type", "")
    form = Form()
    if kind.startswith("application/x-www-form-urlencoded"):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise BadForm("the form is not UTF-8")
        for key, value in parse_qsl(text, keep_blank_values=True, max_num_fields=64):
            form.fields.setdefault(key, value)
    elif kind.startswith("multipart/form-data"):
        head = f"Content-Type: {kind}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + bytes(body))
        if not message.is_multipart():
            raise BadForm("the multipart form could not be read")
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            raw = part.get_payload(decode=True)
            payload = raw if isinstance(raw, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                form.files[str(name)] = Upload(filename=str(filename), data=payload)
            else:
                form.fields.setdefault(str(name), payload.decode("utf-8", errors="replace"))
    request.scope[_SCOPE] = form
    return form
