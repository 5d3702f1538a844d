"""What an import makes PostgreSQL write for each row (issue 22, the import's sixth pass).

    .venv/bin/python -m infra.devenv bench import_writes

1. The throwaway agency ``bench-import-writes`` imports the import bench's file (``bench.customers.write_csv``,
   BENCH_WRITE_ROWS rows, 10,000) BENCH_RUNS times (3), emptied before each: rows/s and WAL bytes a row
   (``pg_current_wal_lsn`` before and after; anything else writing meanwhile counts too, so run it alone). When
   ``pg_waldump`` can read the server's WAL (the server on this machine, this user allowed to read its files), the
   last run's WAL by kind of record: b-tree and GIN index entries, heap, row locks.
2. The rows of the last import inserted again (``INSERT … SELECT``) into temporary copies of each table, which write
   no WAL: with their indexes (``LIKE … INCLUDING ALL``) and without, BENCH_RUNS times: what each table and its
   indexes cost PostgreSQL, median (range).
3. A batch's ids: ``imports._next_ids`` for 5,000 ids against the statement it replaced, which looked the sequence up
   again for every id (median of 5 runs, range, ratio).
The agency is deleted at the end.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.request_cpu import spread  # median (range)

ROWS = int(os.environ.get("BENCH_WRITE_ROWS", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SLUG = "bench-import-writes"
TABLES = ("crm_customer", "crm_phone", "crm_email", "crm_address", "crm_employment", "crm_changelog")
IDS = 5000
OLD_IDS = "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"  # before 0d55aaa


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django_tenants.utils import tenant_context

    from tenants.models import Agency
    from tenants.services import agency_delete, agency_onboard

    if old := Agency.objects.filter(slug=SLUG).first():
        agency_delete(agency=old, confirm_slug=SLUG, actor="bench")
    agency = agency_onboard(name="Bench import writes", slug=SLUG, plan="enterprise", admin_email=f"admin@{SLUG}.test",
                            actor="bench").agency
    load = os.getloadavg()
    print(f"Import writes: {ROWS:,} rows (bench/customers.py's file), {RUNS} runs; in-process, no Celery; "
          f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {_one('SELECT version()')}",
          flush=True)
    try:
        with tenant_context(agency), tempfile.TemporaryDirectory() as tmp:
            span = _imports(Path(tmp))
            _by_record(*span)
            _tables()
            _ids()
    finally:
        agency_delete(agency=Agency.objects.get(slug=SLUG), confirm_slug=SLUG, actor="bench")
    return 0


def _one(sql: str, *params):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _imports(tmp: Path) -> tuple[str, str]:
    """Import the file RUNS times; print rows/s and WAL a row; return the last run's WAL span (start, end)."""
    from django.core.files import File

    from accounts.models import User
    from bench.customers import _empty_customers, write_csv
    from crm.customers import imports

    path = tmp / f"客户资料-{ROWS}.csv"
    write_csv(path, ROWS)
    admin = User.objects.get(email=f"admin@{SLUG}.test")
    rates, per_row = [], []
    for _run in range(RUNS):
        _empty_customers()
        with open(path, "rb") as f:
            job, _headers = imports.job_create(actor=admin, upload=File(f, name=path.name))
        imports.job_read(job)
        start = _one("SELECT pg_current_wal_lsn()::text")
        began = time.perf_counter()
        imports.run(job)
        rates.append(job.processed_rows / (time.perf_counter() - began))
        end = _one("SELECT pg_current_wal_lsn()::text")
        per_row.append(float(_one("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", end, start)) / job.processed_rows)
    written = {table: _one(f"SELECT count(*) FROM {table}") for table in TABLES}
    print(f"  import: {spread(rates, '{:,.0f}')} rows/s; WAL {spread(per_row, '{:,.0f}')} bytes a row; rows written: "
          + ", ".join(f"{table} {count:,}" for table, count in written.items()), flush=True)
    return start, end


