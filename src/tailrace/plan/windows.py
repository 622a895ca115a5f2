"""Schedule windows: the periods a Schedule produces, as the service planned them.

Window k covers [start + k·period, start + (k+1)·period); `cron` components run at the start of
their window, `timeseries` ones at its end, `ondemand` pipelines get one window per activation.
Calendar months are added from the start (not accumulated), so Jan 31 + 1 month is Feb 28/29.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from tailrace.clock import utc
from tailrace.definition import Period, ResolvedObject, parse_period
from tailrace.errors import LocatedError, Location
from tailrace.expressions import parse_datetime_value


class PlanError(LocatedError):
    """The definition cannot be planned (bad schedule fields, missing schedule...)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Window:
    index: int
    start: datetime
    end: datetime
    run_at: datetime


SCHEDULE_TYPES = ("cron", "timeseries", "ondemand")
# Safety net for a one-shot run: a 15-minute schedule over 3 years is ~105k windows.
MAX_WINDOWS = 200_000


def schedule_type_of(obj: ResolvedObject) -> str:
    raw = obj.string("scheduleType") or "cron"
    value = raw.strip().lower()
    if value not in SCHEDULE_TYPES:
        raise PlanError(
            f"scheduleType must be one of {', '.join(SCHEDULE_TYPES)}; found {raw!r}",
            Location(object_id=obj.id, field="scheduleType"),
        )
    return value


def _datetime_field(schedule: ResolvedObject, field: str) -> datetime | None:
    text = schedule.string(field)
    if text is None:
        return None
    value = parse_datetime_value(text)
    if value is None:
        raise PlanError(
            f"'{field}' must be a literal date-time like 2012-12-24T00:00:00; found {text!r}",
            Location(object_id=schedule.id, field=field),
        )
    return utc(value)


def schedule_start(schedule: ResolvedObject, *, activated_at: datetime) -> datetime:
    """The first window's start: startDateTime, or the activation time for startAt."""
    start = _datetime_field(schedule, "startDateTime")
    if start is not None:
        return start
    start_at = (schedule.string("startAt") or "").strip().upper()
    if start_at in ("FIRST_ACTIVATION_DATE_TIME", "ONDEMAND_ACTIVATION_TIME"):
        return utc(activated_at)
    raise PlanError(
        "a Schedule needs 'startDateTime' or 'startAt' (FIRST_ACTIVATION_DATE_TIME)",
        Location(object_id=schedule.id, field="startDateTime"),
    )


def schedule_period(schedule: ResolvedObject) -> Period:
    text = schedule.string("period")
    if text is None:
        raise PlanError(
            "a Schedule needs 'period' (e.g. '1 day')", Location(object_id=schedule.id, field="period")
        )
    try:
        return parse_period(text)
    except LocatedError as exc:
        raise PlanError(exc.detail, Location(object_id=schedule.id, field="period"))


def iter_windows(
    schedule: ResolvedObject,
    *,
    schedule_type: str,
    activated_at: datetime,
    start_override: datetime | None = None,
) -> Iterator[Window]:
    """Every window of the schedule in order (unbounded unless endDateTime/occurrences bound it).

    start_override moves the first window (ActivatePipeline's startTimestamp): windows keep the
    schedule's period but start there.
    """
    if schedule_type == "ondemand":
        at = utc(activated_at)
        yield Window(index=0, start=at, end=at, run_at=at)
        return
    period = schedule_period(schedule)
    start = utc(start_override) if start_override else schedule_start(schedule, activated_at=activated_at)
    end_limit = _datetime_field(schedule, "endDateTime")
    occurrences_text = schedule.string("occurrences")
    occurrences: int | None = None
    if occurrences_text is not None:
        try:
            occurrences = int(occurrences_text)
        except ValueError:
            raise PlanError(
                f"'occurrences' must be a whole number; found {occurrences_text!r}",
                Location(object_id=schedule.id, field="occurrences"),
            )
    index = 0
    while True:
        if occurrences is not None and index >= occurrences:
            return
        try:
            w_start = period.add(start, index)
            if end_limit is not None and w_start >= end_limit:
                return
            w_end = period.add(start, index + 1)
        except OverflowError:
            return  # the calendar ends at 9999-12-31: a period reaching past it never comes
        yield Window(
            index=index, start=w_start, end=w_end, run_at=w_end if schedule_type == "timeseries" else w_start
        )
        index += 1


def windows_until(
    schedule: ResolvedObject,
    *,
    schedule_type: str,
    activated_at: datetime,
    until: datetime,
    start_override: datetime | None = None,
) -> list[Window]:
    """The windows that are due by `until` (exclusive for starts): the Data Pipeline backfill.

    A window is due when it starts before `until` and its run time (start for cron, end for
    timeseries) is not after `until`.
    """
    until = utc(until)
    out: list[Window] = []
    for window in iter_windows(
        schedule, schedule_type=schedule_type, activated_at=activated_at, start_override=start_override
    ):
        if schedule_type == "ondemand":
            out.append(window)
            break
        if window.start >= until or window.run_at > until:
            break
        out.append(window)
        if len(out) > MAX_WINDOWS:
            raise PlanError(
                f"more than {MAX_WINDOWS} periods would be planned; set endDateTime, occurrences or an "
                "earlier --until",
                Location(object_id=schedule.id, field="period"),
            )
    return out


def window_containing(
    schedule: ResolvedObject, *, schedule_type: str, activated_at: datetime, at: datetime
) -> Window | None:
    """The window of `schedule` whose [start, end) contains `at` (roll-ups between schedules)."""
    for window in iter_windows(schedule, schedule_type=schedule_type, activated_at=activated_at):
        if window.start <= at < window.end or (window.start == window.end == at):
            return window
        if window.start > at:
            return None
    return None


class WindowSeries:
    """One schedule's windows, computed once, extended on demand and bisected for lookups.

    Walking a schedule from its start on every question makes a long backfill quadratic; a
    planner asks the same questions for every component and window, so it keeps one series per
    schedule.
    """

    def __init__(self, windows: Iterator[Window]) -> None:
        self._source = windows
        self._windows: list[Window] = []
        self._starts: list[datetime] = []
        self._exhausted = False
        # A service shares one planner between its scheduler and API threads.
        self._lock = threading.Lock()

    def _extend_past(self, at: datetime) -> None:
        while not self._exhausted and (not self._windows or self._windows[-1].start <= at):
            nxt = next(self._source, None)
            if nxt is None:
                self._exhausted = True
                break
            self._windows.append(nxt)
            self._starts.append(nxt.start)
            if len(self._windows) > MAX_WINDOWS + 1:
                break

    def due(self, until: datetime, *, since: datetime | None = None) -> list[Window]:
        """Windows starting before `until` whose run time is not after it (see windows_until);
        with `since`, only those starting at or after it (bisected: planning window n of a
        service does not walk the n - 1 before it)."""
        until = utc(until)
        with self._lock:
            self._extend_past(until)
            first = bisect.bisect_left(self._starts, utc(since)) if since is not None else 0
            candidates = self._windows[first : bisect.bisect_left(self._starts, until)]
        out: list[Window] = []
        for window in candidates:
            if window.run_at > until:
                break
            out.append(window)
        return out

    def containing(self, at: datetime) -> Window | None:
        """The window whose [start, end) contains `at`."""
        with self._lock:
            self._extend_past(at)
            index = bisect.bisect_right(self._starts, at) - 1
            window = self._windows[index] if index >= 0 else None
        return window if window is not None and window.start <= at < window.end else None
