"""Chinese public festivals and the holiday breaks around them (R-CARE-3, R-CAMP-1, R-CAMP-4).

The dates come from the ``holidays`` library (``holidays.China``: lunar festivals, observed days
and the State Council's substituted days off, kept up to date upstream), never from a table of
ours. A festival's *break* is the run of days off around it: its holiday days, the substituted
days off and weekends next to them, minus the make-up working days (调休 Saturdays/Sundays).
That is the period a customer "travelled at Spring Festival" in.
"""
import re
from datetime import date, datetime, timedelta
from functools import lru_cache

from django.utils.translation import gettext_lazy as _

# Key → (label, the marker in the library's English holiday names).
FESTIVALS = {
    "new_year": (_("New Year's Day"), "New Year's Day"),
    "spring_festival": (_("Spring Festival"), "Chinese New Year"),
    "qingming": (_("Qingming Festival"), "Tomb-Sweeping Day"),
    "may_day": (_("May Day"), "Labor Day"),
    "dragon_boat": (_("Dragon Boat Festival"), "Dragon Boat Festival"),
    "mid_autumn": (_("Mid-Autumn Festival"), "Mid-Autumn Festival"),
    "national_day": (_("National Day"), "National Day"),
}
FESTIVAL_CHOICES = [(key, label) for key, (label, _marker) in FESTIVALS.items()]
_MAKE_UP = re.compile(r"substituted from (\d\d/\d\d/\d{4})")


@lru_cache(maxsize=64)
def _calendar(year: int) -> tuple[dict, frozenset]:
    """The year's holidays (with a week either side) and the make-up working days."""
    import holidays  # a few MB of calendars, only once a festival's dates are asked for

    days = holidays.China(years=(year - 1, year, year + 1), language="en_US")
    make_up = frozenset(datetime.strptime(m.group(1), "%m/%d/%Y").date()
                        for name in days.values() for m in [_MAKE_UP.search(name)] if m)
    return dict(days), make_up


def _off(day: date, days: dict, make_up: frozenset) -> bool:
    return day in days or (day.weekday() >= 5 and day not in make_up)


def festival_days(key: str, year: int) -> list[date]:
    """The holiday days the library names for festival ``key`` in ``year`` (observed days included)."""
    marker = FESTIVALS[key][1]
    days, _make_up = _calendar(year)
    return sorted(day for day, name in days.items() if day.year == year and marker in name)


def festival_break(key: str, year: int) -> tuple[date, date] | None:
    """First and last day off of the break around festival ``key`` in ``year`` (None if the library has none)."""
    named = festival_days(key, year)
    if not named:
        return None
    days, make_up = _calendar(year)
    start, end = named[0], named[-1]
    while _off(start - timedelta(days=1), days, make_up):
        start -= timedelta(days=1)
    while _off(end + timedelta(days=1), days, make_up) or (end + timedelta(days=1)) in named:
        end += timedelta(days=1)
    return start, end


def festivals_between(first: date, last: date) -> list[tuple[str, date]]:
    """``(key, festival day)`` for each festival whose first named day falls in ``[first, last]``, by date."""
    found = []
    for year in range(first.year, last.year + 1):
        for key in FESTIVALS:
            named = festival_days(key, year)
            if named and first <= named[0] <= last:
                found.append((key, named[0]))
    return sorted(found, key=lambda pair: pair[1])
