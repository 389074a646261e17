"""Regulatory report deadlines in working days on China's official calendar.

Working days come from PyPI ``chinesecalendar`` (module ``chinese_calendar``): public
holidays are days off and the adjusted working weekends (调休) are working days. For a
year the package does not list yet, the calendar falls back to Monday–Friday minus the
days of an optional holidays file, logs that once per year, and names the calendar it
used (``fallback``) next to every deadline it computes; it never guesses silently.

The holidays file (``FINPULSE_HOLIDAYS_FILE``) has one date per line, ``YYYY-MM-DD``
for a day off or ``YYYY-MM-DD workday`` for an adjusted working weekend; ``#`` starts a
comment. It only matters for years beyond the package.

>>> cal = WorkingDayCalendar()
>>> cal.add_working_days(date(2026, 9, 30), 5)  # National Day week, then Saturday 10 Oct works
Deadline(due=datetime.date(2026, 10, 13), calendar='official')
>>> cal.add_working_days(date(2030, 1, 4), 1)  # beyond the package: Monday-Friday
Deadline(due=datetime.date(2030, 1, 7), calendar='fallback')
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Literal, NamedTuple

import chinese_calendar

log = logging.getLogger(__name__)

CalendarName = Literal["official", "fallback"]
OFFICIAL: CalendarName = "official"
FALLBACK: CalendarName = "fallback"


class HolidaysFileError(ValueError):
    """The holidays file cannot be read; the message names the file and line."""


class Deadline(NamedTuple):
    """A report deadline and the calendar it was counted on."""

    due: date
    calendar: CalendarName


def read_holidays_file(path: Path) -> tuple[frozenset[date], frozenset[date]]:
    """Days off and adjusted working days listed in ``path``.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write("# 2030\\n2030-01-01\\n2030-02-02 workday\\n")
    >>> read_holidays_file(Path(f.name)); os.unlink(f.name)
    (frozenset({datetime.date(2030, 1, 1)}), frozenset({datetime.date(2030, 2, 2)}))
    """
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise HolidaysFileError(f"{path}: cannot read holidays file: {exc.strerror}") from None
    off: set[date] = set()
    work: set[date] = set()
    for number, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            day = date.fromisoformat(words[0])
        except ValueError:
            raise HolidaysFileError(
                f"{path}:{number}: not a YYYY-MM-DD date: {words[0]!r}"
            ) from None
        if words[1:] == ["workday"]:
            work.add(day)
        elif len(words) == 1:
            off.add(day)
        else:
            raise HolidaysFileError(f"{path}:{number}: expected 'YYYY-MM-DD [workday]'")
    return frozenset(off), frozenset(work)


class WorkingDayCalendar:
    """Working days: the official calendar where the package lists the year, else the
    fallback (Monday–Friday, minus ``holidays``, plus ``workdays``)."""

    def __init__(self, holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> None:
        self.holidays = frozenset(holidays)
        self.workdays = frozenset(workdays)
        self._fallback_years_logged: set[int] = set()

    @classmethod
    def from_file(cls, path: Path | None) -> WorkingDayCalendar:
        """The calendar with the holidays file's days (none without a file)."""
        if path is None:
            return cls()
        return cls(*read_holidays_file(path))

    def is_working_day(self, day: date) -> tuple[bool, CalendarName]:
        """Whether ``day`` is a working day, and on which calendar.

        >>> WorkingDayCalendar().is_working_day(date(2026, 10, 10))  # adjusted Saturday
        (True, 'official')
        """
        try:
            return bool(chinese_calendar.is_workday(day)), OFFICIAL
        except NotImplementedError:  # the package has no data for this year
            if day.year not in self._fallback_years_logged:
                self._fallback_years_logged.add(day.year)
                log.warning(
                    "report deadlines in %d counted on the fallback calendar (Monday-Friday "
                    "and the holidays file): chinesecalendar %s has no data for that year",
                    day.year,
                    getattr(chinese_calendar, "__version__", "?"),
                )
            if day in self.workdays:
                return True, FALLBACK
            return day.weekday() < 5 and day not in self.holidays, FALLBACK

    def add_working_days(self, day: date, n: int) -> Deadline:
        """The ``n``-th working day after ``day``; ``fallback`` if any day counted was."""
        current, calendar = day, OFFICIAL
        while n > 0:
            current += timedelta(days=1)
            working, used = self.is_working_day(current)
            if used == FALLBACK:
                calendar = FALLBACK
            if working:
                n -= 1
        return Deadline(current, calendar)
