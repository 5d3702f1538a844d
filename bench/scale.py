"""Onboarding and migrate_platform as the number of agencies grows (issue 17).

    .venv/bin/python -m infra.devenv bench scale          # BENCH_SIZES=100,1000 by default

Tops the database up to each size with real agencies (agency_onboard: schema, domain, first
admin; then 200 customers with phones copied into each, so migrations meet tables with data and
bench/load.py finds numbers to pop), and at each size
prints:

- onboarding: the median and range of ``BENCH_ROUNDS`` onboardings (agencies removed after), with a
  ready schema in the pool and with the pool empty (the snapshot replayed);
- ``migrate_platform`` with nothing to apply (the whole command in a fresh process, as on deploy);
- ``migrate_platform`` with one real pending migration on a table with data: an index on
  ``crm_customer`` in a bench-only copy of the crm migrations (``MIGRATION_MODULES``), applied
  to every agency, then removed again;
- catalogue rows (pg_class) per agency.

Agencies stay between runs (slugs ``scale-NNNN``): a second run at the same size only measures.
Targets: onboarding ≤ 1 s at any count; nothing pending ≤ 60 s and one pending ≤ 10 min at 1,000.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "100,1000").split(",")]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "200"))
PROCESSES = int(os.environ.get("TENANT_MIGRATION_PROCESSES", "2"))
PENDING = os.environ.get("BENCH_PENDING", "1") == "1"  # 0: skip the (long) pending-migration run
BENCH_MIGRATION = "9001_bench_customer_index"


def spread(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    values = [v * scale for v in values]
    return (f"median {statistics.median(values):.2f} {unit} "
            f"(range {min(values):.2f}-{max(values):.2f}, {len(values)} runs)")


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def top_up(n: int) -> None:
    from django.db import connection

    from tenants.models import Agency
    from tenants.services import agency_onboard

    existing = set(Agency.objects.filter(slug__startswith="scale-").values_list("slug", flat=True))
    started = time.monotonic()
    made = 0
    for i in range(n):
        slug = f"scale-{i:04d}"
        if slug in existing:
            continue
        agency_onboard(name=f"Scale {i} 规模旅行", slug=slug, plan="starter", admin_email=f"admin@{slug}.test",
                       actor="bench")
        connection.set_schema_to_public()
        made += 1
        if made % 100 == 0:
            print(f"  … {made} agencies made ({time.monotonic() - started:.0f} s)", flush=True)
    if made:
        print(f"  made {made} agencies in {time.monotonic() - started:.0f} s", flush=True)
    seed_all(n)


def seed_all(n: int) -> None:
    """Every scale agency holds the first one's customers and their phones (copied, fast)."""
    from django.db import connection

    seed = "scale_0000"
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{seed}".crm_customer')
        if cursor.fetchone()[0] < CUSTOMERS:
            _seed_customers(seed)
        for i in range(1, n):
            schema = f"scale_{i:04d}"
            cursor.execute(f'SELECT NOT EXISTS (SELECT 1 FROM "{schema}".crm_phone)')
            if cursor.fetchone()[0]:
                cursor.execute(f'DELETE FROM "{schema}".crm_customer')
                cursor.execute(f'INSERT INTO "{schema}".crm_customer SELECT * FROM "{seed}".crm_customer')
                cursor.execute(f'INSERT INTO "{schema}".crm_phone SELECT * FROM "{seed}".crm_phone')
    connection.set_schema_to_public()


def _seed_customers(schema: str) -> None:
    from django_tenants.utils import tenant_context

    from crm.customers import services
    from crm.customers.models import ChangeLog
    from tenants.models import Agency

    with tenant_context(Agency.objects.get(schema_name=schema)):
        for i in range(CUSTOMERS):
            services.customer_create(actor=None, via=ChangeLog.Via.API, name=f"客户{i} Customer {i}",
                                     phones=[f"+86 138 {i:04d} 0000"])


def time_onboarding(method: str) -> list[float]:
    """ROUNDS onboardings the way production does them: "pool" with a ready schema in the pool
    (made before each round, untimed), "snapshot" with the pool empty (a burst of sign-ups)."""
    from tenants import schemas
    from tenants.models import Agency
    from tenants.services import agency_delete, agency_onboard

    timings = []
    for i in range(ROUNDS):
        slug = f"probe-{i}"
        if existing := Agency.objects.filter(slug=slug).first():
            agency_delete(agency=existing, confirm_slug=slug, actor="bench")
        if method == "pool":
            schemas.pool_fill(1)
        started = time.perf_counter()
        agency = agency_onboard(name=f"Probe {i}", slug=slug, plan="starter", admin_email=f"a@{slug}.test",
                                actor="bench", schema_method=method).agency
        timings.append(time.perf_counter() - started)
        assert agency.schema_method == method, agency.schema_method
        agency_delete(agency=agency, confirm_slug=slug, actor="bench")
    return timings


