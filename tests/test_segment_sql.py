"""The SQL of segment counts (R-CAMP-1, issue 22): on one small agency with every kind of trip (bought,
travelled on, cancelled, a quote, without a departure, long ago, over a festival, with discounted fares),
- each filter kind selects the customers that hand-written SQL over the same tables selects;
- two or more trip filters in one definition are answered by one pass over the trips (one ``GROUP BY``)
  and select exactly the customers each filter selects on its own, intersected;
- a count is one ``SELECT`` (and the ``SET LOCAL`` that gives it memory)."""
from datetime import date, timedelta
from decimal import Decimal
from itertools import combinations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.festivals import festival_break
from crm.customers.models import ChangeLog
from crm.segments.definition import resolve_date, validate
from crm.segments.query import count_matching, customers_matching
from crm.trips import services as trips
from crm.trips.models import Trip

pytestmark = pytest.mark.django_db

LIVE = "s.status IN ('confirmed', 'completed')"
DAY = "coalesce(s.depart_on, (coalesce(s.confirmed_at, s.created_at) AT TIME ZONE %(zone)s)::date)"
# Written out by hand: the trips each customer took part in (bought, or travels on someone else's).
TOOK_PART = f"""
    SELECT s.customer_id, {DAY} AS day, s.depart_on, s.return_on, s.destination FROM trips_tripsummary s WHERE {LIVE}
    UNION ALL
    SELECT t.customer_id, {DAY}, s.depart_on, s.return_on, s.destination FROM trips_traveler t
    JOIN trips_tripsummary s ON s.trip_id = t.trip_id WHERE {LIVE} AND t.customer_id <> s.customer_id"""
BOUGHT = f"SELECT s.customer_id, {DAY} AS day, s.sell, s.cost, s.items, s.discounted_items FROM trips_tripsummary s WHERE {LIVE}"

# Trip filters, each in one or two of its forms; (definition, hand-written SQL of the customer ids).
TRIP_FILTERS = [
    ({"trips": {"from": "-12m"}}, f"SELECT customer_id FROM ({TOOK_PART}) p WHERE day >= %(y)s"),
    ({"trips": {"min": 2, "from": "-12m"}},
     f"SELECT customer_id FROM ({TOOK_PART}) p WHERE day >= %(y)s GROUP BY customer_id HAVING count(*) >= 2"),
    ({"trips": {"min": 1, "max": 1}},
     f"SELECT customer_id FROM ({TOOK_PART}) p GROUP BY customer_id HAVING count(*) = 1"),
    ({"trips": {"max": 0, "from": "-12m"}},
     f"SELECT id FROM crm_customer WHERE id NOT IN (SELECT customer_id FROM ({TOOK_PART}) p WHERE day >= %(y)s)"),
    ({"destination": {"any": ["日本", "bali"]}},
     f"SELECT customer_id FROM ({TOOK_PART}) p WHERE lower(destination) LIKE '%%日本%%' OR lower(destination) LIKE '%%bali%%'"),
    ({"destination": {"any": ["泰国 曼谷"], "exact": True, "from": "-1y"}},
     f"SELECT customer_id FROM ({TOOK_PART}) p WHERE day >= %(y)s AND lower(destination) = '泰国 曼谷'"),
    ({"spend": {"min": "5000", "from": "-12m"}},
     f"SELECT customer_id FROM ({BOUGHT}) p WHERE day >= %(y)s GROUP BY customer_id HAVING sum(sell) >= 5000"),
    ({"spend": {"basis": "margin", "min": "100", "max": "5000"}},
     f"SELECT customer_id FROM ({BOUGHT}) p GROUP BY customer_id HAVING sum(sell - cost) BETWEEN 100 AND 5000"),
    ({"spend": {"max": "3000"}},
     f"SELECT id FROM crm_customer WHERE id NOT IN (SELECT customer_id FROM ({BOUGHT}) p "
     f"GROUP BY customer_id HAVING sum(sell) > 3000)"),
    ({"last_trip": {"before": "-6m"}},
     f"SELECT customer_id FROM ({TOOK_PART}) p GROUP BY customer_id HAVING max(day) < %(half)s"),
    ({"last_trip": {"after": "-3m"}},
     f"SELECT customer_id FROM ({TOOK_PART}) p GROUP BY customer_id HAVING max(day) >= %(quarter)s"),
    ({"festival": {"key": "may_day"}},
     f"SELECT customer_id FROM ({TOOK_PART}) p WHERE depart_on <= %(last)s "
     f"AND coalesce(return_on, depart_on) >= %(first)s"),
    ({"discount_share": {"min": 30}},
     f"SELECT customer_id FROM ({BOUGHT}) p GROUP BY customer_id "
     f"HAVING sum(items) > 0 AND 100 * sum(discounted_items) >= 30 * sum(items)"),
    ({"discount_share": {"max": 50, "from": "-1y"}},
     f"SELECT customer_id FROM ({BOUGHT}) p WHERE day >= %(y)s GROUP BY customer_id "
     f"HAVING sum(items) > 0 AND 100 * sum(discounted_items) <= 50 * sum(items)"),
]
OTHER_FILTERS = [
    ({"kind": "person"}, "SELECT id FROM crm_customer WHERE kind = 'person'"),
    ({"city": ["上海"]}, "SELECT customer_id FROM crm_address WHERE lower(city) IN ('上海', '上海市')"),
    ({"cabin": ["business"]}, "SELECT customer_id FROM crm_preferences WHERE cabin = 'business'"),
    ({"price_sensitivity": ["high"]}, "SELECT customer_id FROM crm_preferences WHERE price_sensitivity = 'high'"),
]


