"""ARNs as SNS writes them: `arn:aws:sns:REGION:ACCOUNT:NAME` and, for a subscription,
`...:NAME:UUID`. Each owner gets a stable 12-digit account number of its own."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from tailrace.notify.errors import InvalidParameter

DEFAULT_REGION = "us-east-1"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}|[a-z0-9-]{1,32}")


def account_for(owner: str) -> str:
    """A 12-digit account id derived from the owner (stable across processes and restarts)."""
    digest = hashlib.sha256(f"tailrace-account:{owner}".encode()).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**12:012d}"


def check_topic_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidParameter(
            f"Topic Name {name!r}: topic names must be 1-256 characters from letters, digits, - and _"
        )
    return name


def check_region(region: str) -> str:
    if not _REGION.fullmatch(region):
        return DEFAULT_REGION
    return region


def topic_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sns:{region}:{account}:{name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str
    sub: str | None = None
    """The subscription id when the ARN names a subscription."""

    @property
    def topic(self) -> str:
        return f"arn:aws:{self.service}:{self.region}:{self.account}:{self.resource}"


def parse_arn(text: str, *, what: str = "TopicArn", service: str = "sns") -> Arn:
    """:raises InvalidParameter: for anything that is not an ARN of `service`."""
    parts = text.split(":")
    if len(parts) not in (6, 7) or parts[0] != "arn" or parts[1] != "aws" or parts[2] != service:
        raise InvalidParameter(f"{what}: {text[:300]!r} is not an arn:aws:{service}:REGION:ACCOUNT:NAME ARN")
    region, account, resource = parts[3], parts[4], parts[5]
    if not (account.isdigit() and len(account) == 12) or not region or not resource:
        raise InvalidParameter(f"{what}: {text[:300]!r} has no valid region, 12-digit account or name")
    return Arn(
        service=service,
        region=region,
        account=account,
        resource=resource,
        sub=parts[6] if len(parts) == 7 else None,
    )
