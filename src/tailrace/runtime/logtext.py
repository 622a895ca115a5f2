"""What goes into an attempt log: plain text. Commands that colour their output (ls, grep,
progress bars) write ANSI escape sequences that show as `^[[31m` in `tailrace logs`, in the
API's log endpoint and in any editor, so they are removed as the log is written."""

from __future__ import annotations

import re

# CSI (colours, cursor moves), OSC (titles, links; ended by BEL or ST) and the two-byte escapes.
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def plain(text: str) -> str:
    """text without ANSI escape sequences (a sequence split across two writes is left as is)."""
    return ANSI.sub("", text) if "\x1b" in text else text
