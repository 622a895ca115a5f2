"""S3 lifecycle configurations, pure: parse (JSON as `aws s3api` takes it; XML and the JSON form
printed are in wire.py), validate with S3's error codes, and decide which action is due for one object at one moment.

No I/O here. Every error names the rule (index and ID) and the field.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tailrace.errors import TailraceError

# S3's transition waterfall, warmest first: an object only ever moves to the right.
STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
    "ONEZONE_IA",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
)
TRANSITION_CLASSES = frozenset(STORAGE_CLASSES[1:])
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
"""Classes whose objects cannot be read until restored (S3 answers InvalidObjectState)."""
_IA_CLASSES = frozenset({"STANDARD_IA", "ONEZONE_IA"})
IA_MIN_DAYS = 30
SMALL_OBJECT_BYTES = 128 * 1024
MIN_SIZE_ALL = "all_storage_classes_128K"
MIN_SIZE_VARIES = "varies_by_storage_class"
MAX_RULES = 1000
MAX_ID_LENGTH = 255
NONCURRENT_FIELDS = (
    "NoncurrentVersionTransitions",
    "NoncurrentVersionTransition",
    "NoncurrentVersionExpiration",
)


def class_rank(storage_class: str) -> int:
    """Position in the waterfall (STANDARD is 0); unknown classes count as STANDARD."""
    try:
        return STORAGE_CLASSES.index(storage_class)
    except ValueError:
        return 0


class LifecycleError(TailraceError):
    """A lifecycle configuration S3 would refuse; `code` is S3's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.detail = message


@dataclass(frozen=True)
class Filter:
    """Every condition must hold; an empty filter matches every object."""

    prefix: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    size_greater_than: int | None = None
    size_less_than: int | None = None
    shape: Literal["filter", "legacy-prefix", "and"] = "filter"

    def matches(self, key: str, size: int, tags: Mapping[str, str]) -> bool:
        if not key.startswith(self.prefix):
            return False
        if any(tags.get(k) != v for k, v in self.tags):
            return False
        if self.size_greater_than is not None and not size > self.size_greater_than:
            return False
        return self.size_less_than is None or size < self.size_less_than

    @property
    def has_size(self) -> bool:
        return self.size_greater_than is not None or self.size_less_than is not None


@dataclass(frozen=True)
class Transition:
    storage_class: str
    days: int | None = None
    date: datetime | None = None


@dataclass(frozen=True)
class Expiration:
    days: int | None = None
    date: datetime | None = None
    expired_object_delete_marker: bool = False
    """Accepted and without effect: the store keeps no versions, so there are no delete markers."""


@dataclass(frozen=True)
class Rule:
    id: str
    enabled: bool
    filter: Filter
    transitions: tuple[Transition, ...] = ()
    expiration: Expiration | None = None
    abort_multipart_days: int | None = None


@dataclass(frozen=True)
class LifecycleConfiguration:
    rules: tuple[Rule, ...]
    transition_default_minimum_object_size: str = MIN_SIZE_ALL
    """S3's header x-amz-transition-default-minimum-object-size; its default since 2024."""


@dataclass(frozen=True)
class ObjectMeta:
    key: str
    size: int
    created: datetime
    storage_class: str = "STANDARD"
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DueAction:
    kind: Literal["expire", "transition"]
    rule_id: str
    storage_class: str | None = None
    """The target class of a transition."""
    due: datetime | None = None
    """The midnight from which the action applies."""


# --- day counting -----------------------------------------------------------------------------


def _midnight(moment: datetime) -> datetime:
    m = moment.astimezone(UTC)
    return datetime(m.year, m.month, m.day, tzinfo=UTC)


def due_after_days(created: datetime, days: int) -> datetime:
    """S3 adds the days to the creation time and rounds up to the following 00:00 UTC."""
    return _midnight(created + timedelta(days=days)) + timedelta(days=1)


def _due(created: datetime, days: int | None, date: datetime | None) -> datetime:
    if date is not None:
        return date
    assert days is not None
    return due_after_days(created, days)


