"""The composition root: the one place that reads Settings and builds concrete backends.

Everything else receives what it needs as arguments. Members are built lazily, so a command
pays only for what it uses.
"""

from __future__ import annotations

import functools
from typing import Any

from tailrace.config import Settings
from tailrace.storage import Storage


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._closers: list[Any] = []

    @functools.cached_property
    def storage(self) -> Storage:
        s = self.settings
        s.home.mkdir(parents=True, exist_ok=True)
        s3 = None
        if s.s3_endpoint_url:
            from tailrace.storage.s3 import S3Store

            s3 = S3Store(
                endpoint_url=s.s3_endpoint_url,
                region=s.s3_region,
                access_key_id=s.aws_access_key_id,
                secret_access_key=s.aws_secret_access_key,
            )
        return Storage(home=s.home, s3=s3)

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:  # closing must not mask the command's own outcome
                pass


def build_services(settings: Settings) -> Services:
    return Services(settings)
