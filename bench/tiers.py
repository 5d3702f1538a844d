"""The nightly tier assignment at scale (R-TIER-2).

    DATABASE_URL=…/caravan_bench .venv/bin/python -m infra.devenv bench tiers

Uses the agency ``bench-crm`` of bench/customers.py (made with 100,000 people if missing).
1. Data, made once and topped up idempotently with set-based SQL (``generate_series``):
   BENCH_TIER_TRIPS (200,000) confirmed/completed trips titled ``bench-tiers`` dated over the last
   400 days, bought by customers with a skewed distribution (a few buy a lot), each with
   BENCH_TIER_LINES (5) itinerary items: 1,000,000 booking lines.
2. The demo tiers (Platinum/Gold/Silver/Standard) if the agency has none.
3. ``crm.tiers.services.assignment_run()`` timed twice: a first run (the agency's tier rows and
   history are cleared first, so every customer is placed) and a second run with nothing changed.
   Target: <= 60 s each.
"""
import os
import sys
import time

TRIPS = int(os.environ.get("BENCH_TIER_TRIPS", "200000"))
LINES = int(os.environ.get("BENCH_TIER_LINES", "5"))
TITLE = "bench-tiers"
TARGET_SECONDS = 60


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    from bench.customers import SLUG
    from bench.customers import Bench as CustomerBench
    from tenants.models import Agency

    call_command("migrate_platform", verbosity=0)
    agency = Agency.objects.filter(slug=SLUG).first()
    base = CustomerBench()
    if agency is None:
        base.prepare()
        agency = base.agency
    with tenant_context(agency):
        bench = TierBench(base)
        bench.data()
        bench.tiers(agency)
        bench.assignment()
    base.summary()
    return 0


class TierBench:
    def __init__(self, base):
        self.base = base

    def data(self) -> None:
        from django.db import connection, transaction

        from crm.customers.models import Customer
        from crm.trips.models import ItineraryItem, Trip

        trip, item, customer = Trip._meta.db_table, ItineraryItem._meta.db_table, Customer._meta.db_table
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {trip} WHERE title = %s", [TITLE])
            have = cursor.fetchone()[0]
            if have < TRIPS:
                # Buyers skewed towards the first customers (power 3): a few big spenders, a long tail.
                with transaction.atomic():
                    cursor.execute("SELECT setseed(0.42)")
                    cursor.execute(f"""
                        INSERT INTO {trip} (customer_id, title, destination, status, currency, needs_visa, notes,
                                            created_at, confirmed_at, cancel_reason)
                        SELECT c.ids[1 + floor(c.n * power(random(), 3))::int], %s, '',
                               CASE WHEN g %% 4 = 0 THEN 'completed' ELSE 'confirmed' END, 'CNY', false, '',
                               now() - make_interval(days => g %% 400, hours => g %% 24),
                               now() - make_interval(days => g %% 400, hours => g %% 24), ''
                        FROM generate_series(1, %s) g,
                             (SELECT array_agg(id ORDER BY id) AS ids, count(*) AS n FROM {customer}
                              WHERE merged_into_id IS NULL) c""", [TITLE, TRIPS - have])
            with transaction.atomic():
                cursor.execute(f"""
                    INSERT INTO {item} (trip_id, kind, description, supplier, confirmation, cost, sell, details)
                    SELECT x.id, 'other', 'Bench line ' || x.k, '', '', round(x.s * 0.85, 2), x.s, '{{}}'::jsonb
                    FROM (SELECT t.id, k, round((200 + random() * 5800)::numeric, 2) AS s
                          FROM {trip} t CROSS JOIN generate_series(1, %s) k
                          WHERE t.title = %s AND NOT EXISTS (SELECT 1 FROM {item} i WHERE i.trip_id = t.id)) x""",
                               [LINES, TITLE])
                made_items = cursor.rowcount
            if have < TRIPS or made_items:
                cursor.execute(f"ANALYZE {trip}")
                cursor.execute(f"ANALYZE {item}")
            cursor.execute(f"""SELECT count(*) FROM {item} i JOIN {trip} t ON t.id = i.trip_id
                               WHERE t.status IN ('confirmed', 'completed')""")
            lines = cursor.fetchone()[0]
            cursor.execute(f"SELECT count(*) FROM {customer} WHERE merged_into_id IS NULL")
            customers = cursor.fetchone()[0]
        print(f"Tier benchmark data: {customers:,} customers, {lines:,} booking lines of confirmed/completed trips "
              f"({max(TRIPS - have, 0):,} trips and {made_items:,} lines made in {time.perf_counter() - started:.1f} s)",
              flush=True)
        self.base.notes.append(f"tiers: {customers:,} customers, {lines:,} booking lines")

    def tiers(self, agency) -> None:
        from django.utils import translation

        from crm.tiers import services
        from crm.tiers.demo import _tiers
        from crm.tiers.models import ServiceTier

        if not ServiceTier.objects.exists():
            with translation.override(agency.language):
                for fields in _tiers(agency.currency):
                    services.tier_save(actor=None, **fields)
        self.base.notes.append("tiers: " + ", ".join(f"{t.rank}. {t.name}" for t in ServiceTier.objects.all()))

    def assignment(self) -> None:
        from django.db import connection, transaction
        from django.db.models import Count

        from crm.tiers import services
        from crm.tiers.models import CustomerTier, TierChange

        with connection.cursor() as cursor:  # a true first run: nobody placed yet
            cursor.execute(f"TRUNCATE {CustomerTier._meta.db_table}, {TierChange._meta.db_table}")
        for label in ("first run (everybody placed)", "second run (nothing changed)"):
            started = time.perf_counter()
            result = services.assignment_run()
            seconds = time.perf_counter() - started
            print(f"Tier assignment, {label}: {seconds:.1f} s — {result}", flush=True)
            self.base.record(f"tier assignment, {label}", seconds, "s", f"<= {TARGET_SECONDS} s",
                             seconds <= TARGET_SECONDS)
        with transaction.atomic():  # measured, then undone: the bench leaves no outreach tasks behind
            started = time.perf_counter()
            made = services.outreach_run()
            seconds = time.perf_counter() - started
            transaction.set_rollback(True)
        print(f"Proactive outreach over every tiered customer: {seconds:.2f} s — {made:,} tasks", flush=True)
        self.base.record("proactive outreach (tasks made in one statement)", seconds, "s", f"<= {TARGET_SECONDS} s",
                         seconds <= TARGET_SECONDS)
        counts = dict(CustomerTier.objects.order_by("tier__rank").values_list("tier__name")
                      .annotate(n=Count("customer")).values_list("tier__name", "n"))
        self.base.notes.append("tiers: customers per tier " + ", ".join(f"{k or '—'} {v:,}" for k, v in counts.items()))


if __name__ == "__main__":
    sys.exit(main())
