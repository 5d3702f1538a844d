"""A segment definition: the JSON document of filters, and its one validator (R-CAMP-1).

A definition is a JSON object of filters, all of which must hold (AND); a filter that is missing,
``null``, an empty list or an empty object is off, and ``{}`` selects every customer. The keys and
value shapes are documented in docs/segments.md and are kept stable: campaigns store a copy.

``validate(definition)`` checks types, choices and ranges and returns the *cleaned* definition —
still plain JSON (dates as ``YYYY-MM-DD`` or relative offsets such as ``-12m``, amounts as decimal
strings, lists de-duplicated and sorted), so it can be stored and validated again unchanged. Errors
are a Django ``ValidationError`` keyed by filter name, which the builder page and the API show
next to the filter.

Dates in periods (``from``, ``to``, ``before``, ``after``) are either a day (``2025-05-01``) or an
offset from today in the agency's time zone: ``-30d``, ``-8w``, ``-12m``, ``-2y`` (``+`` for the
future, ``0d`` for today). A saved segment with offsets moves with the calendar.
"""
import re
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from crm.customers.festivals import FESTIVALS, festival_break
from crm.customers.models import Customer, Preferences

MAX_ITEMS = 50  # values in one list filter
MAX_TEXT = 120
_RELATIVE = re.compile(r"^([+-]?)(\d{1,4})([dwmy])$")
_LIMITS = {"d": 36600, "w": 5300, "m": 1200, "y": 100}
_IATA = re.compile(r"^[A-Z0-9]{2}$")
_MONEY = re.compile(r"^\d{1,12}(\.\d{1,2})?$")

# The filters, in the order the builder shows them: key → group.
PROFILE = ("kind", "city", "age", "tier", "owner", "tags")
BEHAVIOUR = ("trips", "destination", "spend", "last_trip", "festival", "price_sensitivity", "discount_share")
PREFERENCES = ("airline", "cabin", "hotel_chain", "interest")
VALUE = ("rfm", "value_segment", "quadrant", "late_payer", "p_alive")
CONTACT = ("emailable",)
FILTERS = PROFILE + BEHAVIOUR + PREFERENCES + VALUE + CONTACT

SPEND_BASIS = ("revenue", "margin")
VALUE_SEGMENTS = ("most_valuable", "growth", "declining", "low")  # crm.value.models.CustomerValue.Segment
QUADRANTS = ("small_low", "small_high", "large_low", "large_high")  # CustomerValue.Quadrant


class _Invalid(Exception):
    """One filter's problem; becomes ``{filter: [message]}``."""


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


def _date(value) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        raise _Invalid(_("Give a date such as 2025-05-01, or an offset from today such as -12m."))
    text = value.strip().lower()
    if text == "today":
        return "0d"
    match = _RELATIVE.match(text)
    if match:
        if int(match.group(2)) > _LIMITS[match.group(3)]:
            raise _Invalid(_("That offset is too far from today."))
        return text
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise _Invalid(_("Give a date such as 2025-05-01, or an offset from today such as -12m.")) from None
    if not 1900 <= day.year <= 2200:
        raise _Invalid(_("Give a date between the years 1900 and 2200."))
    return day.isoformat()


def _period(raw: dict, cleaned: dict, *, today: date, first: str = "from", last: str = "to") -> None:
    """Copy the period keys of ``raw`` into ``cleaned``, checking that the first is not after the last."""
    for key in (first, last):
        if raw.get(key) not in (None, ""):
            cleaned[key] = _date(raw[key])
    if first in cleaned and last in cleaned:
        if resolve_date(cleaned[first], today=today) > resolve_date(cleaned[last], today=today):
            raise _Invalid(_("The start of the period is after its end."))


# --- values ---------------------------------------------------------------------------------------

def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _int(value, *, low: int, high: int, message: str) -> int:
    if isinstance(value, bool):
        raise _Invalid(message)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not low <= value <= high:
        raise _Invalid(message)
    return value


def _money(value) -> str:
    """An amount: an integer or a decimal string with at most two decimals (floats are refused)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise _Invalid(_("Give an amount such as 20000 or 1234.50 (at most two decimals)."))
    text = str(value).strip() if isinstance(value, (int, str, Decimal)) else ""
    if not _MONEY.match(text):
        raise _Invalid(_("Give an amount such as 20000 or 1234.50 (at most two decimals)."))
    return str(Decimal(text).quantize(Decimal("0.01")))


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise _Invalid(_("Give true or false."))


def _list(value, *, choices=None, upper=False, max_length=MAX_TEXT) -> list:
    """A list of texts (a single text is a list of one), de-duplicated and sorted."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) > MAX_ITEMS:
        raise _Invalid(_("Give a list of at most %(n)d values.") % {"n": MAX_ITEMS})
    cleaned = set()
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item.strip()) > max_length:
            raise _Invalid(_("Each value is a text of at most %(n)d characters.") % {"n": max_length})
        item = item.strip().upper() if upper else item.strip()
        if choices is not None and item not in choices:
            raise _Invalid(_("“%(value)s” is not one of the choices.") % {"value": item})
        cleaned.add(item)
    return sorted(cleaned)


