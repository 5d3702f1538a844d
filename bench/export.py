"""Agency export and restore at two sizes (R-PLAT-2; docs/portability.md).

    DATABASE_URL=…/caravan_bench .venv/bin/python -m infra.devenv bench export

For each size N in BENCH_EXPORT_SIZES (default 10000,100000) an agency ``bench-export-<N>`` (made once,
kept): 2,000 realistic customers from ``crm.customers.demo.seed_customers`` copied by one ``INSERT … SELECT`` up
to N customers, then 2N confirmed trips with BENCH_EXPORT_LINES (5) itinerary lines each (the
summary triggers keep ``trips_tripsummary``), so N = 100,000 gives 1,000,000 trip lines.
Timed (median and range of BENCH_EXPORT_RUNS at the smallest size, one run at the others):
1. the anchor: bare ``COPY "<schema>".<table> TO STDOUT`` of the same schema tables, output discarded;
2. ``write_archive`` (the export task's body: every table + shared rows + files, zip, checksums);
3. ``restore_archive`` into ``bench-restore`` (checksums verified, schema made by onboarding, COPY
   FROM in one transaction, sequences), then purged again (timed too). Target: export < 120 s at 100k.
"""
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SIZES = [int(n) for n in os.environ.get("BENCH_EXPORT_SIZES", "10000,100000").split(",")]
RUNS = int(os.environ.get("BENCH_EXPORT_RUNS", "3"))
LINES = int(os.environ.get("BENCH_EXPORT_LINES", "5"))
SEED = 2000


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate_platform", verbosity=0)
    print(f"Machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for size in SIZES:
        agency = build(size)
        measure(agency, size, RUNS if size == min(SIZES) else 1)
    return 0


def build(size: int):
    from django.db import connection, transaction
    from django_tenants.utils import tenant_context

    from crm.customers.demo import seed_customers
    from tenants.models import Agency
    from tenants.portability import catalog
    from tenants.services import agency_onboard

    slug = f"bench-export-{size}"
    agency = Agency.objects.filter(slug=slug).first() or agency_onboard(
        name=f"Bench export {size}", slug=slug, plan="starter", admin_email=f"admin@{slug}.test", actor="bench").agency
    started = time.perf_counter()
    with tenant_context(agency), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM crm_customer")
        if cursor.fetchone()[0] == 0:
            seed_customers(agency, people=SEED, companies=20)
        cursor.execute("SELECT count(*) FROM crm_customer")
        have = cursor.fetchone()[0]
        if have < size:
            cols = [c for c in catalog.columns(agency.schema_name, "crm_customer") if c != "id"]
            listed = ", ".join(f'"{c}"' for c in cols)
            picked = ", ".join(f"c.\"{c}\"" if c not in ("name", "merged_into_id") else
                               ("c.name || ' ' || g" if c == "name" else "NULL") for c in cols)
            with transaction.atomic():
                cursor.execute(f"""INSERT INTO crm_customer ({listed})
                    SELECT {picked} FROM generate_series(1, %s) g
                    JOIN (SELECT *, row_number() OVER (ORDER BY id) - 1 AS k FROM crm_customer
                          WHERE merged_into_id IS NULL AND kind = 'person') c ON c.k = g %% %s""",
                               [size - have, SEED // 2])
        cursor.execute("SELECT count(*) FROM trips_trip")
        trips = cursor.fetchone()[0]
        if trips < 2 * size:
            with transaction.atomic():
                cursor.execute("""
                    INSERT INTO trips_trip (customer_id, title, destination, status, currency, needs_visa, notes,
                                            created_at, confirmed_at, cancel_reason)
                    SELECT c.ids[1 + (g %% c.n)::int], 'bench-export', '日本 东京', 'confirmed', 'CNY', false, '',
                           now() - make_interval(days => g %% 700), now() - make_interval(days => g %% 700), ''
                    FROM generate_series(1, %s) g,
                         (SELECT array_agg(id ORDER BY id) AS ids, count(*) AS n FROM crm_customer) c""",
                               [2 * size - trips])
            with transaction.atomic():
                cursor.execute("""
                    INSERT INTO trips_itineraryitem (trip_id, kind, description, supplier, confirmation, cost, sell, details)
                    SELECT t.id, 'hotel', '酒店 Bench line ' || k, 'Bench Hotels', 'CF' || t.id, round(s * 0.85, 2), s,
                           '{"discounted": false}'::jsonb
                    FROM (SELECT id, round((200 + random() * 5800)::numeric, 2) AS s FROM trips_trip t
                          WHERE NOT EXISTS (SELECT 1 FROM trips_itineraryitem i WHERE i.trip_id = t.id)) t
                    CROSS JOIN generate_series(1, %s) k""", [LINES])
            cursor.execute("ANALYZE")
        cursor.execute("SELECT (SELECT count(*) FROM crm_customer), (SELECT count(*) FROM trips_trip), "
                       "(SELECT count(*) FROM trips_itineraryitem), pg_size_pretty(sum(pg_total_relation_size(c.oid))) "
                       "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                       [agency.schema_name])
        customers, trips, lines, size_on_disk = cursor.fetchone()
    connection.set_schema_to_public()
    print(f"\n== {agency.slug}: {customers:,} customers, {trips:,} trips, {lines:,} itinerary lines, "
          f"{size_on_disk} on disk (ready in {time.perf_counter() - started:.1f} s)", flush=True)
    return agency


def bare_copy(agency) -> float:
    from django.db import connection, transaction

    from tenants.portability import catalog

    started = time.perf_counter()
    with transaction.atomic():
        raw = connection.cursor().cursor
        for table in catalog.schema_tables(agency.schema_name):
            with raw.copy(f'COPY "{agency.schema_name}"."{table}" TO STDOUT WITH (FORMAT csv, HEADER true)') as copy:
                for _data in copy:
                    pass
    return time.perf_counter() - started


def measure(agency, size: int, runs: int) -> None:
    from tenants.models import Agency
    from tenants.portability import services

    anchors, exports, restores, purges = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.zip"
        for _ in range(runs):
            anchors.append(bare_copy(agency))
            started = time.perf_counter()
            services.write_archive(agency, path)
            exports.append(time.perf_counter() - started)
            if old := Agency.objects.filter(slug="bench-restore").first():
                services.purge(agency=old, actor="bench")
            started = time.perf_counter()
            restored = services.restore_archive(path, slug="bench-restore", actor="bench")
            restores.append(time.perf_counter() - started)
            started = time.perf_counter()
            services.purge(agency=restored, actor="bench")
            purges.append(time.perf_counter() - started)
        archive_mb = path.stat().st_size / 1e6

    def fmt(values):
        if len(values) == 1:
            return f"{values[0]:.1f} s (1 run)"
        return f"median {statistics.median(values):.1f} s (range {min(values):.1f}–{max(values):.1f}, {len(values)} runs)"

    ratio = statistics.median(exports) / statistics.median(anchors)
    print(f"bare COPY TO of the schema's tables (anchor): {fmt(anchors)}", flush=True)
    print(f"export (zip {archive_mb:.1f} MB): {fmt(exports)} = {ratio:.1f}× the bare COPY; target < 120 s", flush=True)
    print(f"restore: {fmt(restores)} = {statistics.median(restores) / statistics.median(anchors):.1f}× the bare COPY "
          f"out; purge of the restored agency: {fmt(purges)}", flush=True)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
