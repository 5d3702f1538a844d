"""A segment definition → the customers it holds (R-CAMP-1).

``customers_matching(definition)`` is the one path: the builder's live count, a saved segment's
re-evaluation, a campaign's audience and the API all call it. Merged-away records never match.

Every filter narrows one ``Customer`` queryset with a condition on the customer row: a column, a
one-to-one row (preferences, tier, value, consent), or an uncorrelated ``IN (subquery)`` over the
trips (``crm.trips.models.TripSummary``: one narrow row per trip with its item sums, kept by the
database, so no filter reads the booking lines). Nothing is joined in a way that repeats a customer,
so ``.count()`` is one SQL statement and no ``DISTINCT`` is needed.

The trip facts, as documented in docs/segments.md:
- a trip counts when it is confirmed or completed;
- a customer *took part* in a trip they bought (``Trip.customer``) or travel on (``Traveler``):
  trips, destinations, last trip and festival travel use those; spend and discounted fares use the
  trips they bought (who pays);
- a trip's day is its departure, or the day it was confirmed (agency time) when it has none;
- spend is the sum of the items' sell price (revenue) or sell − cost (margin), at face value;
- an item is a *discounted fare* when its details say ``"discounted": "true"`` (also ``1``/``yes``).
"""
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from crm.customers.models import Address, Customer

from .definition import resolve_date, validate

_LIVE = "('confirmed', 'completed')"
COUNT_WORK_MEM = "64MB"


def count_matching(definition: dict) -> int:
    """How many customers a definition selects: one ``SELECT count(*)``, given the memory to group a
    whole agency's trips per customer in one pass (at the default 4 MB, 200,000 trips spill to disk
    and the count takes ~1.5× as long; bench/segments.py)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{COUNT_WORK_MEM}'")
        return customers_matching(definition).count()


def customers_matching(definition: dict) -> QuerySet:
    """The customers a definition selects, as a queryset (not evaluated).

    The definition is validated again here (cheap, and a stored copy may predate a rule), without
    checking that referenced tiers or colleagues still exist: a deleted one simply matches nobody."""
    from crm.trips.services import agency_today

    today = agency_today()
    clean = validate(definition, references=False, today=today)
    customers = Customer.objects.filter(merged_into__isnull=True)
    for key, value in clean.items():
        customers = _APPLY[key](customers, value, today)
    return customers


# --- profile --------------------------------------------------------------------------------------

def _kind(qs, value, today):
    return qs.filter(kind=value)


def _city_forms(cities: list[str]) -> list[str]:
    """Each city with and without the 市 suffix, lower-cased: 上海 matches 上海市 and Shanghai shanghai."""
    forms = set()
    for city in cities:
        base = city.lower().removesuffix("市")
        forms.update({base, base + "市"})
    return sorted(forms)


def _city(qs, value, today):
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


def _age(qs, value, today):
    """Age in whole years today: at least ``min`` → born on or before today − min years; at most
    ``max`` → born after today − (max + 1) years. Customers without a birthday never match."""
    qs = qs.filter(birthday__isnull=False)
    if "min" in value:
        qs = qs.filter(birthday__lte=_years_before(today, value["min"]))
    if "max" in value:
        qs = qs.filter(birthday__gt=_years_before(today, value["max"] + 1))
    return qs


def _tier(qs, value, today):
    return qs.filter(tier_status__tier_id__in=value)


def _owner(qs, value, today):
    ids = [v for v in value if v != "none"]
    condition = Q(owner_id__in=ids) if ids else Q(pk__in=[])
    if "none" in value:
        condition |= Q(owner__isnull=True)
    return qs.filter(condition)


def _tags(qs, value, today):
    return qs.filter(tags__overlap=value)


# --- behaviour: trips -----------------------------------------------------------------------------

def _tables() -> dict:
    from crm.trips.models import Traveler, TripSummary

    return {"summary": TripSummary._meta.db_table, "traveler": Traveler._meta.db_table}


def _zone() -> str:
    from caravan.tenancy import require_agency

    return require_agency().time_zone


# A trip's day: its departure, else the day it was confirmed (or created) in the agency's time zone.
_DAY = "coalesce(s.depart_on, (coalesce(s.confirmed_at, s.created_at) AT TIME ZONE %s)::date)"


def _took_part() -> tuple[str, list]:
    """Rows ``(customer_id, day, depart_on, return_on, destination)``: every live trip once for its
    buyer and once for each other traveler on it."""
    t, zone = _tables(), _zone()
    columns = f"{_DAY} AS day, s.depart_on, s.return_on, s.destination"
    sql = (f"SELECT s.customer_id, {columns} FROM {t['summary']} s WHERE s.status IN {_LIVE} "
           f"UNION ALL SELECT tr.customer_id, {columns} FROM {t['traveler']} tr "
           f"JOIN {t['summary']} s ON s.trip_id = tr.trip_id WHERE s.status IN {_LIVE} AND tr.customer_id <> s.customer_id")
    return sql, [zone, zone]


def _bought() -> tuple[str, list]:
    """Rows ``(customer_id, day, sell, cost, items, discounted_items)``: every live trip, for its buyer,
    with the sums of its items."""
    return (f"SELECT s.customer_id, {_DAY} AS day, s.sell, s.cost, s.items, s.discounted_items "
            f"FROM {_tables()['summary']} s WHERE s.status IN {_LIVE}", [_zone()])


def _period(value: dict, today: date) -> tuple[str, list]:
    """``day`` within the filter's ``from``–``to`` (both included)."""
    parts, params = ["TRUE"], []
    if "from" in value:
        parts.append("p.day >= %s")
        params.append(resolve_date(value["from"], today=today))
    if "to" in value:
        parts.append("p.day <= %s")
        params.append(resolve_date(value["to"], today=today))
    return " AND ".join(parts), params