def _ids(value) -> list[int]:
    if isinstance(value, (int, str)):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) > MAX_ITEMS:
        raise _Invalid(_("Give a list of at most %(n)d values.") % {"n": MAX_ITEMS})
    return sorted({_int(v, low=1, high=2**62, message=_("Give the ids as whole numbers.")) for v in value})


def _object(value, keys: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise _Invalid(_("Give an object with the keys %(keys)s.") % {"keys": ", ".join(keys)})
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise _Invalid(_("Unknown keys: %(keys)s (allowed: %(allowed)s).")
                       % {"keys": ", ".join(unknown), "allowed": ", ".join(keys)})
    return {k: v for k, v in value.items() if not _empty(v)}


def _range(raw: dict, *, low: int, high: int, message: str, minimum="min", maximum="max") -> dict:
    cleaned = {}
    for key in (minimum, maximum):
        if key in raw:
            cleaned[key] = _int(raw[key], low=low, high=high, message=message)
    if minimum in cleaned and maximum in cleaned and cleaned[minimum] > cleaned[maximum]:
        raise _Invalid(_("The minimum is above the maximum."))
    return cleaned


# --- the filters ----------------------------------------------------------------------------------

def _kind(value, **_kw):
    if value not in Customer.Kind.values:
        raise _Invalid(_("Choose individuals or corporate accounts."))
    return value


def _age(value, **_kw):
    raw = _object(value, ("min", "max"))
    cleaned = _range(raw, low=0, high=120, message=_("Give an age from 0 to 120."))
    if not cleaned:
        raise _Invalid(_("Give a minimum or a maximum age."))
    return cleaned


def _tier(value, *, references, **_kw):
    from crm.tiers.models import ServiceTier

    ids = _ids(value)
    if references and ids:
        missing = set(ids) - set(ServiceTier.objects.filter(pk__in=ids).values_list("pk", flat=True))
        if missing:
            raise _Invalid(_("There is no service tier with the id %(ids)s.")
                           % {"ids": ", ".join(str(i) for i in sorted(missing))})
    return ids


def _owner(value, *, references, **_kw):
    from accounts.models import User

    if isinstance(value, (int, str)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise _Invalid(_("Give a list of account manager ids, or \"none\" for customers without one."))
    nobody = any(isinstance(v, str) and v.strip().lower() == "none" for v in value)
    ids = _ids([v for v in value if not (isinstance(v, str) and v.strip().lower() == "none")])
    if references and ids:
        missing = set(ids) - set(User.objects.filter(pk__in=ids, is_operator=False).values_list("pk", flat=True))
        if missing:
            raise _Invalid(_("There is no colleague with the id %(ids)s.")
                           % {"ids": ", ".join(str(i) for i in sorted(missing))})
    return ids + (["none"] if nobody else [])


def _trips(value, *, today, **_kw):
    raw = _object(value, ("min", "max", "from", "to"))
    cleaned = _range(raw, low=0, high=10000, message=_("Give a number of trips from 0 to 10000."))
    if "min" not in cleaned:
        cleaned["min"] = 0 if "max" in cleaned else 1
    _period(raw, cleaned, today=today)
    return cleaned


def _destination(value, *, today, **_kw):
    if isinstance(value, (str, list)):
        value = {"any": value}
    raw = _object(value, ("any", "exact", "from", "to"))
    if "any" not in raw:
        raise _Invalid(_("Give at least one destination, e.g. 日本 or Bali."))
    cleaned = {"any": _list(raw["any"])}
    if raw.get("exact") is not None and _bool(raw["exact"]):
        cleaned["exact"] = True
    _period(raw, cleaned, today=today)
    return cleaned


def _spend(value, *, today, **_kw):
    raw = _object(value, ("basis", "min", "max", "from", "to"))
    basis = raw.get("basis", "revenue")
    if basis not in SPEND_BASIS:
        raise _Invalid(_("Measure spend as revenue (sell price) or margin."))
    cleaned = {"basis": basis}
    for key in ("min", "max"):
        if key in raw:
            cleaned[key] = _money(raw[key])
    if "min" not in cleaned and "max" not in cleaned:
        raise _Invalid(_("Give a minimum or a maximum amount."))
    if "min" in cleaned and "max" in cleaned and Decimal(cleaned["min"]) > Decimal(cleaned["max"]):
        raise _Invalid(_("The minimum is above the maximum."))
    _period(raw, cleaned, today=today)
    return cleaned


def _last_trip(value, *, today, **_kw):
    raw = _object(value, ("after", "before"))
    cleaned = {}
    _period(raw, cleaned, today=today, first="after", last="before")
    if not cleaned:
        raise _Invalid(_("Give a day the last trip is after, before, or both."))
    return cleaned


def _festival(value, *, today, **_kw):
    if isinstance(value, str):
        value = {"key": value}
    raw = _object(value, ("key", "year"))
    if raw.get("key") not in FESTIVALS:
        raise _Invalid(_("Choose a festival."))
    cleaned = {"key": raw["key"]}
    if "year" in raw:
        cleaned["year"] = _int(raw["year"], low=2000, high=today.year + 1, message=_("Give a year from 2000 to next year."))
    if festival_break(cleaned["key"], cleaned.get("year", today.year - 1)) is None:
        raise _Invalid(_("The holiday calendar has no dates for this festival in that year."))
    return cleaned


def _discount_share(value, *, today, **_kw):
    raw = _object(value, ("min", "max", "from", "to"))
    cleaned = _range(raw, low=0, high=100, message=_("Give a share from 0 to 100 (%)."))
    if not cleaned:
        raise _Invalid(_("Give a minimum or a maximum share."))
    _period(raw, cleaned, today=today)
    return cleaned


def _rfm(value, **_kw):
    keys = ("r_min", "r_max", "f_min", "f_max", "m_min", "m_max")
    raw = _object(value, keys)
    cleaned = {}
    for score in "rfm":
        cleaned.update(_range(raw, low=1, high=5, message=_("Scores go from 1 to 5."),
                              minimum=f"{score}_min", maximum=f"{score}_max"))
    if not cleaned:
        raise _Invalid(_("Give at least one score range."))
    return {k: cleaned[k] for k in keys if k in cleaned}


def _p_alive(value, **_kw):
    raw = _object(value, ("min", "max"))
    cleaned = _range(raw, low=0, high=100, message=_("Give a probability from 0 to 100 (%)."))
    if not cleaned:
        raise _Invalid(_("Give a minimum or a maximum probability."))
    return cleaned


def _choices(choices, **options):
    return lambda value, **_kw: _list(value, choices=choices, **options)


_CLEAN = {
    "kind": _kind,
    "city": _choices(None, max_length=100),
    "age": _age,
    "tier": _tier,
    "owner": _owner,
    "tags": _choices(None, max_length=40),
    "trips": _trips,
    "destination": _destination,
    "spend": _spend,
    "last_trip": _last_trip,
    "festival": _festival,
    "price_sensitivity": _choices(Preferences.Sensitivity.values),
    "discount_share": _discount_share,
    "airline": lambda value, **_kw: _airlines(value),
    "cabin": _choices(Preferences.Cabin.values),
    "hotel_chain": _choices(None, max_length=40),
    "interest": _choices(None, max_length=40),
    "rfm": _rfm,
    "value_segment": _choices(VALUE_SEGMENTS),
    "quadrant": _choices(QUADRANTS),
    "late_payer": lambda value, **_kw: _bool(value),
    "p_alive": _p_alive,
    "emailable": lambda value, **_kw: _bool(value),
}
assert set(_CLEAN) == set(FILTERS)


def _airlines(value) -> list:
    codes = _list(value, upper=True, max_length=2)
    for code in codes:
        if not _IATA.match(code):
            raise _Invalid(_("Airlines are two-letter IATA codes, e.g. CA or MU."))
    return codes


def validate(definition, *, references: bool = True, today: date | None = None) -> dict:
    """The cleaned definition, or ``ValidationError({filter: [message]})``.

    ``references`` also checks that tier and colleague ids exist (on save and in the builder);
    evaluating a stored definition does not, so a deleted tier simply matches nobody."""
    if definition is None:
        return {}
    if not isinstance(definition, dict):
        raise ValidationError({"definition": [_("The filters are a JSON object, e.g. {\"city\": [\"上海\"]}.")]})
    if today is None:
        from crm.trips.services import agency_today

        today = agency_today()
    cleaned, errors = {}, {}
    for key, value in definition.items():
        if key not in _CLEAN:
            errors[str(key)[:40]] = [_("Unknown filter.")]
            continue
        if _empty(value):
            continue
        try:
            cleaned[key] = _CLEAN[key](value, references=references, today=today)
        except _Invalid as exc:
            errors[key] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return {key: cleaned[key] for key in FILTERS if key in cleaned}
