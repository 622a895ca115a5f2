"""S3's XML: error documents and the small response builders."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from tailrace.errors import TailraceError

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


class S3Error(TailraceError):
    def __init__(self, code: str, message: str, status: int = 400, resource: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.resource = resource

    def body(self, request_id: str) -> bytes:
        root = ET.Element("Error")
        for name, value in (
            ("Code", self.code),
            ("Message", self.message),
            ("Resource", self.resource),
            ("RequestId", request_id),
        ):
            ET.SubElement(root, name).text = value
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def http_date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def document(root_name: str, fill: list[tuple[str, Any]]) -> bytes:
    """<root_name xmlns=S3>...</root_name>; values are text, nested lists of pairs, or None (skip)."""
    root = ET.Element(root_name, xmlns=NS)
    _fill(root, fill)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _fill(parent: ET.Element, items: list[tuple[str, Any]]) -> None:
    for name, value in items:
        if value is None:
            continue
        el = ET.SubElement(parent, name)
        if isinstance(value, list):
            _fill(el, value)
        elif isinstance(value, bool):
            el.text = "true" if value else "false"
        else:
            el.text = str(value)


def parse(body: bytes, root_name: str) -> ET.Element:
    text = body.decode("utf-8", "replace")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise S3Error("MalformedXML", "document type declarations are not allowed")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise S3Error("MalformedXML", f"the XML is not well-formed: {exc}")
    if root.tag.rsplit("}", 1)[-1] != root_name:
        raise S3Error("MalformedXML", f"expected <{root_name}>")
    return root


def children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if c.tag.rsplit("}", 1)[-1] == name]


def text(el: ET.Element, name: str) -> str | None:
    found = children(el, name)
    return (found[0].text or "") if found else None
