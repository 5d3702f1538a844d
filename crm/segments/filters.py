"""Every segment filter, declared once (R-CAMP-1).

A filter is a key of a segment definition (docs/segments.md). Its ``Filter`` says all there is to
it: the builder group it sits in, its label, how a value given to it is cleaned (``clean``, read by
``definition.validate``), how it narrows the customers (``narrow``, read by
``query.customers_matching``) and how it reads in words (``words``, read by ``selectors.describe``).
``FILTERS`` holds them in the builder's order. A new filter is its three functions and one more
``Filter`` in that list, or, when what it asks belongs to an app built on segments, a ``Filter`` that
app adds with ``register`` from its ``ready()`` (campaigns: ``emailable``); everything reads
``FILTERS`` when called. tests/test_segment_filters.py checks none is half-declared.

``clean(value, *, references, today)`` returns plain JSON or raises ``values.Invalid``;
``references`` also checks that tier and colleague ids exist (on save and in the builder, not when a
stored definition is evaluated). ``narrow(customers, value, today)`` adds a condition on the
customer row only: a column, a one-to-one row (preferences, tier, value, consent) or an
uncorrelated ``IN (subquery)`` over the trips (``rows.in_subquery``), so nothing repeats a customer
and a count needs no ``DISTINCT``.
"""
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Callable

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from caravan.formatting import day as date_shown
from crm.customers.festivals import FESTIVALS, festival_break
from crm.customers.models import Address, Customer, Preferences
from crm.value.models import CustomerValue
from crm.value.selectors import in_quadrants

from .rows import TripTest, festival_window, in_period, in_subquery, like, per_buyer, took_part
from .values import (Invalid, clean_bool, clean_ids, clean_int, clean_list, clean_money, clean_object, clean_period,
                     clean_range, resolve_date)

GROUPS = {  # the builder's sections, in order
    "profile": gettext_lazy("Profile"),
    "behaviour": gettext_lazy("Behaviour"),
    "preferences": gettext_lazy("Preferences"),
    "value": gettext_lazy("Value"),
    "contact": gettext_lazy("Contact"),
}
SPEND_BASIS = ("revenue", "margin")
_IATA = re.compile(r"^[A-Z0-9]{2}$")
VALUE_SEGMENTS = tuple(CustomerValue.Segment.values)
QUADRANTS = tuple(CustomerValue.Quadrant.values)


@dataclass(frozen=True)
class Filter:
    key: str
    group: str  # a key of GROUPS
    label: Any  # lazy text
    clean: Callable[..., Any]  # (value, *, references: bool, today: date) -> cleaned JSON; raises Invalid
    narrow: Callable[[QuerySet, Any, date], QuerySet]  # (customers, cleaned value, today) -> customers
    words: Callable[[Any, date], str]  # (cleaned value, today) -> what it asks, for people
    # Trip filters: (cleaned value, today) -> the same question as a ``rows.TripTest``, or None when this
    # value cannot be one (it also keeps customers without trips). Used when a definition has two or more
    # trip filters, which are then answered by one pass over the trips (``rows.all_of``); ``narrow`` alone
    # otherwise. Both must select the same customers (tests/test_segment_sql.py).
    trip_test: Callable[[Any, date], Any] | None = None
    # Its condition costs more per customer than comparing a column (an array overlap, a subquery):
    # ``query`` adds it after the plain comparisons, so PostgreSQL, which keeps the written order of
    # conditions of equal estimated cost, tests the cheap ones first (bench/segments.py: business/first
    # on CA or MU, ~1/3 faster). Trip filters are subqueries and always go last.
    late: bool = False


# --- how values read ------------------------------------------------------------------------------