def person(name, **fields):
    return crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=name, **fields)


def trip(customer, *, depart=None, back=None, status="confirmed", destination="日本 东京", items=()) -> Trip:
    made = trips.trip_create(actor=None, customer=customer, title="Trip", destination=destination, depart_on=depart,
                             return_on=back, status="quote" if status == "quote" else "confirmed")
    for sell, cost, details in items:
        trips.item_add(actor=None, trip=made, kind="flight", description="CA929", sell=sell, cost=cost,
                       details=details)
    if status in ("completed", "cancelled"):
        Trip.objects.filter(pk=made.pk).update(status=status)
    return made


@pytest.fixture
def agency(alpha):
    """Customers with every kind of trip; their ids by name."""
    with tenant_context(alpha):
        day = trips.agency_today()
        first, last = festival_break("may_day", day.year - 1)
        frequent = person("Frequent", addresses=[{"line": "1", "city": "上海"}])
        crm_services.customer_preferences_set(actor=None, customer=frequent, cabin="business", price_sensitivity="high")
        trip(frequent, depart=day - timedelta(days=20), items=[(Decimal("4000"), Decimal("3000"), {}),
                                                               (Decimal("900"), Decimal("800"), {"discounted": "true"})])
        shared = trip(frequent, depart=day - timedelta(days=100), destination="Bali, Indonesia",
                      items=[(Decimal("2500"), Decimal("2000"), {"discounted": "yes"})])
        trip(frequent, depart=day - timedelta(days=50), status="cancelled", items=[(Decimal("90000"), 0, {})])
        companion = person("Companion")
        trips.traveler_add(actor=None, trip=Trip.objects.get(pk=shared.pk), customer=companion)
        Trip.objects.filter(pk=shared.pk).update(status="completed")
        trip(companion, depart=day - timedelta(days=800), destination="泰国 曼谷", items=[(Decimal("1200"), 1000, {})])
        once = person("Once", addresses=[{"line": "2", "city": "上海市"}])
        crm_services.customer_preferences_set(actor=None, customer=once, cabin="economy", price_sensitivity="high")
        trip(once, depart=day - timedelta(days=40), destination="泰国 曼谷",
             items=[(Decimal("25000"), Decimal("20000"), {"discounted": "1"}), (Decimal("100"), 90, {})])
        trip(person("Only a quote"), depart=day - timedelta(days=10), status="quote", items=[(Decimal("8000"), 0, {})])
        trip(person("No departure yet"), items=[(Decimal("3000"), Decimal("2900"), {})])
        trip(person("Over May Day"), depart=first - timedelta(days=2), back=first, destination="日本 大阪",
             items=[(Decimal("6000"), Decimal("5000"), {"discounted": "true"})] * 2)
        trip(person("Long ago"), depart=day - timedelta(days=900), items=[(Decimal("50000"), 1000, {})])
        person("Nothing", addresses=[{"line": "3", "city": "北京"}])
        trip(person("No items"), depart=day - timedelta(days=5), destination="新加坡")
        company = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name="Acme", kind="company")
        trip(company, depart=day - timedelta(days=200), destination="日本 东京", items=[(Decimal("7000"), 6000, {})])
        params = {"zone": alpha.time_zone, "y": resolve_date("-12m", today=day), "half": resolve_date("-6m", today=day),
                  "quarter": resolve_date("-3m", today=day), "first": first, "last": last}
        yield alpha, params


def ids(definition) -> set[int]:
    return set(customers_matching(definition).values_list("pk", flat=True))


def hand(sql: str, params: dict) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT c.id FROM crm_customer c WHERE c.merged_into_id IS NULL AND c.id IN ({sql})", params)
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("definition, sql", TRIP_FILTERS + OTHER_FILTERS,
                         ids=[str(d) for d, _sql in TRIP_FILTERS + OTHER_FILTERS])
def test_each_filter_selects_what_hand_written_sql_selects(agency, definition, sql):
    alpha, params = agency
    with tenant_context(alpha):
        expected = hand(sql, params)
        assert ids(definition) == expected
        assert count_matching(definition) == len(expected)


def test_the_fixture_tells_the_filters_apart(agency):
    """Every trip filter keeps some customers and drops others, so the comparisons above mean something."""
    alpha, params = agency
    with tenant_context(alpha):
        everybody = hand("SELECT id FROM crm_customer", params)
        for definition, sql in TRIP_FILTERS:
            assert set() != hand(sql, params) != everybody, definition


