"""Cutting one read into lines for the agent's parsers (complete lines only; invalid UTF-8 and
over-long lines are set aside as bad lines, with their offsets for the error sink)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl


@dataclass
class Lines:
    """One read cut into lines: the ones to parse, and the ones refused before parsing."""

    good: pl.Series
    index: list[int] | None
    bad: list[tuple[int, str]]
    raw: Callable[[int], bytes]
    offsets: Callable[[int], int]


def split_lines(data: bytes, max_line: int) -> Lines:
    """Decode complete lines (data ends with a newline); invalid UTF-8 and over-long lines are bad."""
    cum: list[int] = []

    def offsets_of(lengths: Callable[[], list[int]]) -> Callable[[int], int]:
        def at(i: int) -> int:
            if not cum:
                total = 0
                for n in lengths():
                    cum.append(total)
                    total += n + 1
            return cum[i]

        return at

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raw_lines = data.split(b"\n")
        raw_lines.pop()
        good: list[str] = []
        index: list[int] = []
        bad: list[tuple[int, str]] = []
        for i, b in enumerate(raw_lines):
            if len(b) > max_line:
                bad.append((i, "line longer than max_line_size"))
                continue
            try:
                s = b.decode("utf-8")
            except UnicodeDecodeError:
                bad.append((i, "invalid UTF-8"))
                continue
            good.append(s[:-1] if s.endswith("\r") else s)
            index.append(i)
        return Lines(
            pl.Series("line", good, dtype=pl.String),
            index,
            bad,
            raw_lines.__getitem__,
            offsets_of(lambda: [len(b) for b in raw_lines]),
        )
    lines = text.split("\n")
    lines.pop()
    every = pl.Series("line", lines, dtype=pl.String)
    del lines, text  # the column is compact; the Python strings would outlive the batch's parse
    series = every
    bad = []
    idx: list[int] | None = None
    if len(data) > max_line:
        too_long = every.str.len_bytes() > max_line
        if too_long.any():
            bad = [(i, "line longer than max_line_size") for i in too_long.arg_true().to_list()]
            idx = (~too_long).arg_true().to_list()
            series = every.filter(~too_long)
    if b"\r" in data:
        series = series.str.strip_suffix("\r")
    return Lines(
        series,
        idx,
        bad,
        lambda i: every[i].encode(),
        offsets_of(lambda: every.str.len_bytes().to_list()),
    )
