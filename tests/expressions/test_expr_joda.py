"""format(): Joda-Time DateTimeFormat pattern letters, literals and errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tailrace.expressions import ExpressionError, MappingScope, evaluate, format_datetime

TUESDAY = datetime(2011, 5, 24, 17, 10, 5, 123456, tzinfo=UTC)  # ISO week 21, day 144
MIDNIGHT = datetime(2011, 9, 4, 0, 7, 0, tzinfo=UTC)  # a Sunday
NEW_YEAR_SUNDAY = datetime(2011, 1, 2, 9, 0, tzinfo=UTC)  # ISO week 52 of weekyear 2010


@pytest.mark.parametrize(
    ("dt", "pattern", "expected"),
    [
        (TUESDAY, "YYYY", "2011"),  # year of era, not the week-year
        (TUESDAY, "YY", "11"),
        (TUESDAY, "Y", "2011"),
        (TUESDAY, "YYYYY", "02011"),
        (TUESDAY, "yyyy", "2011"),
        (TUESDAY, "yy", "11"),
        (TUESDAY, "y", "2011"),
        (NEW_YEAR_SUNDAY, "YYYY", "2011"),
        (NEW_YEAR_SUNDAY, "xxxx", "2010"),  # ISO week-year
        (NEW_YEAR_SUNDAY, "xx", "10"),
        (NEW_YEAR_SUNDAY, "ww", "52"),
        (TUESDAY, "w", "21"),
        (TUESDAY, "M", "5"),
        (TUESDAY, "MM", "05"),
        (TUESDAY, "MMM", "May"),
        (TUESDAY, "MMMM", "May"),
        (MIDNIGHT, "MMM", "Sep"),
        (MIDNIGHT, "MMMM", "September"),
        (MIDNIGHT, "M", "9"),
        (TUESDAY, "d", "24"),
        (MIDNIGHT, "d", "4"),
        (MIDNIGHT, "dd", "04"),
        (TUESDAY, "D", "144"),
        (NEW_YEAR_SUNDAY, "D", "2"),
        (NEW_YEAR_SUNDAY, "DDD", "002"),
        (TUESDAY, "H", "17"),
        (TUESDAY, "HH", "17"),
        (TUESDAY, "h", "5"),
        (TUESDAY, "hh", "05"),
        (TUESDAY, "k", "17"),
        (TUESDAY, "K", "5"),
        (TUESDAY, "a", "PM"),
        (MIDNIGHT, "H", "0"),
        (MIDNIGHT, "HH", "00"),
        (MIDNIGHT, "hh", "12"),  # clock hour of the half day: 12, not 0
        (MIDNIGHT, "k", "24"),  # clock hour of the day: 24 at midnight
        (MIDNIGHT, "K", "0"),
        (MIDNIGHT, "a", "AM"),
        (TUESDAY, "m", "10"),
        (MIDNIGHT, "mm", "07"),
        (MIDNIGHT, "m", "7"),
        (TUESDAY, "s", "5"),
        (TUESDAY, "ss", "05"),
        (TUESDAY, "S", "1"),  # fraction of second, truncated to milliseconds
        (TUESDAY, "SS", "12"),
        (TUESDAY, "SSS", "123"),
        (TUESDAY, "SSSS", "1230"),
        (MIDNIGHT, "SSS", "000"),
        (TUESDAY, "E", "Tue"),
        (TUESDAY, "EEE", "Tue"),
        (TUESDAY, "EEEE", "Tuesday"),
        (MIDNIGHT, "EEEE", "Sunday"),
        (TUESDAY, "e", "2"),  # Monday is 1
        (MIDNIGHT, "e", "7"),
        (TUESDAY, "G", "AD"),
        (TUESDAY, "C", "20"),
        (TUESDAY, "z", "UTC"),
        (TUESDAY, "zzzz", "Coordinated Universal Time"),
        (TUESDAY, "Z", "+0000"),
        (TUESDAY, "ZZ", "+00:00"),
        (TUESDAY, "ZZZ", "UTC"),
        (TUESDAY, "YYYY-MM-dd'T'HH:mm:ss", "2011-05-24T17:10:05"),
        (TUESDAY, "hh 'o''clock' a", "05 o'clock PM"),
        (TUESDAY, "''", "'"),
        (TUESDAY, "'It''s' EEEE", "It's Tuesday"),
        (TUESDAY, "'at' h:mm", "at 5:10"),
        (TUESDAY, "YYYY/MM/dd_HH.mm,ss;# ~", "2011/05/24_17.10,05;# ~"),
        (TUESDAY, "dd MMM YYYY, EEE", "24 May 2011, Tue"),
        (TUESDAY, "'unterminated literal YYYY", "unterminated literal YYYY"),
    ],
)
def test_pattern_letters(dt: datetime, pattern: str, expected: str) -> None:
    assert format_datetime(dt, pattern) == expected


def test_format_through_the_expression_language_both_quote_styles() -> None:
    scope = MappingScope({"t": TUESDAY})
    assert evaluate("""format(t, "YYYY-MM-dd'T'HH")""", scope) == "2011-05-24T17"
    # a doubled quote inside a single-quoted string is one quote: the pattern is YYYY-MM-dd'T'HH
    assert evaluate("format(t,'YYYY-MM-dd''T''HH')", scope) == "2011-05-24T17"


@pytest.mark.parametrize(
    ("utc", "zone", "pattern", "expected"),
    [
        # January: Pacific Standard Time
        (
            datetime(2011, 1, 15, 17, 10, tzinfo=UTC),
            "America/Los_Angeles",
            "YYYY-MM-dd HH:mm z",
            "2011-01-15 09:10 PST",
        ),
        (
            datetime(2011, 1, 15, 17, 10, tzinfo=UTC),
            "America/Los_Angeles",
            "Z|ZZ|ZZZ",
            "-0800|-08:00|America/Los_Angeles",
        ),
        (datetime(2011, 1, 15, 17, 10, tzinfo=UTC), "America/Los_Angeles", "zzzz", "Pacific Standard Time"),
        (datetime(2011, 7, 15, 17, 10, tzinfo=UTC), "America/Los_Angeles", "zzzz", "Pacific Daylight Time"),
        (datetime(2011, 7, 15, 17, 10, tzinfo=UTC), "America/New_York", "hh:mm a z Z", "01:10 PM EDT -0400"),
        (datetime(2011, 7, 15, 17, 10, tzinfo=UTC), "Europe/Berlin", "HH:mm z ZZ", "19:10 CEST +02:00"),
        (datetime(2011, 7, 15, 17, 10, tzinfo=UTC), "Asia/Kolkata", "HH:mm Z", "22:40 +0530"),
        (
            datetime(2011, 7, 15, 23, 10, tzinfo=UTC),
            "Asia/Tokyo",
            "YYYY-MM-dd EEEE HH:mm",
            "2011-07-16 Saturday 08:10",
        ),
        (datetime(2011, 7, 15, 17, 10, tzinfo=UTC), "-03:30", "HH:mm z ZZ ZZZ", "13:40 -03:30 -03:30 -03:30"),
    ],
)
def test_zones(utc: datetime, zone: str, pattern: str, expected: str) -> None:
    scope = MappingScope({"t": utc, "zone": zone, "pattern": pattern})
    assert evaluate("format(inTimeZone(t, zone), pattern)", scope) == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("YYYY-MM-ddTHH:mm", "Illegal pattern component: T"),
        ("yyyy-MM-dd uuuu", "Illegal pattern component: uuuu"),
        ("bb", "Illegal pattern component: bb"),
        ("", "Invalid pattern specification"),
    ],
)
def test_bad_patterns_are_errors_at_the_pattern_argument(pattern: str, message: str) -> None:
    text = f"format(t, '{pattern}')"
    with pytest.raises(ExpressionError) as info:
        evaluate(text, MappingScope({"t": TUESDAY}))
    assert message in str(info.value)
    assert "format()" in str(info.value)
    assert info.value.column == text.index("'") + 1