PAIRS = [(i, j) for i, j in combinations(range(len(TRIP_FILTERS)), 2) if set(TRIP_FILTERS[i][0]) != set(TRIP_FILTERS[j][0])]


@pytest.mark.parametrize("pair", PAIRS, ids=lambda pair: f"{pair[0]}+{pair[1]}")
def test_trip_filters_together_select_what_each_selects_alone(agency, pair):
    alpha, _params = agency
    (a, _sa), (b, _sb) = TRIP_FILTERS[pair[0]], TRIP_FILTERS[pair[1]]
    with tenant_context(alpha):
        assert ids({**a, **b}) == ids(a) & ids(b)
        # next to other filters, only the trips of the customers those keep are grouped: the same customers
        for other in ({"kind": "person"}, {"city": ["上海"]}, {"trips": {"max": 0, "from": "-1m"}, "cabin": ["business"]}):
            if not set(other) & (set(a) | set(b)):
                assert ids({**a, **b, **other}) == ids(a) & ids(b) & ids(other)


def test_several_trip_filters_read_the_trips_once(agency):
    alpha, _params = agency
    with tenant_context(alpha):
        bought_only = {"spend": {"min": "5000", "from": "-12m"}, "discount_share": {"min": 30}}
        mixed = {"city": ["上海"], "trips": {"from": "-12m"}, "spend": {"min": "1000", "from": "-12m"},
                 "destination": {"any": ["日本"]}, "last_trip": {"after": "-3m"}, "festival": {"key": "may_day"}}
        for definition, summaries in ((bought_only, 1), (mixed, 2)):  # mixed: the buyer's rows + travellers'
            sql = str(customers_matching(definition).query)
            assert sql.count("GROUP BY") == 1 and sql.count("trips_tripsummary") == summaries, sql
        # A filter that also keeps customers without trips stays its own subquery next to the pass.
        sql = str(customers_matching({"trips": {"max": 0, "from": "-12m"}, "spend": {"min": "1"},
                                      "last_trip": {"after": "-3m"}}).query)
        assert sql.count("GROUP BY") == 2 and sql.count("NOT coalesce") == 1
        parts = [{"city": ["上海"]}, {"trips": {"from": "-12m"}}, {"spend": {"min": "1000", "from": "-12m"}},
                 {"destination": {"any": ["日本"]}}, {"last_trip": {"after": "-3m"}}]
        assert ids({k: v for part in parts for k, v in part.items()}) == set.intersection(*map(ids, parts))
        assert ids({k: v for part in parts[:3] for k, v in part.items()}) == set.intersection(*map(ids, parts[:3]))


def test_a_trip_filter_alone_is_a_plain_in_and_next_to_others_a_hashed_subquery(agency):
    """Alone, the planner may look customers up by id (it knows their number); next to another filter,
    whose row count it may underestimate, only the form PostgreSQL runs once and probes as a hash."""
    alpha, _params = agency
    with tenant_context(alpha):
        for definition, _sql in TRIP_FILTERS:
            alone = str(customers_matching(definition).query)
            with_another = str(customers_matching({**definition, "kind": "person"}).query)
            (key, value), = definition.items()
            negated = key in ("trips", "spend") and "max" in value and "min" not in value  # "at most": no trips too
            hashed = 'coalesce("crm_customer"."id" IN'
            assert (hashed in alone) == negated, alone  # the filters keeping customers without trips
            assert hashed in with_another, with_another


@pytest.mark.parametrize("definition", [
    {"city": ["上海"]},
    {"spend": {"min": "5000", "from": "-12m"}},
    {"city": ["上海"], "cabin": ["business"], "trips": {"from": "-12m"}, "spend": {"min": "1000"},
     "destination": {"any": ["bali"]}, "discount_share": {"min": 10}},
], ids=["profile", "one trip filter", "six filters"])
def test_a_count_is_one_select(agency, definition):
    alpha, _params = agency
    with tenant_context(alpha):
        validate(definition)  # outside the count
        with CaptureQueriesContext(connection) as queries:
            count_matching(definition)
        # One round trip: the memory for the count and the count (django-tenants may set the schema first).
        statements = [q["sql"] for q in queries.captured_queries if "search_path" not in q["sql"]]
        assert len(statements) == 1 and statements[0].startswith("SET LOCAL work_mem = '64MB'; SELECT count(*)"), \
            statements
        assert ";" not in statements[0].split("; ", 1)[1]  # two statements: the SET and the count


def test_dates_are_the_agency_days(agency):
    """The fixture's undated trip counts on the day it was confirmed, in the agency's time zone."""
    alpha, params = agency
    with tenant_context(alpha):
        undated = set(Trip.objects.filter(depart_on__isnull=True, status="confirmed").values_list("customer_id", flat=True))
        assert undated and undated <= ids({"trips": {"from": "0d"}})
        assert isinstance(params["y"], date)
