"""Entry point (root): wires the CLI to the composition root in services.py."""

from __future__ import annotations

import sys

from tailrace.cli.main import run
from tailrace.services import build_services


def main() -> None:
    sys.exit(run(sys.argv[1:], build_services))


if __name__ == "__main__":
    main()