def _by_record(start: str, end: str) -> None:
    """The last import's WAL by kind of record (``pg_waldump --stats=record``), when this process may read it."""
    try:
        directory = Path(_one("SHOW data_directory")) / "pg_wal"
        major = int(_one("SHOW server_version_num")) // 10000
        waldump = Path(f"/usr/lib/postgresql/{major}/bin/pg_waldump")
        out = subprocess.run([str(waldump), "-p", str(directory), "-s", start, "-e", end, "--stats=record"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    except Exception as exc:  # noqa: BLE001 — a remote server, or no right to read its files: say so and go on
        print(f"  WAL by kind of record: not available here ({type(exc).__name__})", flush=True)
        return
    kinds, total = defaultdict(lambda: [0, 0]), 0
    for line in out.splitlines():  # "Btree/INSERT_LEAF  271221 ( 77.85)  18324240 ( 40.68)  0 ( 0.00)  18324240 ( 39.32)"
        found = re.match(r"(\w+)/([\w+]+)\s+(\d+) \(\s*[\d.]+\)\s+\d+ \(\s*[\d.]+\)\s+\d+ \(\s*[\d.]+\)\s+(\d+)", line)
        if found:
            kind = _kind(found.group(1), found.group(2))
            kinds[kind][0] += int(found.group(3))
            kinds[kind][1] += int(found.group(4))
            total += int(found.group(4))
    print(f"  WAL of the last import by kind of record ({total / 1e6:.1f} MB):", flush=True)
    for kind, (records, size) in sorted(kinds.items(), key=lambda item: -item[1][1]):
        print(f"    {kind:38s} {records:>9,} records {size / 1e6:8.1f} MB {100 * size / total:5.1f} %", flush=True)


def _kind(manager: str, record: str) -> str:
    if manager == "Btree":
        return "b-tree leaf inserts" if record == "INSERT_LEAF" else "b-tree page splits and the rest"
    if manager == "Gin":
        return "GIN pending-list appends" if record == "UPDATE_META_PAGE" else "GIN pending-list cleanup and the rest"
    if manager == "Heap" and record == "LOCK":
        return "row locks (foreign-key checks)"
    if manager in ("Heap", "Heap2"):
        return "heap (the rows)"
    return "other (sequences, commits, …)"


def _tables() -> None:
    """Each table's rows of the last import inserted again into temporary copies, with and without indexes."""
    from django.db import connection, transaction

    print(f"  the last import's rows inserted again into temporary copies (no WAL), ms, median of {RUNS} (range):",
          flush=True)
    with transaction.atomic(), connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"CREATE TEMP TABLE w_{table} (LIKE {table} INCLUDING ALL) ON COMMIT DROP")
            cursor.execute(f"CREATE TEMP TABLE n_{table} (LIKE {table}) ON COMMIT DROP")
            cost = {}
            for copy in (f"w_{table}", f"n_{table}"):
                times = []
                for _run in range(RUNS):
                    cursor.execute(f"TRUNCATE {copy}")
                    began = time.perf_counter()
                    cursor.execute(f"INSERT INTO {copy} SELECT * FROM {table}")
                    times.append((time.perf_counter() - began) * 1000)
                cost[copy[0]] = times
            cursor.execute(f"SELECT count(*) FROM {table}")
            rows = cursor.fetchone()[0]
            print(f"    {table:16s} {rows:>8,} rows: with its indexes {spread(cost['w'], '{:.0f}'):>16s}, "
                  f"without {spread(cost['n'], '{:.0f}'):>14s}", flush=True)
        # The grams index's expression alone (crm_search_grams, PL/pgSQL), over the same customers.
        times = []
        for _run in range(RUNS):
            began = time.perf_counter()
            cursor.execute("SELECT sum(cardinality(crm_search_grams(search_text))) FROM crm_customer")
            times.append((time.perf_counter() - began) * 1000)
        print(f"    crm_search_grams(search_text) over the customers: {spread(times, '{:.0f}')} ms", flush=True)


def _ids() -> None:
    from django.db import connection

    from crm.customers import imports
    from crm.customers.models import Customer

    old, new = [], []
    for _run in range(5):
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(OLD_IDS, [Customer._meta.db_table, IDS])
            cursor.fetchall()
        old.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        imports._next_ids(Customer, IDS)
        new.append((time.perf_counter() - began) * 1000)
    print(f"  {IDS:,} ids: imports._next_ids {spread(new, '{:.1f}')} ms; the sequence looked up for every id "
          f"{spread(old, '{:.1f}')} ms; {statistics.median(old) / statistics.median(new):.1f}× as long", flush=True)


if __name__ == "__main__":
    sys.exit(main())