def _in(qs, sql: str, params: list, *, negate: bool = False) -> QuerySet:
    """Customers whose id is (not) among those an uncorrelated subquery gives.

    Written as ``coalesce(id IN (…), false)`` rather than a bare ``IN`` on purpose: PostgreSQL then
    runs the subquery once and probes its hashed result per customer (a *hashed SubPlan*) instead
    of turning it into a join. The planner cannot estimate how many customers a ``HAVING sum(…) >=``
    keeps, and with several filters combined its guess of "1 row" led to nested loops that re-ran
    a whole-agency aggregate per customer (seconds to minutes on bench/segments.py)."""
    condition = f'coalesce("{Customer._meta.db_table}"."id" IN ({sql}), false)'
    return qs.filter(RawSQL(f"NOT {condition}" if negate else condition, params, output_field=BooleanField()))


def _trips(qs, value, today):
    """Trips taken part in within the period: at least ``min``, at most ``max`` (if given)."""
    rows, row_params = _took_part()
    period, period_params = _period(value, today)
    base, params = f"SELECT p.customer_id FROM ({rows}) p WHERE {period}", [*row_params, *period_params]
    low, high = value["min"], value.get("max")
    if low == 1 and high is None:
        return _in(qs, base, params)
    if low >= 1:
        having = "count(*) >= %s" if high is None else "count(*) BETWEEN %s AND %s"
        return _in(qs, f"{base} GROUP BY p.customer_id HAVING {having}",
                   [*params, low] if high is None else [*params, low, high])
    if high is None:  # at least 0: everybody
        return qs
    # min 0: everybody without more than ``max`` trips, customers without any included
    return _in(qs, f"{base} GROUP BY p.customer_id HAVING count(*) > %s", [*params, high], negate=True)


def _like(term: str) -> str:
    return "%" + term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _destination(qs, value, today):
    """A trip taken part in (within the period) whose destination contains one of the terms, or is
    one of them (``exact``); case-insensitive."""
    rows, row_params = _took_part()
    period, period_params = _period(value, today)
    terms = [t.lower() for t in value["any"]]
    if value.get("exact"):
        match, match_params = "lower(p.destination) = ANY(%s)", [terms]
    else:
        match, match_params = "lower(p.destination) LIKE ANY(%s)", [[_like(t) for t in terms]]
    return _in(qs, f"SELECT p.customer_id FROM ({rows}) p WHERE {period} AND {match}",
               [*row_params, *period_params, *match_params])


def _last_trip(qs, value, today):
    """The day of the latest trip taken part in is on or after ``after`` and before ``before``."""
    rows, params = _took_part()
    having = []
    if "after" in value:
        having.append("max(p.day) >= %s")
        params.append(resolve_date(value["after"], today=today))
    if "before" in value:
        having.append("max(p.day) < %s")
        params.append(resolve_date(value["before"], today=today))
    return _in(qs, f"SELECT p.customer_id FROM ({rows}) p GROUP BY p.customer_id HAVING {' AND '.join(having)}",
               params)


def festival_window(value: dict, today: date) -> tuple[date, date] | None:
    """The break a festival filter means: its year, or last year when none is given."""
    from crm.customers.festivals import festival_break

    return festival_break(value["key"], value.get("year", today.year - 1))


