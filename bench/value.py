"""The nightly customer-value computation at scale (R-VAL-1 … R-VAL-5).

    DATABASE_URL=…/caravan_bench .venv/bin/python -m infra.devenv bench value

Uses the agency ``bench-crm`` with the data of bench/tiers.py (100,000 people, 200,000 confirmed or
completed trips, 1,000,000 booking lines; made if missing), plus balance due dates and payments on a
third of the trips (made once, set-based) so the payment-behaviour step has work to do.

Measured in the same run:
1. the bare SQL aggregate — per customer: trips, last trip, revenue and margin, one GROUP BY over the
   booking lines (the floor any RFM computation stands on), best of three, with the same work_mem
   as the nightly job;
2. ``crm.value.services.value_run()`` twice, step by step: the lifetime-value summary, fit and
   scoring (BG/NBD + Gamma-Gamma); the one upsert of RFM scores, payment behaviour, predictions,
   segments and quadrants; the early warnings. The second run finds nothing changed.
Targets: RFM + segments ≤ 3 × the bare aggregate; lifetime-value fit and scoring ≤ 60 s.
"""
import os
import sys
import time

TARGET_RATIO = 3
TARGET_LIFETIME_SECONDS = 60


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    from bench.customers import SLUG
    from bench.customers import Bench as CustomerBench
    from bench.tiers import TierBench
    from tenants.models import Agency

    call_command("migrate_platform", verbosity=0)
    agency = Agency.objects.filter(slug=SLUG).first()
    base = CustomerBench()
    if agency is None:
        base.prepare()
        agency = base.agency
    with tenant_context(agency):
        TierBench(base).data()
        payments()
        floor = bare_aggregate()
        base.record("bare SQL aggregate (trips, last trip, revenue, margin per customer)", floor, "s")
        for label in ("first run", "second run"):
            started = time.perf_counter()
            from crm.value import services

            result = services.value_run()
            total = time.perf_counter() - started
            steps = result["seconds"]
            print(f"value_run, {label}: {total:.1f} s — {result}", flush=True)
            rfm_segments = steps["trips"] + steps["rfm_segments"]  # the trip values are shared with the fit
            base.record(f"RFM + payment behaviour + segments, {label}", rfm_segments, "s",
                        f"<= {TARGET_RATIO} x {floor:.2f} s", rfm_segments <= TARGET_RATIO * floor)
            base.record(f"  ratio to the bare aggregate, {label}", rfm_segments / floor, "x", f"<= {TARGET_RATIO}",
                        rfm_segments / floor <= TARGET_RATIO)
            base.record(f"lifetime value fit + scoring, {label}", steps["lifetime"], "s",
                        f"<= {TARGET_LIFETIME_SECONDS} s", steps["lifetime"] <= TARGET_LIFETIME_SECONDS)
            base.record(f"early warnings, {label}", steps["warnings"], "s")
        summary_notes(base)
    base.summary()
    return 0


def payments() -> None:
    """Balance due dates and payments on every third bench trip, once: a tenth paid late."""
    from django.db import connection, transaction

    from crm.trips.models import ItineraryItem, Payment, Trip

    trip, item, payment = Trip._meta.db_table, ItineraryItem._meta.db_table, Payment._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {trip} WHERE title = 'bench-tiers' AND balance_due_on IS NOT NULL")
        if cursor.fetchone()[0]:
            return
        started = time.perf_counter()
        with transaction.atomic():
            cursor.execute(f"""
                UPDATE {trip} SET balance_due_on = (confirmed_at - interval '7 days')::date
                WHERE title = 'bench-tiers' AND id %% 3 = 0""", [])
            cursor.execute(f"""
                INSERT INTO {payment} (trip_id, kind, amount, currency, method, received_on, reference, note, recorded_at)
                SELECT t.id, 'balance', s.total, 'CNY', 'bank',
                       t.balance_due_on + (CASE WHEN t.id %% 30 = 0 THEN 21 + t.id %% 40 ELSE -(t.id %% 5) END)::int,
                       '', '', now()
                FROM {trip} t JOIN (SELECT trip_id, sum(sell) AS total FROM {item} GROUP BY trip_id) s ON s.trip_id = t.id
                WHERE t.title = 'bench-tiers' AND t.balance_due_on IS NOT NULL""", [])
            made = cursor.rowcount
            cursor.execute(f"ANALYZE {trip}")
            cursor.execute(f"ANALYZE {payment}")
        print(f"Payments: {made:,} balances recorded in {time.perf_counter() - started:.1f} s", flush=True)


def bare_aggregate() -> float:
    from django.db import connection, transaction

    from crm.trips.models import ItineraryItem, Trip
    from crm.value.services import WORK_MEM

    sql = f"""
        SELECT t.customer_id, count(DISTINCT t.id), max(coalesce(t.confirmed_at, t.created_at)),
               sum(i.sell), sum(i.sell - i.cost)
        FROM {Trip._meta.db_table} t JOIN {ItineraryItem._meta.db_table} i ON i.trip_id = t.id
        WHERE t.status IN ('confirmed', 'completed')
        GROUP BY t.customer_id"""
    best = float("inf")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")  # the same memory as the nightly job
        for _ in range(3):
            started = time.perf_counter()
            cursor.execute(sql)
            rows = len(cursor.fetchall())
            best = min(best, time.perf_counter() - started)
    print(f"Bare aggregate: {rows:,} customers, best of 3 {best:.2f} s", flush=True)
    return best


def summary_notes(base) -> None:
    from django.db.models import Count

    from crm.value.models import CustomerValue, LifetimeFit

    fit = LifetimeFit.objects.order_by("-fitted_at").first()
    if fit:
        base.notes.append(f"value: fit on {fit.customers:,} customers: r={fit.r:.3f} alpha={fit.alpha:.2f} "
                          f"a={fit.a:.3f} b={fit.b:.3f}; repeat trips {fit.actual_repeat_trips:,} happened, "
                          f"{fit.expected_repeat_trips:,.0f} expected")
    segments = dict(CustomerValue.objects.values_list("segment").annotate(n=Count("pk")))
    base.notes.append("value: segments " + ", ".join(f"{k} {v:,}" for k, v in sorted(segments.items())))
    late = CustomerValue.objects.filter(late_payer=True).count()
    base.notes.append(f"value: late payers {late:,}")


if __name__ == "__main__":
    sys.exit(main())
