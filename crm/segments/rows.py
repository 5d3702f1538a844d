"""The SQL the trip filters are built from: the rows of live trips per customer, a period on them,
and the one way a filter narrows the customers by a subquery (``in_subquery``).

The trip facts, as documented in docs/segments.md:
- a trip counts when it is confirmed or completed;
- a customer *took part* in a trip they bought (``Trip.customer``) or travel on (``Traveler``):
  trips, destinations, last trip and festival travel use those; spend and discounted fares use the
  trips they bought (who pays);
- a trip's day is its departure, or the day it was confirmed (agency time) when it has none;
- spend is the sum of the items' sell price (revenue) or sell − cost (margin), at face value;
- an item is a *discounted fare* when its details say ``"discounted": "true"`` (also ``1``/``yes``).

Trips are read from ``crm.trips.models.TripSummary`` (one narrow row per trip with its item sums,
kept by the database), so no filter reads the booking lines.
"""
from dataclasses import dataclass
from datetime import date

from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from crm.customers.models import Customer

from .values import resolve_date

_LIVE = "('confirmed', 'completed')"


def _tables() -> dict:
    from crm.trips.models import Traveler, TripSummary

    return {"summary": TripSummary._meta.db_table, "traveler": Traveler._meta.db_table}


def _zone() -> str:
    from caravan.tenancy import require_agency

    return require_agency().time_zone


# A trip's day: its departure, else the day it was confirmed (or created) in the agency's time zone.
_DAY = "coalesce(s.depart_on, (coalesce(s.confirmed_at, s.created_at) AT TIME ZONE %s)::date)"


def took_part(*, with_sums: bool = False) -> tuple[str, list]:
    """Rows ``(customer_id, day, depart_on, return_on, destination)``: every live trip once for its
    buyer and once for each other traveler on it. ``with_sums`` adds ``buyer`` (true on the buyer's
    row) and the trip's ``sell, cost, items, discounted_items``, so the rows of ``bought()`` are
    those with ``buyer``."""
    t, zone = _tables(), _zone()
    columns = f"{_DAY} AS day, s.depart_on, s.return_on, s.destination"
    sums = ", s.sell, s.cost, s.items, s.discounted_items" if with_sums else ""
    sql = (f"SELECT s.customer_id, {columns}{', true AS buyer' if with_sums else ''}{sums} "
           f"FROM {t['summary']} s WHERE s.status IN {_LIVE} "
           f"UNION ALL SELECT tr.customer_id, {columns}{', false' if with_sums else ''}{sums} FROM {t['traveler']} tr "
           f"JOIN {t['summary']} s ON s.trip_id = tr.trip_id WHERE s.status IN {_LIVE} AND tr.customer_id <> s.customer_id")
    return sql, [zone, zone]


def bought() -> tuple[str, list]:
    """Rows ``(customer_id, day, sell, cost, items, discounted_items)``: every live trip, for its buyer,
    with the sums of its items."""
    return (f"SELECT s.customer_id, {_DAY} AS day, s.sell, s.cost, s.items, s.discounted_items "
            f"FROM {_tables()['summary']} s WHERE s.status IN {_LIVE}", [_zone()])


def in_period(value: dict, today: date) -> tuple[str, list]:
    """``day`` within the filter's ``from``–``to`` (both included)."""
    parts, params = ["TRUE"], []
    if "from" in value:
        parts.append("p.day >= %s")
        params.append(resolve_date(value["from"], today=today))
    if "to" in value:
        parts.append("p.day <= %s")
        params.append(resolve_date(value["to"], today=today))
    return " AND ".join(parts), params


def per_buyer(value: dict, today: date) -> tuple[str, list]:
    """``SELECT p.customer_id … GROUP BY p.customer_id`` over the buyer's live trips in the period;
    ``p`` has each trip's item sums, so no booking line is read."""
    rows, row_params = bought()
    period, period_params = in_period(value, today)
    return f"SELECT p.customer_id FROM ({rows}) p WHERE {period} GROUP BY p.customer_id", [*row_params, *period_params]


