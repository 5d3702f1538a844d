"""A segment definition → the customers it holds (R-CAMP-1).

``customers_matching(definition)`` is the one path: the builder's live count, a saved segment's
re-evaluation, a campaign's audience and the API all call it. Merged-away records never match.

Every filter (``crm.segments.filters``) narrows one ``Customer`` queryset with a condition on the
customer row: a column, a one-to-one row (preferences, tier, value, consent), or an uncorrelated
``IN (subquery)`` over the trips (``rows``). Two or more trip filters are one such subquery: a
single ``GROUP BY`` over the trips with a test per filter (``rows.all_of``), so the trips are read
once whatever the number of trip filters. Nothing is joined in a way that repeats a customer,
so ``.count()`` is one SQL statement and no ``DISTINCT`` is needed. A definition of one trip filter
alone is the exception: a plain ``IN`` (see ``customers_matching``).
"""
from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from crm.customers.models import Customer

from .definition import validate
from .filters import FILTERS
from .rows import all_of, in_subquery

COUNT_WORK_MEM = "64MB"


def count_matching(definition: dict) -> int:
    """How many customers a definition selects: one ``SELECT count(*)``, given the memory to group a
    whole agency's trips per customer in one pass (at the default 4 MB, 200,000 trips spill to disk
    and the count takes ~1.5× as long; bench/segments.py).

    One round trip: the ``SET LOCAL`` and the count go in one Query message (client-side binding,
    Django's default with psycopg), which PostgreSQL runs as one transaction — the caller's, or an
    implicit one that ends with the message — so the setting never outlives it. Not BEGIN, SET,
    SELECT, COMMIT: four round trips, a third of a small agency's count."""
    sql, params = customers_matching(definition).order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{COUNT_WORK_MEM}'; SELECT count(*) FROM ({sql}) matching", params)
        while cursor.description is None and cursor.nextset():  # past the SET (and a pooled search path's)
            pass
        return cursor.fetchone()[0]


def customers_matching(definition: dict) -> QuerySet:
    """The customers a definition selects, as a queryset (not evaluated).

    The definition is validated again here (cheap, and a stored copy may predate a rule), without
    checking that referenced tiers or colleagues still exist: a deleted one simply matches nobody."""
    from crm.trips.services import agency_today

    today = agency_today()
    clean = validate(definition, references=False, today=today)
    live = customers = Customer.objects.filter(merged_into__isnull=True)
    trip_tests = []  # (filter, value, its TripTest)
    not_about_trips = []  # (filter, value) of the filters that are not about trips (``others`` below)
    # The cheap comparisons first, then ``Filter.late`` ones and the trip filters, otherwise in the builder's order.
    for key, value in sorted(clean.items(), key=lambda item: FILTERS[item[0]].late or bool(FILTERS[item[0]].trip_test)):
        f = FILTERS[key]
        test = f.trip_test(value, today) if f.trip_test else None
        if test is None:
            customers = f.narrow(customers, value, today)
            if not f.trip_test:
                not_about_trips.append((f, value))
        else:
            trip_tests.append((f, value, test))
    if len(trip_tests) == 1 and len(clean) == 1:
        # One trip filter and nothing else: the planner knows how many customers there are (all live
        # ones), so a plain IN is safe and lets it look the matching ones up by id after grouping the
        # trips in parallel workers (festival travel at 100,000 customers: 83 → 59 ms, as hand-written
        # SQL; bench/segments.py). Next to any other filter, whose row count it may underestimate (and
        # then re-read the grouped trips per customer), only the hashed subquery of ``narrow`` is.
        customers = customers.filter(pk__in=RawSQL(*all_of([trip_tests[0][2]])))
    elif len(trip_tests) == 1:
        f, value, _test = trip_tests[0]
        customers = f.narrow(customers, value, today)
    elif trip_tests:  # one pass over the trips for all of them, not one subquery each, over the trips of
        # the customers the filters not about trips keep (combined definition: 336 → 148 ms at 100,000);
        # that queryset built only here (building it for every definition was a fifth of a small count's time)
        among = None
        if not_about_trips:
            others = live
            for f, value in not_about_trips:
                others = f.narrow(others, value, today)
            among = others.order_by().values("pk").query.sql_with_params()
        customers = in_subquery(customers, *all_of([test for *_, test in trip_tests], among=among))
    return customers
