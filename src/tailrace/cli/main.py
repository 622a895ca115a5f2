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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with `command`, only the command module of that name
    registers (empty of commands when there is none: see _parser_for)."""
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

    names = _module_names(list(commands.__path__))
    if command is not None:
        names = [n for n in names if n == command]
    for name in names:
        module = importlib.import_module(f"tailrace.cli.commands.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def _parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser for `argv`. When its command word names a command module that registers that
    command (`tailrace hive ...`: commands/hive.py), only that module is imported: the others
    and what they import are a measurable part of a short command's start-up. Anything else
    (`--help`, an abbreviated option, a command registered by a module of another name) gets
    the parser of every command, so usage and errors are the same either way."""
    word = _command_word(argv)
    if word is not None:
        parser = build_parser(word)
        if word in _commands(parser):
            return parser
    return build_parser()


def _command_word(argv: Sequence[str]) -> str | None:
    """The first argument that is neither a global option nor an option's value; None when an
    option the top-level parser does not know exactly (or help, version) comes first."""
    top = build_parser("")
    valued = {o for a in top._actions if a.nargs != 0 for o in a.option_strings}
    flags = {
        o
        for a in top._actions
        if a.nargs == 0 and a.dest not in ("help", "version")
        for o in a.option_strings
    }
    items = iter(argv)
    for arg in items:
        if arg in valued:
            next(items, None)
        elif not (arg in flags or ("=" in arg and arg.split("=", 1)[0] in valued)):
            return None if arg.startswith("-") else arg
    return None


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    return {name for a in parser._actions if isinstance(a, argparse._SubParsersAction) for name in a.choices}


def _module_names(path: list[str]) -> list[str]:
    """The command modules (plain .py files), sorted. Listed directly: pkgutil.iter_modules
    imports `inspect`, a tenth of the start-up of `tailrace --help`."""
    return sorted({f.stem for d in path for f in Path(d).glob("*.py") if f.stem != "__init__"})


def run(argv: Sequence[str] | None, build_services: Callable[[Settings], Any]) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser_for(argv)
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
