"""Deleting a supplier feed with many rate rows: time and peak memory, against the bare DELETE.

    .venv/bin/python -m infra.devenv bench bulk_delete

Needs only the public tables (``migrate_schemas --shared`` is run). For each size in
BENCH_BULK_SIZES (100,000 and 1,000,000 hotel rates, plus a tenth as many flight offers, three runs
with quarantined records), a shared feed is filled with set-based SQL (``generate_series``) and
committed, then deleted in a fresh child process (so its peak resident memory is the deletion's):

- ``service``: ``integrations.services.feed_delete`` (what the pages and the API call);
- ``bare``: the anchor — plain ``DELETE … WHERE feed_id = …`` statements for the same tables;
- ``old``: the path before issue 17, for comparison at the smallest size only: ``feed.delete()``
  with django-tenants' receiver listening to ``post_delete`` of every model (so Django's collector
  loads each row).

Each case BENCH_BULK_RUNS times (3); prints the median and range of seconds and of the peak RSS
growth over the child's start-up, and the ratio to the bare DELETE.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = [int(n) for n in os.environ.get("BENCH_BULK_SIZES", "100000,1000000").split(",")]
RUNS = int(os.environ.get("BENCH_BULK_RUNS", "3"))
HOTELS = 500
ROOT = Path(__file__).resolve().parent.parent


def setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()


def main() -> int:
    setup()
    from django.core.management import call_command

    call_command("migrate_schemas", shared=True, verbosity=0)
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} / {os.getloadavg()[1]:.2f}; "
          f"sizes {SIZES} rate rows; {RUNS} runs per case; each delete in a fresh child process")
    for size in SIZES:
        modes = ["bare", "service"] + (["old"] if size == min(SIZES) else [])
        results = {mode: [] for mode in modes}
        for _ in range(RUNS):
            for mode in modes:
                feed_id = fill(size)
                results[mode].append(child(mode, feed_id))
        bare_s = statistics.median(r["seconds"] for r in results["bare"])
        bare_mb = statistics.median(r["mb"] for r in results["bare"])
        print(f"\n--- a feed with {size:,} hotel rates, {size // 10:,} flight offers, 3 runs, 30 quarantined ---")
        for mode in modes:
            seconds = [r["seconds"] for r in results[mode]]
            mb = [r["mb"] for r in results[mode]]
            print(f"{mode:8s} median {statistics.median(seconds):7.2f} s (range {min(seconds):.2f}–{max(seconds):.2f}), "
                  f"peak RSS growth median {statistics.median(mb):7.1f} MB (range {min(mb):.1f}–{max(mb):.1f}); "
                  f"x{statistics.median(seconds) / bare_s:.2f} the bare DELETE's time, "
                  f"{statistics.median(mb) - bare_mb:+.1f} MB")
    cleanup()
    return 0


def fill(size: int) -> int:
    """A committed shared feed with ``size`` rates over HOTELS hotels, offers, runs and quarantine."""
    from django.db import connection, transaction

    from integrations.models import Feed, FeedRun, FlightOffer, Hotel, HotelRate, QuarantinedRecord, Supplier

    supplier, _ = Supplier.objects.get_or_create(code="bench-bulk", defaults={"name": "Bench bulk", "kind": "hotel"})
    with transaction.atomic():
        if Hotel.objects.filter(supplier=supplier).count() < HOTELS:
            Hotel.objects.bulk_create([Hotel(supplier=supplier, code=f"BB{i:04d}", name=f"Bench {i}", city_code="SHA")
                                       for i in range(HOTELS)], ignore_conflicts=True)
        feed = Feed.objects.unscoped().create(supplier=supplier, name=f"bench-bulk-{time.time()}", connector="ota_hotel", mode="push")
        for _ in range(3):
            run = FeedRun.objects.unscoped().create(feed=feed, trigger="push", status="succeeded")
            QuarantinedRecord.objects.unscoped().bulk_create([QuarantinedRecord(run=run, position=f"m{i}", reason="bad") for i in range(10)])
        first = Hotel.objects.filter(supplier=supplier).order_by("id").values_list("id", flat=True)[0]
        with connection.cursor() as cursor:
            cursor.execute(f"""
                INSERT INTO {HotelRate._meta.db_table} (feed_id, hotel_id, city_code, night, room_type, rate_plan, board,
                                                        amount, currency, available, updated_at)
                SELECT %s, %s + (g %% {HOTELS}), 'SHA', DATE '2027-03-01' + (g / {HOTELS * 2}), CASE WHEN (g / {HOTELS}) %% 2 = 0 THEN 'DLK' ELSE 'TWN' END,
                       'BAR', 'BB', 800, 'CNY', 5, now()
                FROM generate_series(0, %s - 1) g""", [feed.pk, first, size])
            cursor.execute(f"""
                INSERT INTO {FlightOffer._meta.db_table} (feed_id, offer_id, origin, destination, departure_date, departure,
                    arrival, carrier, flight_numbers, cabin, fare_brand, checked_bags, duration_minutes, stops, price,
                    currency, slices, updated_at)
                SELECT %s, 'off-' || g, 'PVG', 'NRT', DATE '2027-03-01', now(), now() + interval '3 hours', 'MU', 'MU521',
                       'economy', '', 1, 180, 0, 1500, 'CNY', '[]'::jsonb, now()
                FROM generate_series(1, %s) g""", [feed.pk, size // 10])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {HotelRate._meta.db_table}")
    return feed.pk


def child(mode: str, feed_id: int) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "platform"), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(feed_id)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_child(mode: str, feed_id: int) -> None:
    setup()
    from django.db import connection, transaction

    from integrations import services
    from integrations.models import Feed, FeedRun, FlightOffer, HotelRate, QuarantinedRecord

    feed = Feed.objects.unscoped().select_related("supplier", "agency").get(pk=feed_id)
    if mode == "old":
        from django.db.models.signals import post_delete
        from django_tenants.signals import tenant_delete_callback

        post_delete.connect(tenant_delete_callback)  # as django-tenants connects it: every model
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if mode == "service":
        services.feed_delete(feed)
    elif mode == "old":
        with transaction.atomic():
            feed.delete()
    else:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {QuarantinedRecord._meta.db_table} WHERE run_id IN "
                           f"(SELECT id FROM {FeedRun._meta.db_table} WHERE feed_id = %s)", [feed_id])
            for model in (HotelRate, FlightOffer, FeedRun):
                cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE feed_id = %s", [feed_id])
            cursor.execute(f"DELETE FROM {Feed._meta.db_table} WHERE id = %s", [feed_id])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert not HotelRate.objects.unscoped().filter(feed_id=feed_id).exists()
    print(json.dumps({"seconds": seconds, "mb": (peak - base) / 1024}))


def cleanup() -> None:
    """Remove the bench's supplier and hotels, and VACUUM the inventory tables: millions of deleted
    rows left unvacuumed make every later check against them (e.g. the foreign-key checks of an
    agency's deletion) scan them all."""
    from django.db import connection

    from integrations.models import FeedRun, FlightOffer, Hotel, HotelRate, QuarantinedRecord, Supplier

    Hotel.objects.filter(supplier__code="bench-bulk").delete()
    Supplier.objects.filter(code="bench-bulk").delete()
    with connection.cursor() as cursor:
        for model in (HotelRate, FlightOffer, QuarantinedRecord, FeedRun):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        run_child(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
