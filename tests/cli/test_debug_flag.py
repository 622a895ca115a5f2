"""An internal error (a bug) is one line naming it; the traceback only with --debug."""

from __future__ import annotations

import pytest

from tailrace.cli.main import run


def _broken_services(_settings: object) -> object:
    raise RuntimeError("the wiring is broken")


def test_internal_error_is_one_line_without_debug(home, capsys):
    assert run(["events"], _broken_services) == 70
    err = capsys.readouterr().err
    assert err.strip() == (
        "tailrace: internal error: RuntimeError: the wiring is broken (run again with --debug for the traceback)"
    )


def test_debug_shows_the_traceback(home):
    with pytest.raises(RuntimeError, match="the wiring is broken"):
        run(["--debug", "events"], _broken_services)
