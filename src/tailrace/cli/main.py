"""Argument parsing and dispatch. Every module in cli/commands/ that defines
`register(subparsers)` adds its subcommands; each subcommand sets `func(args, ctx) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailrace import __version__
from tailrace.errors import TailraceError

if TYPE_CHECKING:
    from tailrace.config import Settings

# Flags shared by every command that touches the data directory or the service.
GLOBAL_SETTINGS = ("home", "database_url", "s3_endpoint_url")


class Context:
    """What a command gets besides its arguments: settings, and services built on demand.

    A plain class rather than a dataclass: `dataclasses` (with `inspect`) is a measurable part of
    the CLI's start-up, and this is the only place on the `--help` path that would need it.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        build_services: Callable[[Settings], Any],
        _settings: Settings | None = None,
        _services: Any = None,
    ) -> None:
        self.args = args
        self.build_services = build_services
        self._settings = _settings
        self._services = _services

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from tailrace.config import load_settings

            overrides = {k: getattr(self.args, k, None) for k in GLOBAL_SETTINGS}
            overrides.update(getattr(self.args, "setting_overrides", {}) or {})
            config = getattr(self.args, "config", None)
            self._settings = load_settings(config_file=Path(config) if config else None, overrides=overrides)
        return self._settings

    @property
    def services(self) -> Any:
        if self._services is None:
            self._services = self.build_services(self.settings)
        return self._services

    def close(self) -> None:
        if self._services is not None and hasattr(self._services, "close"):
            self._services.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tailrace",
        description="Self-hosted pipeline service for web logs: AWS Data Pipeline definitions and Hive "
        "scripts, run unchanged on embedded defaults or on PostgreSQL, Redis, S3 and Spark.",
    )
    parser.add_argument("--version", action="version", version=f"tailrace {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="on an internal error, print the Python traceback"
    )
    parser.add_argument("--config", metavar="FILE", help="config file (default ./tailrace.toml if present)")
    parser.add_argument(
        "--home", metavar="DIR", help="data directory (env TAILRACE_HOME, default ./.tailrace)"
    )
    parser.add_argument(
        "--database-url", metavar="URL", help="metadata store URL (env TAILRACE_DATABASE_URL)"
    )
    parser.add_argument(
        "--s3-endpoint-url", metavar="URL", help="S3 endpoint for s3:// URIs (env TAILRACE_S3_ENDPOINT_URL)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from tailrace.cli import commands

    for name in _module_names(list(commands.__path__)):
        module = importlib.import_module(f"tailrace.cli.commands.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def _module_names(path: list[str]) -> list[str]:
    """The command modules (plain .py files), sorted. Listed directly: pkgutil.iter_modules
    imports `inspect`, a tenth of the start-up of `tailrace --help`."""
    return sorted({f.stem for d in path for f in Path(d).glob("*.py") if f.stem != "__init__"})


def run(argv: Sequence[str] | None, build_services: Callable[[Settings], Any]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    ctx = Context(args=args, build_services=build_services)
    try:
        return int(args.func(args, ctx) or 0)
    except TailraceError as exc:
        if getattr(args, "debug", False):
            import traceback

            traceback.print_exc()
        print(f"tailrace: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tailrace: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        # The database's own errors (unreachable, locked past the timeout) are the environment's,
        # not a bug: say what happened without a traceback.
        if type(exc).__module__.startswith("sqlalchemy") and type(exc).__name__ == "OperationalError":
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            print(f"tailrace: error: the metadata database failed: {first}", file=sys.stderr)
            return 3
        if getattr(args, "debug", False):
            raise
        # A bug: one line that says so; the traceback is one flag away, for the bug report.
        print(
            f"tailrace: internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 70
    finally:
        ctx.close()
