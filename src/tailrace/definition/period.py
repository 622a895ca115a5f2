"""Periods: `"1 Day"`, `"15 minutes"`, `"2 Hours"` (Schedule period, terminateAfter, timeouts).

The service writes `N unit` with the unit in any case and singular or plural. Months and years
are calendar steps (dateutil's relativedelta), so they have no fixed length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta

from tailrace.definition.problems import DefinitionError
from tailrace.errors import Location

UNITS = ("minutes", "hours", "days", "weeks", "months", "years")
_ALIASES = {
    "minute": "minutes",
    "min": "minutes",
    "mins": "minutes",
    "hour": "hours",
    "hr": "hours",
    "hrs": "hours",
    "day": "days",
    "week": "weeks",
    "month": "months",
    "year": "years",
}
_FIXED_MINUTES = {"minutes": 1, "hours": 60, "days": 1440, "weeks": 10080}
# For ordering and limits only: the shortest month and year.
_APPROX_MINUTES = {**_FIXED_MINUTES, "months": 28 * 1440, "years": 365 * 1440}
_PATTERN = re.compile(r"^\s*(\d{1,9})\s*([A-Za-z]+)\s*$")

MINIMUM_SCHEDULE_PERIOD_MINUTES = 15
MAXIMUM_SCHEDULE_PERIOD_MINUTES = 3 * 366 * 1440
EXPECTED = "a period like '15 minutes' or '1 day' (a whole number, then minutes, hours, days, weeks, months or years)"


@dataclass(frozen=True, slots=True)
class Period:
    amount: int
    unit: str
    """One of minutes, hours, days, weeks, months, years."""

    def add(self, dt: datetime, n: int = 1) -> datetime:
        """`dt` moved by n periods (calendar months and years; n may be negative)."""
        return dt + relativedelta(**{self.unit: self.amount * n})

    @property
    def is_fixed(self) -> bool:
        return self.unit in _FIXED_MINUTES

    def to_timedelta(self) -> timedelta:
        """The fixed length; months and years have none and raise DefinitionError."""
        if not self.is_fixed:
            raise DefinitionError(
                f"expected a period of fixed length (minutes, hours, days or weeks); found '{self}', "
                "whose length depends on the calendar"
            )
        return timedelta(minutes=self.amount * _FIXED_MINUTES[self.unit])

    @property
    def approx_minutes(self) -> int:
        """Length in minutes, taking a month as 28 days and a year as 365 (for limits)."""
        return self.amount * _APPROX_MINUTES[self.unit]

    def __str__(self) -> str:
        unit = self.unit[:-1] if self.amount == 1 else self.unit
        return f"{self.amount} {unit}"


def normalize_unit(word: str) -> str | None:
    w = word.lower()
    if w in UNITS:
        return w
    return _ALIASES.get(w)


def parse_period(text: str, *, location: Location | None = None) -> Period:
    """Parse `N unit`; raise DefinitionError saying what was expected and what was found."""
    if not isinstance(text, str):
        raise DefinitionError(f"expected {EXPECTED}; found {type(text).__name__} {text!r}", location)
    m = _PATTERN.match(text)
    unit = normalize_unit(m.group(2)) if m else None
    if m is None or unit is None:
        hint = ""
        if m is not None:
            hint = f" ('{m.group(2)}' is not a unit)"
        raise DefinitionError(f"expected {EXPECTED}; found '{text}'{hint}", location)
    amount = int(m.group(1))
    if amount <= 0:
        raise DefinitionError(f"expected a period longer than zero; found '{text}'", location)
    return Period(amount=amount, unit=unit)
