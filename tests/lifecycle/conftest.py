"""The `world` fixture: the S3 endpoint over a fresh embedded store (see s3_helpers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .s3_helpers import World, serve_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from serve_world(tmp_path)