def _day(value: str, today: date) -> str:
    """``2025-05-01`` as a date; an offset such as ``-12m`` as "12 months ago (date)"."""
    day = resolve_date(value, today=today)
    shown = date_shown(day)
    if value[0].isdigit() and len(value) == 10:
        return shown
    sign, amount, unit = (value[0], value[1:-1], value[-1]) if value[0] in "+-" else ("+", value[:-1], value[-1])
    names = {"d": _("days"), "w": _("weeks"), "m": _("months"), "y": _("years")}
    if amount == "0":
        return _("today (%(date)s)") % {"date": shown}
    words = (_("%(n)s %(unit)s ago") if sign == "-" else _("in %(n)s %(unit)s")) % {"n": amount, "unit": names[unit]}
    return f"{words} ({shown})"


def _period_words(value: dict, today: date) -> str:
    if "from" in value and "to" in value:
        return _("from %(a)s to %(b)s") % {"a": _day(value["from"], today), "b": _day(value["to"], today)}
    if "from" in value:
        return _("since %(a)s") % {"a": _day(value["from"], today)}
    if "to" in value:
        return _("until %(b)s") % {"b": _day(value["to"], today)}
    return _("ever")


def _range_words(value: dict, unit: str = "", low="min", high="max") -> str:
    a, b = value.get(low), value.get(high)
    if a is not None and b is not None:
        return f"{a}–{b}{unit}"
    if a is not None:
        return f"≥ {a}{unit}"
    return f"≤ {b}{unit}"


def _listed(value, today) -> str:
    return ", ".join(value)


def _labelled(choices) -> Callable[[Any, date], str]:
    """Words for a choice (or a list of choices): their labels."""
    def words(value, today):
        labels = {str(k): str(label) for k, label in choices}
        return ", ".join(labels.get(v, v) for v in ([value] if isinstance(value, str) else value))
    return words


def yes_no(value, today) -> str:
    return _("yes") if value else _("no")


def _choices(choices, **options) -> Callable[..., list]:
    """``clean`` for a list of texts, from ``choices`` when given."""
    return lambda value, **_kw: clean_list(value, choices=choices, **options)


def yes_or_no(value, **_kw) -> bool:
    return clean_bool(value)


def _min_max(*, high: int, message, missing) -> Callable[..., dict]:
    """``clean`` for ``{"min": …, "max": …}``, whole numbers from 0 to ``high``, at least one given
    (the messages are lazy: read in the language of the request)."""
    def clean(value, **_kw):
        cleaned = clean_range(clean_object(value, ("min", "max")), low=0, high=high, message=str(message))
        if not cleaned:
            raise Invalid(str(missing))
        return cleaned
    return clean


# --- profile --------------------------------------------------------------------------------------

def _kind_clean(value, **_kw):
    if value not in Customer.Kind.values:
        raise Invalid(_("Choose individuals or corporate accounts."))
    return value


def _kind_narrow(qs, value, today):
    return qs.filter(kind=value)


def _city_forms(cities: list[str]) -> list[str]:
    """Each city with and without the 市 suffix, lower-cased: 上海 matches 上海市 and Shanghai shanghai."""
    forms = set()
    for city in cities:
        base = city.lower().removesuffix("市")
        forms.update({base, base + "市"})
    return sorted(forms)


def _city_narrow(qs, value, today):
    from django.db.models.functions import Lower

    # An uncorrelated IN (hashed), not a correlated EXISTS: next to the trip filters, whose row counts
    # the planner cannot estimate, a correlated address check could become a nested loop over addresses.
    addresses = Address.objects.annotate(city_lower=Lower("city")).filter(city_lower__in=_city_forms(value))
    return qs.filter(pk__in=addresses.values("customer_id"))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _age_narrow(qs, value, today):
    """Age in whole years today: at least ``min`` → born on or before today − min years; at most
    ``max`` → born after today − (max + 1) years. Customers without a birthday never match."""
    bounds = {}  # one filter(): each call clones the queryset (a tenth of a small count's Python)
    if "min" in value:
        bounds["birthday__lte"] = _years_before(today, value["min"])
    if "max" in value:
        bounds["birthday__gt"] = _years_before(today, value["max"] + 1)
    return qs.filter(**bounds) if bounds else qs.filter(birthday__isnull=False)  # a bound never matches NULL