# migrate_platform in a fresh process, as on deploy; with a migrations package it replaces crm's.
_MIGRATE = """
import sys, django
django.setup()
from django.conf import settings
from django.core.management import call_command
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
    settings.MIGRATION_MODULES = {"crm": "bench_crm_migrations"}
call_command("migrate_platform", verbosity=0, processes=int(sys.argv[2]))
"""


def migrate_platform(package: Path | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MIGRATE, str(package or ""), str(PROCESSES)], cwd=ROOT,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"migrate_platform failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return seconds, done.stdout.strip().splitlines()[-1]


def bench_migrations_package() -> Path:
    """A copy of crm's migrations plus one more: an index on crm_customer (a table with data)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-migrations-"))
    package = folder / "bench_crm_migrations"
    shutil.copytree(ROOT / "crm" / "migrations", package, ignore=shutil.ignore_patterns("__pycache__"))
    last = sorted(p.stem for p in package.glob("0*.py"))[-1]
    (package / f"{BENCH_MIGRATION}.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [('crm', '{last}')]\n"
        "    operations = [migrations.RunSQL(\n"
        "        'CREATE INDEX bench_customer_name_created ON crm_customer (name, created_at)',\n"
        "        'DROP INDEX bench_customer_name_created')]\n")
    return folder


def remove_bench_migration(schemas: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for schema in schemas:
            cursor.execute(f'DROP INDEX IF EXISTS "{schema}".bench_customer_name_created')
            cursor.execute(f'DELETE FROM "{schema}".django_migrations WHERE app = %s AND name = %s',
                           ["crm", BENCH_MIGRATION])


def catalogue_rows() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM pg_class) + (SELECT count(*) FROM pg_attribute)")
        return cursor.fetchone()[0]


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    os.environ["TENANT_MIGRATION_EXECUTOR"] = "standard"
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from tenants.models import Agency

    os.environ["SCHEMA_POOL_SIZE"] = "0"  # the bench fills the pool itself, round by round
    settings.SCHEMA_POOL_SIZE = 0
    call_command("migrate_platform", verbosity=0)
    print(f"Scale bench: sizes {SIZES}, {ROUNDS} onboardings and {RUNS} migrate_platform runs per size, "
          f"{CUSTOMERS} customers per agency, {PROCESSES} migration processes; {machine()}; "
          f"database {settings.DATABASES['default']['NAME']}", flush=True)
    rows = []
    for size in sorted(SIZES):
        print(f"\n== {size} agencies", flush=True)
        top_up(size)
        count = Agency.objects.agencies().count()
        pooled = time_onboarding("pool")
        print(f"  onboarding, a ready schema in the pool: {spread(pooled, 'ms', 1000)}; {machine()}", flush=True)
        onboarding = time_onboarding("snapshot")
        print(f"  onboarding, pool empty (snapshot replayed): {spread(onboarding, 'ms', 1000)}; {machine()}", flush=True)
        idle = [migrate_platform()[0] for _ in range(RUNS)]
        print(f"  migrate_platform, nothing pending: {spread(idle)} "
              f"({statistics.median(idle) / count * 1000:.1f} ms per agency)", flush=True)
        pending = float("nan")
        if PENDING:
            package = bench_migrations_package()
            schemas = list(Agency.objects.agencies().values_list("schema_name", flat=True)) + [settings.TENANT_BASE_SCHEMA]
            try:
                pending, line = migrate_platform(package)
                print(f"  migrate_platform, one pending migration (index on crm_customer, {CUSTOMERS} rows per agency): "
                      f"{pending:.1f} s ({pending / count * 1000:.0f} ms per agency); {line}", flush=True)
            finally:
                remove_bench_migration(schemas)
                shutil.rmtree(package, ignore_errors=True)
                call_command("migrate_platform", verbosity=0)
        else:
            print("  migrate_platform, one pending migration: not measured (BENCH_PENDING=0)", flush=True)
        per_agency = catalogue_rows() / max(count, 1)
        rows.append((count, statistics.median(pooled), statistics.median(onboarding), statistics.median(idle), pending))
        print(f"  catalogue: {catalogue_rows():,} pg_class + pg_attribute rows (~{per_agency:.0f} per agency)", flush=True)
    print("\nagencies | onboarding (pool) | onboarding (snapshot) | migrate_platform idle | one pending migration")
    for count, pooled, onboarding, idle, pending in rows:
        print(f"{count:8d} | {pooled * 1000:14.0f} ms | {onboarding * 1000:18.0f} ms | {idle:19.1f} s | {pending:19.1f} s")
    if len(rows) > 1:
        (n0, q0, o0, i0, p0), (n1, q1, o1, i1, p1) = rows[0], rows[-1]
        print(f"growth x{n1 / n0:.0f} agencies: onboarding x{q1 / q0:.2f} (pool) x{o1 / o0:.2f} (snapshot), "
              f"idle migrate x{i1 / i0:.2f}, pending migrate x{p1 / p0:.2f}")
    print(f"Targets: onboarding ≤ 1 s, idle ≤ 60 s and one pending ≤ 600 s at 1,000 agencies. {machine()}")


if __name__ == "__main__":
    sys.exit(main())
