"""The scale × loyalty quadrant means the same everywhere (issue 19): the customer list's filter, the
segment filter (and its count) and the value dashboard select the same customers for every quadrant.
A customer without RFM scores (no confirmed trip in the window) is in no quadrant."""
import importlib

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.selectors import customer_list
from crm.segments.query import count_matching, customers_matching
from crm.value import selectors, services
from crm.value.models import CustomerValue

from .conftest import staff
from .test_value_scores import buyer, trip
from .test_value_segments import ladder

pytestmark = pytest.mark.django_db


def three_paths(quadrant: str) -> tuple[set, set, int, int, set]:
    listed = set(customer_list(filters={"quadrant": quadrant}).values_list("pk", flat=True))
    segment = set(customers_matching({"quadrant": [quadrant]}).values_list("pk", flat=True))
    dashboard = {row["quadrant"]: row["customers"] for row in selectors.quadrant_summary()}[quadrant]
    drill_down = set(selectors.customers_in(quadrant=quadrant).values_list("customer_id", flat=True))
    return listed, segment, count_matching({"quadrant": [quadrant]}), dashboard, drill_down


def test_list_segment_filter_and_dashboard_agree_on_every_quadrant(alpha, bravo):
    with tenant_context(bravo):  # another agency's scored customers count nowhere in alpha
        for i in range(3):
            trip(buyer(f"Bravo {i}"), days_ago=5 + i, sell="50000")
        services.value_run()
    with tenant_context(alpha):
        customers, x, _trips = ladder()
        lapsed = buyer("只在窗口外")  # trips only before the 24-month window: no scores
        trip(lapsed, days_ago=900, sell="90000")
        trip(lapsed, days_ago=950, sell="90000")
        buyer("从未出行")  # no trip at all: no value row
        services.value_run()
        assert CustomerValue.objects.get(customer=lapsed).quadrant is None
        assert CustomerValue.objects.get(customer=lapsed).r_score is None
        # a scored customer merged away after the run keeps their row until the next run: counted nowhere
        crm_services.customer_merge(actor=staff(alpha, "admin"), keep=customers[0], drop=customers[1])

        everywhere = set()
        for quadrant in CustomerValue.Quadrant.values:
            listed, segment, count, dashboard, drill_down = three_paths(quadrant)
            assert listed == segment == drill_down, quadrant
            assert count == dashboard == len(listed), quadrant
            everywhere |= listed
        # as in test_value_segments without its late payer: small-low c0…c3 less c1 (merged away),
        # small-high c4 c5, large-low X, large-high c6…c9
        assert [three_paths(q)[3] for q in CustomerValue.Quadrant.values] == [3, 2, 1, 4]
        assert lapsed.pk not in everywhere and customers[1].pk not in everywhere
        scored = set(CustomerValue.objects.filter(r_score__isnull=False, customer__merged_into__isnull=True)
                     .values_list("customer_id", flat=True))
        assert everywhere == scored


def test_the_migration_takes_the_quadrant_from_unscored_rows(alpha):
    """Rows written before the rule (unscored in small-low) lose it; scored rows keep theirs."""
    migration = importlib.import_module("crm.value.migrations.0002_quadrant_only_when_scored").Migration
    now = timezone.now()
    base = {"first_trip_at": now, "last_trip_at": now, "trips_total": 1, "revenue_total": 1, "margin_total": 1}
    with tenant_context(alpha):
        old = CustomerValue.objects.create(customer=buyer("旧行"), quadrant="small_low", **base)
        kept = CustomerValue.objects.create(customer=buyer("有分"), r_score=4, f_score=2, m_score=5,
                                            quadrant="large_low", **base)
        with connection.cursor() as cursor:
            cursor.execute(migration.operations[1].sql)
        old.refresh_from_db()
        kept.refresh_from_db()
        assert old.quadrant is None and kept.quadrant == "large_low"
