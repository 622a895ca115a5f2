"""HTTP delivery policies as SNS defines them: the retry schedule of a delivery, from the topic's
`DeliveryPolicy` (`http.defaultHealthyRetryPolicy`) and the subscription's (`healthyRetryPolicy`)."""

from __future__ import annotations

import json
from typing import Any

from tailrace.notify.errors import InvalidParameter

DEFAULT_RETRY: dict[str, Any] = {
    "minDelayTarget": 20,
    "maxDelayTarget": 20,
    "numRetries": 3,
    "numMaxDelayRetries": 0,
    "numNoDelayRetries": 0,
    "numMinDelayRetries": 0,
    "backoffFunction": "linear",
}
_BACKOFF = ("linear", "arithmetic", "geometric", "exponential")
MAX_RETRIES = 100
MAX_DELAY = 3600


def default_topic_policy() -> dict[str, Any]:
    return {
        "http": {
            "defaultHealthyRetryPolicy": dict(DEFAULT_RETRY),
            "disableSubscriptionOverrides": False,
            "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"},
        }
    }


def _retry_policy(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidParameter(f"{where}: must be a JSON object")
    out = dict(DEFAULT_RETRY)
    for key, value in raw.items():
        if key not in DEFAULT_RETRY:
            raise InvalidParameter(f"{where}: unknown field {key!r}")
        if key == "backoffFunction":
            if value not in _BACKOFF:
                raise InvalidParameter(
                    f"{where}.backoffFunction: {value!r} is not one of {', '.join(_BACKOFF)}"
                )
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidParameter(f"{where}.{key}: {value!r} must be a non-negative integer")
        out[key] = value
    if out["numRetries"] > MAX_RETRIES:
        raise InvalidParameter(f"{where}.numRetries: at most {MAX_RETRIES}")
    if not 1 <= out["minDelayTarget"] <= out["maxDelayTarget"] <= MAX_DELAY:
        raise InvalidParameter(f"{where}: need 1 <= minDelayTarget <= maxDelayTarget <= {MAX_DELAY} seconds")
    fixed = out["numNoDelayRetries"] + out["numMinDelayRetries"] + out["numMaxDelayRetries"]
    if fixed > out["numRetries"]:
        raise InvalidParameter(f"{where}: the no-delay, min-delay and max-delay retries exceed numRetries")
    return out


def parse_topic_policy(text: str) -> dict[str, Any]:
    """A topic's DeliveryPolicy, checked. :raises InvalidParameter:"""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidParameter(f"DeliveryPolicy: not valid JSON ({exc})")
    if not isinstance(data, dict):
        raise InvalidParameter("DeliveryPolicy: must be a JSON object")
    http = data.get("http", {})
    if not isinstance(http, dict):
        raise InvalidParameter("DeliveryPolicy.http: must be a JSON object")
    if "defaultHealthyRetryPolicy" in http:
        _retry_policy(http["defaultHealthyRetryPolicy"], "DeliveryPolicy.http.defaultHealthyRetryPolicy")
    return data


def parse_subscription_policy(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidParameter(f"DeliveryPolicy: not valid JSON ({exc})")
    if not isinstance(data, dict):
        raise InvalidParameter("DeliveryPolicy: must be a JSON object")
    if "healthyRetryPolicy" in data:
        _retry_policy(data["healthyRetryPolicy"], "DeliveryPolicy.healthyRetryPolicy")
    return data


def effective_retry(topic_policy: str | None, subscription_policy: str | None) -> dict[str, Any]:
    """The retry policy a delivery follows: the subscription's unless the topic forbids overrides,
    else the topic's default, else SNS's default."""
    topic = json.loads(topic_policy) if topic_policy else {}
    http = topic.get("http", {}) if isinstance(topic, dict) else {}
    policy = _retry_policy(http.get("defaultHealthyRetryPolicy", {}), "DeliveryPolicy")
    if subscription_policy and not http.get("disableSubscriptionOverrides"):
        sub = json.loads(subscription_policy)
        if isinstance(sub, dict) and "healthyRetryPolicy" in sub:
            policy = _retry_policy(sub["healthyRetryPolicy"], "DeliveryPolicy")
    return policy


def retry_delay(policy: dict[str, Any], retry: int) -> float | None:
    """Seconds to wait before retry number `retry` (1-based), or None when no retries are left.

    Phases in order: immediate retries, retries at the minimum delay, the backoff phase from the
    minimum to the maximum delay, retries at the maximum delay.
    """
    total = policy["numRetries"]
    if retry < 1 or retry > total:
        return None
    no_delay, at_min, at_max = (
        policy["numNoDelayRetries"],
        policy["numMinDelayRetries"],
        policy["numMaxDelayRetries"],
    )
    low, high = float(policy["minDelayTarget"]), float(policy["maxDelayTarget"])
    if retry <= no_delay:
        return 0.0
    if retry <= no_delay + at_min:
        return low
    backoff = total - no_delay - at_min - at_max
    step = retry - no_delay - at_min
    if step > backoff:
        return high
    if backoff <= 1 or high == low:
        return high if backoff == 1 else low
    frac = step / backoff
    fn = policy["backoffFunction"]
    if fn == "linear":
        return low + (high - low) * frac
    if fn == "arithmetic":
        return low + (high - low) * frac * frac
    return low * (high / low) ** frac  # geometric and exponential: a constant ratio per step
