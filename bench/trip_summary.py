"""What the TripSummary triggers (crm/trips/migrations/0002) cost on writes.

    DATABASE_URL=…/caravan_bench .venv/bin/python -m infra.devenv bench trip_summary

In an agency of its own (``bench-summary``, made if missing), each measure runs with the
statement-level triggers on and with them disabled for the measure (``ALTER TABLE … DISABLE
TRIGGER``, re-enabled afterwards), each way twice alternating (the second counts), inside a transaction that is rolled back, so nothing stays:
1. ``crm.trips.services.item_add`` (what the page, the API and "add to trip" call): REPEAT single
   items, p50 / p95;
2. a bulk write: TRIPS trips with 5 items each by ``bulk_create`` (what imports and the seeds do);
3. an UPDATE of every item's price in one statement.
"""
import os
import statistics
import sys
import time
from decimal import Decimal

REPEAT = int(os.environ.get("BENCH_SUMMARY_REPEAT", "300"))
TRIPS = int(os.environ.get("BENCH_SUMMARY_TRIPS", "2000"))
TABLES = ("trips_trip", "trips_itineraryitem")
TRIGGERS = ("trip_summary_insert", "trip_summary_update", "trip_summary_delete")


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    from tenants.models import Agency
    from tenants.services import agency_onboard

    call_command("migrate_platform", verbosity=0)
    agency = Agency.objects.filter(slug="bench-summary").first() or agency_onboard(
        name="Bench summary", slug="bench-summary", plan="starter", admin_email="admin@bench-summary.test",
        actor="bench").agency
    with tenant_context(agency):
        results = {}
        for on in (False, True, False, True):  # each way twice, alternating; the second run of each counts
            results[on] = measure(on)
    (single_on, bulk_on, update_on), (single_off, bulk_off, update_off) = results[True], results[False]
    print(f"item_add, {REPEAT} items one by one: p50 {statistics.median(single_on):.2f} ms with the triggers, "
          f"{statistics.median(single_off):.2f} ms without (p95 {p95(single_on):.2f} vs {p95(single_off):.2f} ms)")
    print(f"bulk write of {TRIPS:,} trips and {TRIPS * 5:,} items: {bulk_on:.2f} s with the triggers, {bulk_off:.2f} s "
          f"without (+{(bulk_on / bulk_off - 1) * 100:.0f} %)")
    print(f"one UPDATE of {TRIPS * 5:,} items' prices: {update_on:.2f} s with the triggers, {update_off:.2f} s without "
          f"(+{(update_on / update_off - 1) * 100:.0f} %)")
    return 0


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


class _Rollback(Exception):
    pass


def measure(triggers_on: bool):
    from django.db import connection, transaction

    from crm.customers import services as crm_services
    from crm.customers.models import ChangeLog
    from crm.trips import services as trips
    from crm.trips.models import ItineraryItem, Trip

    out = None
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if not triggers_on:
                for table in TABLES:
                    for trigger in TRIGGERS:
                        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
            customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name="基准客户 Bench")
            trip = trips.trip_create(actor=None, customer=customer, title="Bench", destination="日本 东京",
                                     status="confirmed")
            single = []
            for i in range(REPEAT):
                started = time.perf_counter()
                trips.item_add(actor=None, trip=trip, kind="hotel", description=f"Hotel {i}", cost=Decimal("800"),
                               sell=Decimal("960"))
                single.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            made = Trip.objects.bulk_create([Trip(customer=customer, title=f"Bulk {i}", destination="泰国 曼谷",
                                                  status="confirmed", currency="CNY") for i in range(TRIPS)])
            ItineraryItem.objects.bulk_create([ItineraryItem(trip=t, kind="flight", description=f"Leg {k}",
                                                             cost=Decimal("1000"), sell=Decimal("1200"))
                                               for t in made for k in range(5)], batch_size=2000)
            bulk = time.perf_counter() - started
            started = time.perf_counter()
            ItineraryItem.objects.filter(trip__in=made).update(sell=Decimal("1250"))
            update = time.perf_counter() - started
            out = (single, bulk, update)
            raise _Rollback  # nothing stays, and the triggers are enabled again with the rollback
    except _Rollback:
        pass
    return out


if __name__ == "__main__":
    sys.exit(main())