@dataclass(frozen=True)
class TripTest:
    """A trip filter as a test on per-customer sums, so that several trip filters of one definition
    are answered by one pass over the trips (``all_of``) instead of one subquery each.

    ``where`` (over ``p``, with ``where_params``) picks the rows the filter looks at (``"TRUE"`` for
    all); ``bought`` limits them to the trips the customer bought (spend, discounted fares);
    ``sums`` are aggregates over those rows (``count(*)``, ``sum(p.sell)``, ``max(p.day)``) and
    ``test`` a condition on them, naming them ``{0}``, ``{1}``…, with ``test_params``. A customer
    without any such row fails the test (a count of 0 or a sum of NULL never passes one), as with the
    filter's own subquery; filters that must also keep customers without rows give no ``TripTest``."""
    where: str
    where_params: list
    sums: tuple[str, ...]
    test: str
    test_params: list
    bought: bool = False


def all_of(tests: list[TripTest], *, among: tuple[str, list] | None = None) -> tuple[str, list]:
    """``SELECT customer_id`` of the customers passing every test, in one ``GROUP BY`` over the rows
    they took part in (over the trips they bought only, when every test reads those).

    ``among`` (``SELECT id …`` and its parameters): only the trips of these customers are grouped —
    those the definition's other filters keep, so a definition that also asks a city and a cabin
    adds up the trips of a few hundred customers, not of the whole agency. It changes nothing in the
    result (the filters are ANDed) and is an uncorrelated ``IN`` inside the subquery, which still
    runs once."""
    if all(t.bought for t in tests):
        rows, row_params = bought()
        buyer = ""
    else:
        rows, row_params = took_part(with_sums=True)
        buyer = " AND p.buyer"
    columns, column_params, picks, pick_params, conditions, condition_params = [], [], [], [], [], []
    for i, t in enumerate(tests):
        where = t.where
        if t.bought and buyer:
            where = "p.buyer" if where == "TRUE" else f"{where} AND p.buyer"
        names = []
        for j, expression in enumerate(t.sums):
            name = f"t{i}_{j}"
            if where == "TRUE" or len(tests) == 1:  # one test: the WHERE below already picks its rows
                columns.append(f"{expression} AS {name}")
            else:
                columns.append(f"{expression} FILTER (WHERE {where}) AS {name}")
                column_params.extend(t.where_params)
            names.append(f"g.{name}")
        picks.append(where)
        pick_params.extend(t.where_params)
        conditions.append("(" + t.test.format(*names) + ")")
        condition_params.extend(t.test_params)
    if "TRUE" in picks:  # one test reads every row
        pick, pick_params = "TRUE", []
    else:
        pick = " OR ".join(f"({w})" for w in picks)
    if among is not None:
        pick, pick_params = f"({pick}) AND p.customer_id IN ({among[0]})", [*pick_params, *among[1]]
    sql = (f"SELECT g.customer_id FROM (SELECT p.customer_id, {', '.join(columns)} FROM ({rows}) p "
           f"WHERE {pick} GROUP BY p.customer_id) g WHERE {' AND '.join(conditions)}")
    return sql, [*column_params, *row_params, *pick_params, *condition_params]


def in_subquery(qs, sql: str, params: list, *, negate: bool = False) -> QuerySet:
    """Customers whose id is (not) among those an uncorrelated subquery gives.

    Written as ``coalesce(id IN (…), false)`` rather than a bare ``IN`` on purpose: PostgreSQL then
    runs the subquery once and probes its hashed result per customer (a *hashed SubPlan*) instead
    of turning it into a join. The planner cannot estimate how many customers a ``HAVING sum(…) >=``
    keeps, and with several filters combined its guess of "1 row" led to nested loops that re-ran
    a whole-agency aggregate per customer (seconds to minutes on bench/segments.py).

    Subqueries that only ask "any such trip" still end in ``GROUP BY customer_id``: PostgreSQL can
    then de-duplicate in parallel workers before the hash is built (festival travel at 100,000
    customers: ~20 % faster, bench/segments.py)."""
    condition = f'coalesce("{Customer._meta.db_table}"."id" IN ({sql}), false)'
    return qs.filter(RawSQL(f"NOT {condition}" if negate else condition, params, output_field=BooleanField()))


def like(term: str) -> str:
    """A ``LIKE`` pattern for "contains ``term``", case-folded, with its wildcards escaped."""
    return "%" + term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def festival_window(value: dict, today: date) -> tuple[date, date] | None:
    """The break a festival filter means: its year, or last year when none is given."""
    from crm.customers.festivals import festival_break

    return festival_break(value["key"], value.get("year", today.year - 1))
