"""Shared by the notify tests: engines on SQLite and PostgreSQL, the API served over HTTP, and
unchanged boto3 `sns` clients signed with tailrace keys."""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.config import Config

from tailrace.state.engine import create_engine
from tailrace.state.testing import postgres_available, temporary_schema

PG_URL = os.environ.get("TAILRACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def engine_for(kind: str, tmp_path):
    """A context manager giving an engine on SQLite or a throw-away PostgreSQL schema."""
    from contextlib import contextmanager

    @contextmanager
    def make():
        if kind == "sqlite":
            engine = create_engine(f"sqlite:///{tmp_path}/notify.db")
            yield engine
            engine.dispose()
            return
        reason = postgres_available(PG_URL)
        if reason:
            pytest.skip(f"PostgreSQL at {PG_URL} is not reachable ({reason})")
        with temporary_schema(PG_URL) as url:
            engine = create_engine(url)
            yield engine
            engine.dispose()

    return make()


def sns_client(url: str, key=None, *, secret: str | None = None, region: str = "us-east-1"):
    return boto3.client(
        "sns",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key.access_key_id if key else "NOKEY",
        aws_secret_access_key=secret or (key.secret_access_key if key else "nosecret"),
        config=Config(retries={"max_attempts": 1}),
    )
