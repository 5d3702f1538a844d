"""A segment definition → the customers it holds (R-CAMP-1).

``customers_matching(definition)`` is the one path: the builder's live count, a saved segment's
re-evaluation, a campaign's audience and the API all call it. Merged-away records never match.

Every filter (``crm.segments.filters``) narrows one ``Customer`` queryset with a condition on the
customer row: a column, a one-to-one row (preferences, tier, value, consent), or an uncorrelated
``IN (subquery)`` over the trips (``rows``). Nothing is joined in a way that repeats a customer,
so ``.count()`` is one SQL statement and no ``DISTINCT`` is needed.
"""
from django.db import connection, transaction
from django.db.models import QuerySet

from crm.customers.models import Customer

from .definition import validate
from .filters import FILTERS

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
        customers = FILTERS[key].narrow(customers, value, today)
    return customers
