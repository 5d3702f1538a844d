"""The value shapes segment filters are built from: days and periods, whole numbers, amounts, yes/no,
lists of texts or ids, objects of known keys, min–max ranges. Each ``clean_*`` returns plain JSON
(dates as ``YYYY-MM-DD`` or an offset such as ``-12m``, amounts as decimal strings, lists
de-duplicated and sorted) or raises ``Invalid`` with the message shown next to the filter.

Dates are either a day (``2025-05-01``) or an offset from today in the agency's time zone:
``-30d``, ``-8w``, ``-12m``, ``-2y`` (``+`` for the future, ``0d`` for today); ``resolve_date``
turns either into a day, so a saved segment with offsets moves with the calendar.
"""
import re
from datetime import date, timedelta
from django.utils.translation import gettext as _

from caravan.money import MoneyError, to_money

MAX_ITEMS = 50  # values in one list filter
MAX_TEXT = 120
_RELATIVE = re.compile(r"^([+-]?)(\d{1,4})([dwmy])$")
_LIMITS = {"d": 36600, "w": 5300, "m": 1200, "y": 100}


class Invalid(Exception):
    """One filter's problem; ``definition.validate`` turns it into ``{filter: [message]}``."""


# --- dates ----------------------------------------------------------------------------------------

def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def resolve_date(value: str, *, today: date) -> date:
    """A cleaned date value (a day or an offset such as ``-12m``) as a day."""
    match = _RELATIVE.match(value)
    if not match:
        return date.fromisoformat(value)
    sign, amount, unit = match.groups()
    n = -int(amount) if sign == "-" else int(amount)
    if unit == "d":
        return today + timedelta(days=n)
    if unit == "w":
        return today + timedelta(weeks=n)
    return _add_months(today, n if unit == "m" else 12 * n)


def clean_date(value) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        raise Invalid(_("Give a date such as 2025-05-01, or an offset from today such as -12m."))
    text = value.strip().lower()
    if text == "today":
        return "0d"
    match = _RELATIVE.match(text)
    if match:
        if int(match.group(2)) > _LIMITS[match.group(3)]:
            raise Invalid(_("That offset is too far from today."))
        return text
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise Invalid(_("Give a date such as 2025-05-01, or an offset from today such as -12m.")) from None
    if not 1900 <= day.year <= 2200:
        raise Invalid(_("Give a date between the years 1900 and 2200."))
    return day.isoformat()


def clean_period(raw: dict, cleaned: dict, *, today: date, first: str = "from", last: str = "to") -> None:
    """Copy the period keys of ``raw`` into ``cleaned``, checking that the first is not after the last."""
    for key in (first, last):
        if raw.get(key) not in (None, ""):
            cleaned[key] = clean_date(raw[key])
    if first in cleaned and last in cleaned:
        if resolve_date(cleaned[first], today=today) > resolve_date(cleaned[last], today=today):
            raise Invalid(_("The start of the period is after its end."))


# --- values ---------------------------------------------------------------------------------------

def is_empty(value) -> bool:
    """A filter given this value is off."""
    return value is None or value == "" or value == [] or value == {}


def clean_int(value, *, low: int, high: int, message: str) -> int:
    if isinstance(value, bool):
        raise Invalid(message)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not low <= value <= high:
        raise Invalid(message)
    return value


def clean_money(value) -> str:
    """An amount, zero or more, as ``caravan.money`` reads it (floats, exponents, a third decimal refused)."""
    try:
        amount = to_money(value)
    except MoneyError as exc:
        if exc.too_large:
            raise Invalid(_("The amount is too large.")) from None
        amount = None
    if amount is None or amount < 0:
        raise Invalid(_("Give an amount such as 20000 or 1234.50 (at most two decimals)."))
    return str(amount)


def clean_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise Invalid(_("Give true or false."))


def clean_list(value, *, choices=None, upper=False, max_length=MAX_TEXT) -> list:
    """A list of texts (a single text is a list of one), de-duplicated and sorted."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) > MAX_ITEMS:
        raise Invalid(_("Give a list of at most %(n)d values.") % {"n": MAX_ITEMS})
    cleaned = set()
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item.strip()) > max_length:
            raise Invalid(_("Each value is a text of at most %(n)d characters.") % {"n": max_length})
        item = item.strip().upper() if upper else item.strip()
        if choices is not None and item not in choices:
            raise Invalid(_("“%(value)s” is not one of the choices.") % {"value": item})
        cleaned.add(item)
    return sorted(cleaned)


def clean_ids(value) -> list[int]:
    if isinstance(value, (int, str)):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) > MAX_ITEMS:
        raise Invalid(_("Give a list of at most %(n)d values.") % {"n": MAX_ITEMS})
    return sorted({clean_int(v, low=1, high=2**62, message=_("Give the ids as whole numbers.")) for v in value})


def clean_object(value, keys: tuple[str, ...]) -> dict:
    """An object with only these keys; keys whose value is empty are dropped."""
    if not isinstance(value, dict):
        raise Invalid(_("Give an object with the keys %(keys)s.") % {"keys": ", ".join(keys)})
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise Invalid(_("Unknown keys: %(keys)s (allowed: %(allowed)s).")
                      % {"keys": ", ".join(unknown), "allowed": ", ".join(keys)})
    return {k: v for k, v in value.items() if not is_empty(v)}


def clean_range(raw: dict, *, low: int, high: int, message: str, minimum="min", maximum="max") -> dict:
    cleaned = {}
    for key in (minimum, maximum):
        if key in raw:
            cleaned[key] = clean_int(raw[key], low=low, high=high, message=message)
    if minimum in cleaned and maximum in cleaned and cleaned[minimum] > cleaned[maximum]:
        raise Invalid(_("The minimum is above the maximum."))
    return cleaned
