"""Where the published AWS Data Pipeline samples are: `../shared/compat/dp-samples` next to the
repository (the team's workspace), or TAILRACE_COMPAT_DIR. They are reference data kept outside
the repository, so a clone elsewhere skips the tests that need them and says why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPAT = Path(os.environ.get("TAILRACE_COMPAT_DIR", REPO.parent / "shared" / "compat"))
SAMPLES = COMPAT / "dp-samples"


def require_samples() -> None:
    """Skip the calling test module when the samples are not there."""
    if not (SAMPLES / "INDEX.md").is_file():
        pytest.skip(
            f"the AWS sample definitions are not at {SAMPLES} (set TAILRACE_COMPAT_DIR to the compat folder)",
            allow_module_level=True,
        )
