"""Entry point (root): wires the CLI to the composition root in services.py."""

from __future__ import annotations

import gc
import sys

from tailrace.cli.main import run
from tailrace.services import build_services


def main() -> None:
    code = run(sys.argv[1:], build_services)
    # The process ends here. Frozen, the objects of every loaded module are left to the OS: the
    # interpreter's teardown would otherwise collect them one by one (0.1-0.3 s after a
    # `tailrace hive` that loaded DuckDB, sqlglot and SQLAlchemy). atexit handlers still run.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    main()