def _tier_clean(value, *, references, **_kw):
    from crm.tiers.models import ServiceTier

    ids = clean_ids(value)
    if references and ids:
        missing = set(ids) - set(ServiceTier.objects.filter(pk__in=ids).values_list("pk", flat=True))
        if missing:
            raise Invalid(_("There is no service tier with the id %(ids)s.")
                          % {"ids": ", ".join(str(i) for i in sorted(missing))})
    return ids


def _tier_narrow(qs, value, today):
    return qs.filter(tier_status__tier_id__in=value)


def _tier_words(value, today):
    from crm.tiers.models import ServiceTier

    names = dict(ServiceTier.objects.filter(pk__in=value).values_list("pk", "name"))
    return ", ".join(names.get(pk, _("(deleted tier)")) for pk in value)


def _owner_clean(value, *, references, **_kw):
    from accounts.models import User

    if isinstance(value, (int, str)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise Invalid(_("Give a list of account manager ids, or \"none\" for customers without one."))
    nobody = any(isinstance(v, str) and v.strip().lower() == "none" for v in value)
    ids = clean_ids([v for v in value if not (isinstance(v, str) and v.strip().lower() == "none")])
    if references and ids:
        missing = set(ids) - set(User.objects.filter(pk__in=ids, is_operator=False).values_list("pk", flat=True))
        if missing:
            raise Invalid(_("There is no colleague with the id %(ids)s.")
                          % {"ids": ", ".join(str(i) for i in sorted(missing))})
    return ids + (["none"] if nobody else [])


def _owner_narrow(qs, value, today):
    ids = [v for v in value if v != "none"]
    condition = Q(owner_id__in=ids) if ids else Q(pk__in=[])
    if "none" in value:
        condition |= Q(owner__isnull=True)
    return qs.filter(condition)


def _owner_words(value, today):
    from accounts.models import User

    ids = [v for v in value if v != "none"]
    people = {u.pk: u.full_name or u.email for u in User.objects.filter(pk__in=ids)}
    return ", ".join([people.get(pk, f"#{pk}") for pk in ids] + ([_("nobody")] if "none" in value else []))


def _tags_narrow(qs, value, today):
    return qs.filter(tags__overlap=value)


# --- behaviour ------------------------------------------------------------------------------------

def _trips_clean(value, *, today, **_kw):
    raw = clean_object(value, ("min", "max", "from", "to"))
    cleaned = clean_range(raw, low=0, high=10000, message=_("Give a number of trips from 0 to 10000."))
    if "min" not in cleaned:
        cleaned["min"] = 0 if "max" in cleaned else 1
    clean_period(raw, cleaned, today=today)
    return cleaned


def _trips_narrow(qs, value, today):
    """Trips taken part in within the period: at least ``min``, at most ``max`` (if given)."""
    rows, row_params = took_part()
    period, period_params = in_period(value, today)
    base, params = f"SELECT p.customer_id FROM ({rows}) p WHERE {period}", [*row_params, *period_params]
    low, high = value["min"], value.get("max")
    if low == 1 and high is None:
        return in_subquery(qs, f"{base} GROUP BY p.customer_id", params)
    if low >= 1:
        having = "count(*) >= %s" if high is None else "count(*) BETWEEN %s AND %s"
        return in_subquery(qs, f"{base} GROUP BY p.customer_id HAVING {having}",
                           [*params, low] if high is None else [*params, low, high])
    if high is None:  # at least 0: everybody
        return qs
    # min 0: everybody without more than ``max`` trips, customers without any included
    return in_subquery(qs, f"{base} GROUP BY p.customer_id HAVING count(*) > %s", [*params, high], negate=True)


def _trips_test(value, today):
    low, high = value["min"], value.get("max")
    if low < 1:  # keeps customers without trips: only as its own subquery
        return None
    period, params = in_period(value, today)
    if high is None:
        return TripTest(period, params, ("count(*)",), "{0} >= %s", [low])
    return TripTest(period, params, ("count(*)",), "{0} BETWEEN %s AND %s", [low, high])


def _trips_words(value, today):
    return _("%(range)s trips, %(period)s") % {"range": _range_words(value), "period": _period_words(value, today)}


def _destination_clean(value, *, today, **_kw):
    if isinstance(value, (str, list)):
        value = {"any": value}
    raw = clean_object(value, ("any", "exact", "from", "to"))
    if "any" not in raw:
        raise Invalid(_("Give at least one destination, e.g. 日本 or Bali."))
    cleaned = {"any": clean_list(raw["any"])}
    if raw.get("exact") is not None and clean_bool(raw["exact"]):
        cleaned["exact"] = True
    clean_period(raw, cleaned, today=today)
    return cleaned


def _destination_narrow(qs, value, today):
    """A trip taken part in (within the period) whose destination contains one of the terms, or is
    one of them (``exact``); case-insensitive."""
    rows, row_params = took_part()
    match, match_params = _destination_rows(value, today)
    return in_subquery(qs, f"SELECT p.customer_id FROM ({rows}) p WHERE {match} GROUP BY p.customer_id",
                       [*row_params, *match_params])


def _destination_rows(value, today) -> tuple[str, list]:
    """The trips in the period whose destination contains (or is) one of the terms."""
    period, period_params = in_period(value, today)
    terms = [t.lower() for t in value["any"]]
    if value.get("exact"):
        match, match_params = "lower(p.destination) = ANY(%s)", [terms]
    else:
        match, match_params = "lower(p.destination) LIKE ANY(%s)", [[like(t) for t in terms]]
    return f"{period} AND {match}", [*period_params, *match_params]


def _destination_test(value, today):
    where, params = _destination_rows(value, today)
    return TripTest(where, params, ("count(*)",), "{0} > 0", [])


def _destination_words(value, today):
    how = _("exactly") if value.get("exact") else _("contains")
    return f"{how} {' / '.join(value['any'])}, {_period_words(value, today)}"


def _spend_clean(value, *, today, **_kw):
    raw = clean_object(value, ("basis", "min", "max", "from", "to"))
    basis = raw.get("basis", "revenue")
    if basis not in SPEND_BASIS:
        raise Invalid(_("Measure spend as revenue (sell price) or margin."))
    cleaned = {"basis": basis}
    for key in ("min", "max"):
        if key in raw:
            cleaned[key] = clean_money(raw[key])
    if "min" not in cleaned and "max" not in cleaned:
        raise Invalid(_("Give a minimum or a maximum amount."))
    if "min" in cleaned and "max" in cleaned and Decimal(cleaned["min"]) > Decimal(cleaned["max"]):
        raise Invalid(_("The minimum is above the maximum."))
    clean_period(raw, cleaned, today=today)
    return cleaned


def _spend_sum(value) -> str:
    """The spend of the rows, summed in whole cents: exact (the amounts have two decimals, and so do the
    filter's: ``values.clean_money``) and added up as integers, which PostgreSQL does about a quarter
    faster than numeric over a whole agency's trips (bench/segments.py)."""
    column = "p.sell" if value["basis"] == "revenue" else "(p.sell - p.cost)"
    return f"sum(({column} * 100)::bigint)"


def _cents(value, key) -> int | None:
    return int(Decimal(value[key]) * 100) if key in value else None


def _spend_narrow(qs, value, today):
    amount = _spend_sum(value)
    sql, params = per_buyer(value, today)
    low, high = _cents(value, "min"), _cents(value, "max")
    if low is not None and low > 0:
        if high is None:
            return in_subquery(qs, f"{sql} HAVING {amount} >= %s", [*params, low])
        return in_subquery(qs, f"{sql} HAVING {amount} BETWEEN %s AND %s", [*params, low, high])
    if high is None:  # at least 0: everybody
        return qs
    # no positive minimum: everybody not above the maximum, customers who spent nothing included
    return in_subquery(qs, f"{sql} HAVING {amount} > %s", [*params, high], negate=True)


def _spend_test(value, today):
    low, high = _cents(value, "min"), _cents(value, "max")
    if low is None or low <= 0:  # keeps customers who spent nothing: only as its own subquery
        return None
    period, params = in_period(value, today)
    if high is not None:
        return TripTest(period, params, (_spend_sum(value),), "{0} BETWEEN %s AND %s", [low, high], bought=True)
    return TripTest(period, params, (_spend_sum(value),), "{0} >= %s", [low], bought=True)


def _spend_words(value, today):
    basis = _("margin") if value["basis"] == "margin" else _("revenue")
    return f"{basis} {_range_words(value)}, {_period_words(value, today)}"


def _last_trip_clean(value, *, today, **_kw):
    raw = clean_object(value, ("after", "before"))
    cleaned = {}
    clean_period(raw, cleaned, today=today, first="after", last="before")
    if not cleaned:
        raise Invalid(_("Give a day the last trip is after, before, or both."))
    return cleaned


def _last_trip_narrow(qs, value, today):
    """The day of the latest trip taken part in is on or after ``after`` and before ``before``."""
    rows, params = took_part()
    having = []
    if "after" in value:
        having.append("max(p.day) >= %s")
        params.append(resolve_date(value["after"], today=today))
    if "before" in value:
        having.append("max(p.day) < %s")
        params.append(resolve_date(value["before"], today=today))
    return in_subquery(qs, f"SELECT p.customer_id FROM ({rows}) p GROUP BY p.customer_id "
                           f"HAVING {' AND '.join(having)}", params)


def _last_trip_test(value, today):
    tests, params = [], []
    if "after" in value:
        tests.append("{0} >= %s")
        params.append(resolve_date(value["after"], today=today))
    if "before" in value:
        tests.append("{0} < %s")
        params.append(resolve_date(value["before"], today=today))
    return TripTest("TRUE", [], ("max(p.day)",), " AND ".join(tests), params)


def _last_trip_words(value, today):
    parts = []
    if "after" in value:
        parts.append(_("on or after %(d)s") % {"d": _day(value["after"], today)})
    if "before" in value:
        parts.append(_("before %(d)s") % {"d": _day(value["before"], today)})
    return _(" and ").join(parts)


def _festival_clean(value, *, today, **_kw):
    if isinstance(value, str):
        value = {"key": value}
    raw = clean_object(value, ("key", "year"))
    if raw.get("key") not in FESTIVALS:
        raise Invalid(_("Choose a festival."))
    cleaned = {"key": raw["key"]}
    if "year" in raw:
        cleaned["year"] = clean_int(raw["year"], low=2000, high=today.year + 1,
                                    message=_("Give a year from 2000 to next year."))
    if festival_break(cleaned["key"], cleaned.get("year", today.year - 1)) is None:
        raise Invalid(_("The holiday calendar has no dates for this festival in that year."))
    return cleaned


def _festival_narrow(qs, value, today):
    """Took part in a trip whose departure–return overlaps the festival's break."""
    window = festival_window(value, today)
    if window is None:
        return qs.none()
    rows, params = took_part()
    first, last = window
    return in_subquery(qs, f"SELECT p.customer_id FROM ({rows}) p "
                           f"WHERE p.depart_on <= %s AND coalesce(p.return_on, p.depart_on) >= %s "
                           f"GROUP BY p.customer_id", [*params, last, first])


def _festival_test(value, today):
    window = festival_window(value, today)
    if window is None:  # matches nobody: narrow says so
        return None
    first, last = window
    return TripTest("p.depart_on <= %s AND coalesce(p.return_on, p.depart_on) >= %s", [last, first],
                    ("count(*)",), "{0} > 0", [])


def _festival_words(value, today):
    window = festival_window(value, today)
    text = f"{FESTIVALS[value['key']][0]} {value.get('year', today.year - 1)}"
    if window:
        text += f" ({date_shown(window[0])}–{date_shown(window[1])})"
    if "year" not in value:
        text += " · " + _("always last year")
    return text


def _price_sensitivity_narrow(qs, value, today):
    return qs.filter(preferences__price_sensitivity__in=value)


def _discount_share_clean(value, *, today, **_kw):
    raw = clean_object(value, ("min", "max", "from", "to"))
    cleaned = clean_range(raw, low=0, high=100, message=_("Give a share from 0 to 100 (%)."))
    if not cleaned:
        raise Invalid(_("Give a minimum or a maximum share."))
    clean_period(raw, cleaned, today=today)
    return cleaned


def _discount_share_narrow(qs, value, today):
    """The share (%) of the items of the trips they bought in the period that are discounted fares;
    customers without any item never match."""
    sql, params = per_buyer(value, today)
    having = ["sum(p.items) > 0"]
    if "min" in value:
        having.append("100 * sum(p.discounted_items) >= %s * sum(p.items)")
        params.append(value["min"])
    if "max" in value:
        having.append("100 * sum(p.discounted_items) <= %s * sum(p.items)")
        params.append(value["max"])
    return in_subquery(qs, f"{sql} HAVING {' AND '.join(having)}", params)


def _discount_share_test(value, today):
    period, params = in_period(value, today)
    tests, test_params = ["{0} > 0"], []
    if "min" in value:
        tests.append("100 * {1} >= %s * {0}")
        test_params.append(value["min"])
    if "max" in value:
        tests.append("100 * {1} <= %s * {0}")
        test_params.append(value["max"])
    return TripTest(period, params, ("sum(p.items)", "sum(p.discounted_items)"), " AND ".join(tests), test_params,
                    bought=True)


def _discount_share_words(value, today):
    return _("%(range)s of booked items, %(period)s") % {"range": _range_words(value, "%"),
                                                        "period": _period_words(value, today)}


# --- preferences ----------------------------------------------------------------------------------

def _airline_clean(value, **_kw) -> list:
    codes = clean_list(value, upper=True, max_length=2)
    for code in codes:
        if not _IATA.match(code):
            raise Invalid(_("Airlines are two-letter IATA codes, e.g. CA or MU."))
    return codes


def _overlaps(field: str) -> Callable[[QuerySet, Any, date], QuerySet]:
    """``narrow`` for an array preference: any of the values."""
    return lambda qs, value, today: qs.filter(**{f"preferences__{field}__overlap": value})


def _cabin_narrow(qs, value, today):
    return qs.filter(preferences__cabin__in=value)


# --- value ----------------------------------------------------------------------------------------

def _rfm_clean(value, **_kw):
    keys = ("r_min", "r_max", "f_min", "f_max", "m_min", "m_max")
    raw = clean_object(value, keys)
    cleaned = {}
    for score in "rfm":
        cleaned.update(clean_range(raw, low=1, high=5, message=_("Scores go from 1 to 5."),
                                   minimum=f"{score}_min", maximum=f"{score}_max"))
    if not cleaned:
        raise Invalid(_("Give at least one score range."))
    return {k: cleaned[k] for k in keys if k in cleaned}


def _rfm_narrow(qs, value, today):
    lookups = {}
    for key, bound in value.items():
        score, side = key.split("_")
        lookups[f"value__{score}_score__{'gte' if side == 'min' else 'lte'}"] = bound
    return qs.filter(**lookups)


def _rfm_words(value, today):
    return " · ".join(f"{score.upper()} {_range_words(value, low=f'{score}_min', high=f'{score}_max')}"
                      for score in "rfm" if f"{score}_min" in value or f"{score}_max" in value)


def _value_segment_narrow(qs, value, today):
    return qs.filter(value__segment__in=value)


def _quadrant_narrow(qs, value, today):
    return qs.filter(in_quadrants(value))  # the customer list's and the dashboard's rule too


def _late_payer_narrow(qs, value, today):
    if value:
        return qs.filter(value__late_payer=True)
    return qs.exclude(value__late_payer=True)


def _p_alive_narrow(qs, value, today):
    if "min" in value:
        qs = qs.filter(value__p_alive__gte=value["min"] / 100)
    if "max" in value:
        qs = qs.filter(value__p_alive__lte=value["max"] / 100)
    return qs


# --- the filters, in the builder's order ------------------------------------------------------------

FILTERS: dict[str, Filter] = {f.key: f for f in (
    Filter("kind", "profile", gettext_lazy("Kind"), _kind_clean, _kind_narrow, _labelled(Customer.Kind.choices)),
    Filter("city", "profile", gettext_lazy("City"), _choices(None, max_length=100), _city_narrow, _listed, late=True),
    Filter("age", "profile", gettext_lazy("Age"),
           _min_max(high=120, message=gettext_lazy("Give an age from 0 to 120."),
                    missing=gettext_lazy("Give a minimum or a maximum age.")),
           _age_narrow, lambda value, today: _range_words(value)),
    Filter("tier", "profile", gettext_lazy("Service tier"), _tier_clean, _tier_narrow, _tier_words),
    Filter("owner", "profile", gettext_lazy("Account manager"), _owner_clean, _owner_narrow, _owner_words),
    Filter("tags", "profile", gettext_lazy("Tags"), _choices(None, max_length=40), _tags_narrow, _listed, late=True),
    Filter("trips", "behaviour", gettext_lazy("Trips"), _trips_clean, _trips_narrow, _trips_words, _trips_test),
    Filter("destination", "behaviour", gettext_lazy("Destination"), _destination_clean, _destination_narrow,
           _destination_words, _destination_test),
    Filter("spend", "behaviour", gettext_lazy("Spend"), _spend_clean, _spend_narrow, _spend_words, _spend_test),
    Filter("last_trip", "behaviour", gettext_lazy("Last trip"), _last_trip_clean, _last_trip_narrow, _last_trip_words,
           _last_trip_test),
    Filter("festival", "behaviour", gettext_lazy("Travelled at a festival"), _festival_clean, _festival_narrow,
           _festival_words, _festival_test),
    Filter("price_sensitivity", "behaviour", gettext_lazy("Price sensitivity"),
           _choices(Preferences.Sensitivity.values), _price_sensitivity_narrow,
           _labelled(Preferences.Sensitivity.choices)),
    Filter("discount_share", "behaviour", gettext_lazy("Discounted fares"), _discount_share_clean,
           _discount_share_narrow, _discount_share_words, _discount_share_test),
    Filter("airline", "preferences", gettext_lazy("Preferred airline"), _airline_clean, _overlaps("airlines"), _listed,
           late=True),
    Filter("cabin", "preferences", gettext_lazy("Cabin"), _choices(Preferences.Cabin.values), _cabin_narrow,
           _labelled(Preferences.Cabin.choices)),
    Filter("hotel_chain", "preferences", gettext_lazy("Hotel chain"), _choices(None, max_length=40),
           _overlaps("hotel_chains"), _listed, late=True),
    Filter("interest", "preferences", gettext_lazy("Interests"), _choices(None, max_length=40),
           _overlaps("interests"), _listed, late=True),
    Filter("rfm", "value", gettext_lazy("RFM scores"), _rfm_clean, _rfm_narrow, _rfm_words),
    Filter("value_segment", "value", gettext_lazy("Value segment"), _choices(VALUE_SEGMENTS), _value_segment_narrow,
           _labelled(CustomerValue.Segment.choices)),
    Filter("quadrant", "value", gettext_lazy("Scale × loyalty"), _choices(QUADRANTS), _quadrant_narrow,
           _labelled(CustomerValue.Quadrant.choices)),
    Filter("late_payer", "value", gettext_lazy("Late payer"), yes_or_no, _late_payer_narrow, yes_no),
    Filter("p_alive", "value", gettext_lazy("Probability still active"),
           _min_max(high=100, message=gettext_lazy("Give a probability from 0 to 100 (%)."),
                    missing=gettext_lazy("Give a minimum or a maximum probability.")),
           _p_alive_narrow, lambda value, today: _range_words(value, "%")),
)}


def register(f: Filter) -> None:
    """Add a filter that an app built on segments owns (from its ``AppConfig.ready()``; it goes last in
    the builder's order). Campaigns adds ``emailable``: consent is theirs, and segments import no campaigns."""
    if f.group not in GROUPS:
        raise ValueError(f"segment filter {f.key}: no builder group {f.group!r}")
    FILTERS[f.key] = f
