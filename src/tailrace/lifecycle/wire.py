"""The lifecycle configuration's wire forms: S3's XML (received by PutBucketLifecycleConfiguration,
returned by Get...) and the JSON `aws s3api get-bucket-lifecycle-configuration` prints. Pure."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from tailrace.lifecycle.rules import (
    NONCURRENT_FIELDS,
    LifecycleConfiguration,
    LifecycleError,
    parse_configuration,
)

# --- XML --------------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_LISTS = {"Rule", "Transition", "Tag", *NONCURRENT_FIELDS}


def _xml_to_dict(el: ET.Element) -> Any:
    children = list(el)
    if not children:
        return (el.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        name = _local(child.tag)
        value = _xml_to_dict(child)
        if name == "Tag" and _local(el.tag) == "And":
            out.setdefault("Tags", []).append(value)
        elif name == "Transition":
            out.setdefault("Transitions", []).append(value)
        elif name == "Rule":
            out.setdefault("Rules", []).append(value)
        elif name in out:
            raise LifecycleError("MalformedXML", f"<{_local(el.tag)}>: <{name}> given twice")
        else:
            out[name] = value
    return out


def parse_xml(body: bytes | str, *, minimum_object_size: str | None = None) -> LifecycleConfiguration:
    """The XML body of PutBucketLifecycleConfiguration."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise LifecycleError("MalformedXML", "document type declarations are not allowed")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise LifecycleError("MalformedXML", f"not well-formed XML: {exc}")
    if _local(root.tag) != "LifecycleConfiguration":
        raise LifecycleError(
            "MalformedXML", f"root element is <{_local(root.tag)}>, not <LifecycleConfiguration>"
        )
    raw = _xml_to_dict(root)
    if not isinstance(raw, dict):
        raw = {}
    for rule in raw.get("Rules", []):
        if isinstance(rule, dict) and isinstance(rule.get("Filter"), str):
            rule["Filter"] = {}  # <Filter/> or <Filter></Filter>: matches everything
    return parse_configuration(raw, minimum_object_size=minimum_object_size)


def _iso(d: datetime) -> str:
    return d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def to_json(cfg: LifecycleConfiguration) -> dict[str, Any]:
    """The JSON shape again (what get-bucket-lifecycle-configuration prints)."""
    rules: list[dict[str, Any]] = []
    for r in cfg.rules:
        out: dict[str, Any] = {"ID": r.id}
        f = r.filter
        if f.shape == "legacy-prefix":
            out["Prefix"] = f.prefix
        elif f.shape == "and":
            a: dict[str, Any] = {}
            if f.prefix:
                a["Prefix"] = f.prefix
            if f.tags:
                a["Tags"] = [{"Key": k, "Value": v} for k, v in f.tags]
            if f.size_greater_than is not None:
                a["ObjectSizeGreaterThan"] = f.size_greater_than
            if f.size_less_than is not None:
                a["ObjectSizeLessThan"] = f.size_less_than
            out["Filter"] = {"And": a}
        elif f.tags:
            out["Filter"] = {"Tag": {"Key": f.tags[0][0], "Value": f.tags[0][1]}}
        elif f.size_greater_than is not None:
            out["Filter"] = {"ObjectSizeGreaterThan": f.size_greater_than}
        elif f.size_less_than is not None:
            out["Filter"] = {"ObjectSizeLessThan": f.size_less_than}
        else:
            out["Filter"] = {"Prefix": f.prefix} if f.prefix else {}
        out["Status"] = "Enabled" if r.enabled else "Disabled"
        if r.transitions:
            out["Transitions"] = [
                {"Days": t.days, "StorageClass": t.storage_class}
                if t.days is not None
                else {"Date": _iso(t.date or datetime.min), "StorageClass": t.storage_class}
                for t in r.transitions
            ]
        e = r.expiration
        if e is not None:
            if e.days is not None:
                out["Expiration"] = {"Days": e.days}
            elif e.date is not None:
                out["Expiration"] = {"Date": _iso(e.date)}
            else:
                out["Expiration"] = {"ExpiredObjectDeleteMarker": e.expired_object_delete_marker}
        if r.abort_multipart_days is not None:
            out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": r.abort_multipart_days}
        rules.append(out)
    return {"Rules": rules}


def to_xml(cfg: LifecycleConfiguration) -> bytes:
    """The XML body GetBucketLifecycleConfiguration answers with."""
    ns = "http://s3.amazonaws.com/doc/2006-03-01/"
    root = ET.Element("LifecycleConfiguration", xmlns=ns)

    def add(parent: ET.Element, name: str, value: Any) -> None:
        if isinstance(value, dict):
            el = ET.SubElement(parent, name)
            for k, v in value.items():
                if isinstance(v, list):
                    child = "Tag" if k == "Tags" else "Transition"
                    for item in v:
                        add(el, child, item)
                else:
                    add(el, k, v)
        else:
            ET.SubElement(parent, name).text = str(value).lower() if isinstance(value, bool) else str(value)

    for rule in to_json(cfg)["Rules"]:
        add(root, "Rule", rule)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