def _festival(qs, value, today):
    """Took part in a trip whose departure–return overlaps the festival's break."""
    window = festival_window(value, today)
    if window is None:
        return qs.none()
    rows, params = _took_part()
    first, last = window
    return _in(qs, f"SELECT p.customer_id FROM ({rows}) p "
                   f"WHERE p.depart_on <= %s AND coalesce(p.return_on, p.depart_on) >= %s", [*params, last, first])


def _per_buyer(value: dict, today: date) -> tuple[str, list]:
    """``SELECT p.customer_id … GROUP BY p.customer_id`` over the buyer's live trips in the period;
    ``p`` has each trip's item sums, so no booking line is read."""
    rows, row_params = _bought()
    period, period_params = _period(value, today)
    return f"SELECT p.customer_id FROM ({rows}) p WHERE {period} GROUP BY p.customer_id", [*row_params, *period_params]


def _spend(qs, value, today):
    amount = "p.sell" if value["basis"] == "revenue" else "p.sell - p.cost"
    sql, params = _per_buyer(value, today)
    low = Decimal(value["min"]) if "min" in value else None
    high = Decimal(value["max"]) if "max" in value else None
    if low is not None and low > 0:
        if high is None:
            return _in(qs, f"{sql} HAVING sum({amount}) >= %s", [*params, low])
        return _in(qs, f"{sql} HAVING sum({amount}) BETWEEN %s AND %s", [*params, low, high])
    if high is None:  # at least 0: everybody
        return qs
    # no positive minimum: everybody not above the maximum, customers who spent nothing included
    return _in(qs, f"{sql} HAVING sum({amount}) > %s", [*params, high], negate=True)


def _discount_share(qs, value, today):
    """The share (%) of the items of the trips they bought in the period that are discounted fares;
    customers without any item never match."""
    sql, params = _per_buyer(value, today)
    having = ["sum(p.items) > 0"]
    if "min" in value:
        having.append("100 * sum(p.discounted_items) >= %s * sum(p.items)")
        params.append(value["min"])
    if "max" in value:
        having.append("100 * sum(p.discounted_items) <= %s * sum(p.items)")
        params.append(value["max"])
    return _in(qs, f"{sql} HAVING {' AND '.join(having)}", params)


def _price_sensitivity(qs, value, today):
    return qs.filter(preferences__price_sensitivity__in=value)


# --- preferences ----------------------------------------------------------------------------------

def _airline(qs, value, today):
    return qs.filter(preferences__airlines__overlap=value)


def _cabin(qs, value, today):
    return qs.filter(preferences__cabin__in=value)


def _hotel_chain(qs, value, today):
    return qs.filter(preferences__hotel_chains__overlap=value)


def _interest(qs, value, today):
    return qs.filter(preferences__interests__overlap=value)


# --- value ----------------------------------------------------------------------------------------

def _rfm(qs, value, today):
    lookups = {}
    for key, bound in value.items():
        score, side = key.split("_")
        lookups[f"value__{score}_score__{'gte' if side == 'min' else 'lte'}"] = bound
    return qs.filter(**lookups)


def _value_segment(qs, value, today):
    return qs.filter(value__segment__in=value)


def _quadrant(qs, value, today):
    return qs.filter(value__quadrant__in=value)


def _late_payer(qs, value, today):
    if value:
        return qs.filter(value__late_payer=True)
    return qs.exclude(value__late_payer=True)


def _p_alive(qs, value, today):
    if "min" in value:
        qs = qs.filter(value__p_alive__gte=value["min"] / 100)
    if "max" in value:
        qs = qs.filter(value__p_alive__lte=value["max"] / 100)
    return qs


# --- contact --------------------------------------------------------------------------------------

def _emailable(qs, value, today):
    from crm.campaigns.consent import emailable

    if value:
        return emailable(qs)
    return qs.exclude(pk__in=emailable().values("pk"))


_APPLY = {
    "kind": _kind, "city": _city, "age": _age, "tier": _tier, "owner": _owner, "tags": _tags,
    "trips": _trips, "destination": _destination, "spend": _spend, "last_trip": _last_trip,
    "festival": _festival, "price_sensitivity": _price_sensitivity, "discount_share": _discount_share,
    "airline": _airline, "cabin": _cabin, "hotel_chain": _hotel_chain, "interest": _interest,
    "rfm": _rfm, "value_segment": _value_segment, "quadrant": _quadrant, "late_payer": _late_payer,
    "p_alive": _p_alive, "emailable": _emailable,
}