# --- deciding ---------------------------------------------------------------------------------


def _transition_allowed(cfg: LifecycleConfiguration, rule: Rule, obj: ObjectMeta, target: str) -> bool:
    if class_rank(target) <= class_rank(obj.storage_class):
        return False  # never back up the waterfall, never to the class it already has
    if obj.size >= SMALL_OBJECT_BYTES or rule.filter.has_size:
        return True  # an explicit size filter overrides the default minimum
    if cfg.transition_default_minimum_object_size == MIN_SIZE_VARIES:
        return target in ARCHIVE_CLASSES
    return False


def due_actions(
    rules: LifecycleConfiguration | tuple[Rule, ...] | list[Rule], obj: ObjectMeta, now: datetime
) -> tuple[DueAction, ...]:
    """The one action due for obj at now (empty when none): expiration beats any transition,
    and among transitions the coldest class wins. Disabled rules never apply."""
    cfg = rules if isinstance(rules, LifecycleConfiguration) else LifecycleConfiguration(tuple(rules))
    now = now.astimezone(UTC)
    expire: DueAction | None = None
    best: DueAction | None = None
    for rule in cfg.rules:
        if not rule.enabled or not rule.filter.matches(obj.key, obj.size, obj.tags):
            continue
        exp = rule.expiration
        if exp is not None and (exp.days is not None or exp.date is not None):
            when = _due(obj.created, exp.days, exp.date)
            if now >= when and (expire is None or when < (expire.due or when)):
                expire = DueAction("expire", rule.id, None, when)
        for tr in rule.transitions:
            when = _due(obj.created, tr.days, tr.date)
            if now < when or not _transition_allowed(cfg, rule, obj, tr.storage_class):
                continue
            if best is None or class_rank(tr.storage_class) > class_rank(best.storage_class or ""):
                best = DueAction("transition", rule.id, tr.storage_class, when)
    if expire is not None:
        return (expire,)
    return (best,) if best is not None else ()


def young_cutoff(cfg: LifecycleConfiguration, now: datetime) -> datetime | None:
    """Objects created at or after this moment have nothing due at `now`, whatever their key, so
    a scan need not evaluate them: a Days action is due strictly after creation + Days. None when
    no such moment exists (a Date action already reached applies to objects of any age)."""
    now = now.astimezone(UTC)
    days: list[int] = []
    for rule in cfg.rules:
        if not rule.enabled:
            continue
        exp = rule.expiration
        actions = [*((t.days, t.date) for t in rule.transitions), *([(exp.days, exp.date)] if exp else [])]
        for n, date in actions:
            if date is not None and date <= now:
                return None
            if n is not None:
                days.append(n)
    if not days:
        return datetime.min.replace(tzinfo=UTC)  # nothing can be due at now
    return now - timedelta(days=min(days))


def abort_due(cfg: LifecycleConfiguration, key: str, initiated: datetime, now: datetime) -> DueAction | None:
    """The rule that aborts an incomplete multipart upload of key started at initiated, if due."""
    for rule in cfg.rules:
        if not rule.enabled or rule.abort_multipart_days is None or not key.startswith(rule.filter.prefix):
            continue
        when = due_after_days(initiated, rule.abort_multipart_days)
        if now >= when:
            return DueAction("expire", rule.id, None, when)
    return None


# --- parsing and validation -------------------------------------------------------------------


def _where(index: int, rule_id: str | None) -> str:
    return f"Rule[{index}]" + (f" (ID {rule_id!r})" if rule_id else "")


def _int(value: Any, where: str, name: str) -> int:
    if isinstance(value, bool):
        raise LifecycleError("MalformedXML", f"{where}: {name} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise LifecycleError("MalformedXML", f"{where}: {name} must be an integer, got {value!r}")


def _date(value: Any, where: str, name: str) -> datetime:
    if isinstance(value, datetime):
        d = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        text = str(value).strip()
        try:
            d = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise LifecycleError("MalformedXML", f"{where}: {name} {text!r} is not an ISO 8601 date")
        if d.tzinfo is None:
            d = d.replace(tzinfo=UTC)
    d = d.astimezone(UTC)
    if d != _midnight(d):
        raise LifecycleError("InvalidArgument", f"{where}: {name} {value!s} must be at midnight UTC")
    return d


def _keys(obj: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise LifecycleError("MalformedXML", f"{where}: expected an object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise LifecycleError("MalformedXML", f"{where}: unknown field {unknown[0]!r}")
    return obj


def _tag(obj: Any, where: str) -> tuple[str, str]:
    t = _keys(obj, where, {"Key", "Value"})
    if "Key" not in t:
        raise LifecycleError("MalformedXML", f"{where}: a Tag needs a Key")
    return str(t["Key"]), str(t.get("Value", ""))


def _size(value: Any, where: str, name: str) -> int:
    n = _int(value, where, name)
    if n < 0:
        raise LifecycleError("InvalidArgument", f"{where}: {name} must be a non-negative integer")
    return n


def _filter(raw: Any, where: str) -> Filter:
    f = _keys(raw, f"{where} Filter", {"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And"})
    if len(f) > 1:
        raise LifecycleError(
            "MalformedXML", f"{where} Filter: give one of {', '.join(sorted(f))}, or combine them in And"
        )
    if "And" in f:
        a = _keys(
            f["And"],
            f"{where} Filter.And",
            {"Prefix", "Tags", "ObjectSizeGreaterThan", "ObjectSizeLessThan"},
        )
        tags = tuple(_tag(t, f"{where} Filter.And.Tags[{i}]") for i, t in enumerate(a.get("Tags") or []))
        if len({k for k, _ in tags}) != len(tags):
            raise LifecycleError("InvalidRequest", f"{where} Filter.And.Tags: duplicate tag keys")
        flt = Filter(
            prefix=str(a.get("Prefix") or ""),
            tags=tags,
            size_greater_than=_size(a["ObjectSizeGreaterThan"], where, "Filter.And.ObjectSizeGreaterThan")
            if "ObjectSizeGreaterThan" in a
            else None,
            size_less_than=_size(a["ObjectSizeLessThan"], where, "Filter.And.ObjectSizeLessThan")
            if "ObjectSizeLessThan" in a
            else None,
            shape="and",
        )
    else:
        flt = Filter(
            prefix=str(f.get("Prefix") or ""),
            tags=(_tag(f["Tag"], f"{where} Filter.Tag"),) if "Tag" in f else (),
            size_greater_than=_size(f["ObjectSizeGreaterThan"], where, "Filter.ObjectSizeGreaterThan")
            if "ObjectSizeGreaterThan" in f
            else None,
            size_less_than=_size(f["ObjectSizeLessThan"], where, "Filter.ObjectSizeLessThan")
            if "ObjectSizeLessThan" in f
            else None,
        )
    gt, lt = flt.size_greater_than, flt.size_less_than
    if gt is not None and lt is not None and not gt < lt:
        raise LifecycleError(
            "InvalidRequest",
            f"{where} Filter: ObjectSizeGreaterThan ({gt}) must be less than ObjectSizeLessThan ({lt})",
        )
    return flt


def _transition(raw: Any, where: str) -> Transition:
    t = _keys(raw, where, {"Days", "Date", "StorageClass"})
    cls = t.get("StorageClass")
    if cls not in TRANSITION_CLASSES:
        raise LifecycleError(
            "MalformedXML",
            f"{where}.StorageClass: {cls!r} is not one of {', '.join(sorted(TRANSITION_CLASSES))}",
        )
    if ("Days" in t) == ("Date" in t):
        raise LifecycleError("MalformedXML", f"{where}: give exactly one of Days or Date")
    if "Date" in t:
        return Transition(cls, date=_date(t["Date"], where, "Date"))
    days = _int(t["Days"], where, "Days")
    if days < 0:
        raise LifecycleError("InvalidArgument", f"{where}.Days: must be 0 or a positive integer, got {days}")
    if cls in _IA_CLASSES and days < IA_MIN_DAYS:
        raise LifecycleError(
            "InvalidArgument",
            f"{where}.Days: must be at least {IA_MIN_DAYS} for StorageClass {cls}, got {days}",
        )
    return Transition(cls, days=days)


def _expiration(raw: Any, where: str) -> Expiration:
    e = _keys(raw, where, {"Days", "Date", "ExpiredObjectDeleteMarker"})
    if sum(k in e for k in ("Days", "Date", "ExpiredObjectDeleteMarker")) != 1:
        raise LifecycleError(
            "MalformedXML", f"{where}: give exactly one of Days, Date or ExpiredObjectDeleteMarker"
        )
    if "Date" in e:
        return Expiration(date=_date(e["Date"], where, "Date"))
    if "Days" in e:
        days = _int(e["Days"], where, "Days")
        if days <= 0:
            raise LifecycleError("InvalidArgument", f"{where}.Days: must be a positive integer, got {days}")
        return Expiration(days=days)
    flag = e["ExpiredObjectDeleteMarker"]
    return Expiration(expired_object_delete_marker=flag is True or str(flag).lower() == "true")


_RULE_FIELDS = {
    "ID",
    "Status",
    "Filter",
    "Prefix",
    "Transitions",
    "Transition",
    "Expiration",
    "AbortIncompleteMultipartUpload",
    *NONCURRENT_FIELDS,
}


def _rule(raw: Any, index: int) -> Rule:
    rid = raw.get("ID") if isinstance(raw, Mapping) else None
    where = _where(index, rid)
    r = _keys(raw, where, _RULE_FIELDS)
    if rid is not None and len(str(rid)) > MAX_ID_LENGTH:
        raise LifecycleError("InvalidArgument", f"{where}.ID: longer than {MAX_ID_LENGTH} characters")
    status = r.get("Status")
    if status not in ("Enabled", "Disabled"):
        raise LifecycleError("MalformedXML", f"{where}.Status: must be Enabled or Disabled, got {status!r}")
    for name in NONCURRENT_FIELDS:
        if name in r:
            # A shape S3's schema refuses is MalformedXML first (as S3 and moto answer), then
            # the action itself is refused.
            items = r[name] if isinstance(r[name], list) else [r[name]]
            need = ("NoncurrentDays",) if name.endswith("Expiration") else ("NoncurrentDays", "StorageClass")
            for item in items:
                if not isinstance(item, Mapping) or any(item.get(k) in (None, "") for k in need):
                    raise LifecycleError("MalformedXML", f"{where}.{name}: needs {' and '.join(need)}")
            raise LifecycleError(
                "InvalidRequest",
                f"{where}.{name}: not supported: the store keeps no object versions, so there are "
                "no noncurrent versions to act on",
            )
    if ("Filter" in r) == ("Prefix" in r):
        raise LifecycleError("MalformedXML", f"{where}: give exactly one of Filter or the legacy Prefix")
    flt = (
        _filter(r["Filter"], where)
        if "Filter" in r
        else Filter(str(r["Prefix"] or ""), shape="legacy-prefix")
    )
    raw_tr = list(r.get("Transitions") or []) + ([r["Transition"]] if "Transition" in r else [])
    transitions = tuple(_transition(t, f"{where}.Transitions[{i}]") for i, t in enumerate(raw_tr))
    expiration = _expiration(r["Expiration"], f"{where}.Expiration") if "Expiration" in r else None
    abort = None
    if "AbortIncompleteMultipartUpload" in r:
        a = _keys(
            r["AbortIncompleteMultipartUpload"],
            f"{where}.AbortIncompleteMultipartUpload",
            {"DaysAfterInitiation"},
        )
        abort = _int(
            a.get("DaysAfterInitiation"), where, "AbortIncompleteMultipartUpload.DaysAfterInitiation"
        )
        if abort <= 0:
            raise LifecycleError(
                "InvalidArgument",
                f"{where}.AbortIncompleteMultipartUpload.DaysAfterInitiation: must be a positive integer",
            )
        if flt.tags or flt.has_size:
            raise LifecycleError(
                "InvalidRequest",
                f"{where}.AbortIncompleteMultipartUpload: cannot be used with a Tag or object size filter",
            )
    if not transitions and expiration is None and abort is None:
        raise LifecycleError("InvalidRequest", f"{where}: at least one action needs to be specified")
    rule = Rule(str(rid or ""), status == "Enabled", flt, transitions, expiration, abort)
    _check_order(rule, where)
    return rule


def _check_order(rule: Rule, where: str) -> None:
    """Transitions within a rule go down the waterfall over time, and expiration comes last."""
    kinds = {t.days is None for t in rule.transitions}
    exp = rule.expiration
    if exp is not None and (exp.days is not None or exp.date is not None):
        kinds.add(exp.days is None)
    if len(kinds) > 1:
        raise LifecycleError(
            "InvalidRequest", f"{where}: mixes Date and Days based Transition and Expiration actions"
        )
    seen: set[str] = set()
    for t in rule.transitions:
        if t.storage_class in seen:
            raise LifecycleError(
                "InvalidArgument",
                f"{where}.Transitions: StorageClass {t.storage_class} appears more than once",
            )
        seen.add(t.storage_class)

    def when(days: int | None, date: datetime | None) -> float:
        return (
            float(days)
            if days is not None
            else (date or datetime.min.replace(tzinfo=UTC)).timestamp() / 86400
        )

    ordered = sorted(rule.transitions, key=lambda t: class_rank(t.storage_class))
    for warmer, colder in itertools.pairwise(ordered):
        gap = IA_MIN_DAYS if warmer.storage_class in _IA_CLASSES else 1
        if when(colder.days, colder.date) - when(warmer.days, warmer.date) < gap:
            raise LifecycleError(
                "InvalidArgument",
                f"{where}.Transitions: the transition to {colder.storage_class} must come at least {gap} "
                f"day(s) after the transition to {warmer.storage_class}",
            )
    if exp is not None and (exp.days is not None or exp.date is not None):
        for t in rule.transitions:
            if when(exp.days, exp.date) <= when(t.days, t.date):
                raise LifecycleError(
                    "InvalidArgument",
                    f"{where}.Expiration: must come after the transition to {t.storage_class} "
                    "(Expiration Days/Date greater than the Transition's)",
                )


def parse_configuration(raw: Any, *, minimum_object_size: str | None = None) -> LifecycleConfiguration:
    """The JSON shape `aws s3api put-bucket-lifecycle-configuration --lifecycle-configuration` takes
    (a mapping with "Rules"). :raises LifecycleError: with S3's code, naming the rule and field."""
    top = _keys(raw, "LifecycleConfiguration", {"Rules"})
    rules_raw = top.get("Rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise LifecycleError("MalformedXML", "LifecycleConfiguration: Rules must be a non-empty list")
    if len(rules_raw) > MAX_RULES:
        raise LifecycleError("InvalidRequest", f"LifecycleConfiguration: more than {MAX_RULES} rules")
    rules = tuple(_rule(r, i) for i, r in enumerate(rules_raw))
    ids = [r.id for r in rules if r.id]
    for i, r in enumerate(rules):
        if r.id and ids.count(r.id) > 1:
            raise LifecycleError("InvalidArgument", f"{_where(i, r.id)}.ID: rule IDs must be unique")
    size = minimum_object_size or MIN_SIZE_ALL
    if size not in (MIN_SIZE_ALL, MIN_SIZE_VARIES):
        raise LifecycleError(
            "InvalidRequest",
            f"TransitionDefaultMinimumObjectSize: must be {MIN_SIZE_ALL} or {MIN_SIZE_VARIES}",
        )
    # S3 names rules without an ID itself; do the same so every error and report can name them.
    named = tuple(r if r.id else _with_id(r, f"rule-{i + 1}") for i, r in enumerate(rules))
    return LifecycleConfiguration(named, size)


def _with_id(rule: Rule, rid: str) -> Rule:
    return Rule(rid, rule.enabled, rule.filter, rule.transitions, rule.expiration, rule.abort_multipart_days)
