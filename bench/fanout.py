"""Periodic agency work with idle agencies: the old fan-out (one task per live agency per beat)
against the due-time fan-out (tenants.jobs), at BENCH_FANOUT_SIZES agencies (100 and 1,000).

    .venv/bin/python -m infra.devenv bench fanout

Needs only the public tables (``migrate_schemas --shared`` is run); use a bench database: for each
size, N fake agencies (rows in tenants_agency named ``bench-fan-*``, no schemas; time zones spread
over five zones) plus N/10 suspended ones are committed (so VACUUM can clear the claims' old row
versions, as autovacuum does in production) and deleted at the end, with due rows in their steady
idle state:

1. Tasks queued per hour: the real beat schedule (``caravan.celery``) played minute by minute over a
   simulated day. Old: every ``caravan.fan_out`` entry queues one task per live agency. New: each
   beat claims the due agencies with ``claim_due`` (the real statement) and each claimed run records
   its next due time as an idle agency's job does (nothing found: the safety net; hourly/daily ones:
   the next local time they act).
2. The beat-side cost of one claiming statement, nothing due (the common case) and every agency
   due (worst case), median and range of BENCH_FANOUT_QUERIES runs.
3. A real Celery worker (``celery -A bench._fanout_worker worker -P solo``, the project's Celery
   settings) against Redis drains BENCH_FANOUT_TASKS empty agency tasks, BENCH_FANOUT_RUNS times:
   tasks/s, and from it the idle cost of periodic work at each size as % of one worker, old and new.
   Target: new < 2 % of one worker at 1,000 agencies.
"""
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from datetime import time as clock
from datetime import timezone as dt_timezone
from pathlib import Path

SIZES = [int(n) for n in os.environ.get("BENCH_FANOUT_SIZES", "100,1000").split(",")]
QUERIES = int(os.environ.get("BENCH_FANOUT_QUERIES", "30"))
TASKS = int(os.environ.get("BENCH_FANOUT_TASKS", "1000"))
RUNS = int(os.environ.get("BENCH_FANOUT_RUNS", "3"))
ZONES = ["Asia/Shanghai", "Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
# When the hourly-checked jobs act on an agency's clock (tiers.QUIET_HOUR, loyalty's default greeting
# hour, care's after-trip day boundary): what their next_due functions return for an idle agency.
LOCAL = {"tiers.assign_nightly": clock(2, 0), "loyalty.greetings": clock(8, 0), "care.after_trip": clock(0, 0)}
QUEUE = "bench_fanout"
ROOT = Path(__file__).resolve().parent.parent
DAY0 = datetime(2027, 3, 1, 0, 30, tzinfo=dt_timezone.utc)  # not on a local midnight or hour: no edge effect


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", shared=True, verbosity=0)
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} / {os.getloadavg()[1]:.2f}; "
          f"sizes {SIZES}; {QUERIES} claim statements per case; worker drain {RUNS} x {TASKS} tasks")
    entries = agency_entries()
    per_size = {}
    for n in SIZES:
        per_size[n] = one_size(n, entries)
    rates = drain_rates()
    rate = statistics.median(rates)
    print(f"\nworker drain of empty agency tasks: median {rate:.0f} tasks/s (range {min(rates):.0f}–{max(rates):.0f}, "
          f"{RUNS} runs of {TASKS})")
    for n, (old, new) in per_size.items():
        print(f"idle cost at {n:>5,} agencies: old {old:>9,.0f} tasks/h = {old / 3600 / rate * 100:6.2f} % of one worker; "
              f"new {new:>7,.0f} tasks/h = {new / 3600 / rate * 100:5.2f} % (x{old / new:.0f} fewer)")
    return 0


def agency_entries() -> dict:
    """``caravan.fan_out`` entries of the real beat schedule: job → crontab."""
    from caravan.celery import app

    return {entry["args"][0]: entry["schedule"] for entry in app.conf.beat_schedule.values()
            if entry["task"] == "caravan.fan_out"}


def fires(entries: dict):
    """(minute of the simulated day, job) for every beat of the day, in order."""
    for minute in range(24 * 60):
        at = DAY0 + timedelta(minutes=minute)
        for job, cron in entries.items():
            if at.minute in cron.minute and at.hour in cron.hour:
                yield at, job


def one_size(n: int, entries: dict) -> tuple[float, float]:
    from tenants.models import Agency

    print(f"\n--- {n:,} live agencies (+ {n // 10:,} suspended) ---")
    try:
        agencies = fake_agencies(n)
        steady_state(agencies, entries)
        old, new, by_job = simulate_day(n, entries, agencies)
        print(f"tasks queued per hour, idle agencies, over a simulated day: old {old:,.0f} "
              f"({old / n / 60:.2f} per agency per minute), new {new:,.0f} ({new / n:.2f} per agency per hour)")
        print("  per job, new, per agency per day: " + ", ".join(f"{job} {count / n:.1f}" for job, count in by_job.items()))
        claim_costs(n, entries, agencies)
    finally:
        Agency.objects.filter(slug__startswith="bench-fan-").delete()
    return old, new


def vacuum() -> None:
    from django.db import connection

    from tenants.jobs.models import AgencyJob

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {AgencyJob._meta.db_table}")


def fake_agencies(n: int) -> list:
    from tenants.models import Agency

    Agency.objects.filter(slug__startswith="bench-fan-").delete()
    rows = [Agency(name=f"Bench fan {i}", slug=f"bench-fan-{i}", schema_name=f"bench_fan_{i}", time_zone=ZONES[i % len(ZONES)],
                   status=Agency.Status.ACTIVE if i < n else Agency.Status.SUSPENDED) for i in range(n + n // 10)]
    Agency.objects.bulk_create(rows, batch_size=1000)
    return list(Agency.objects.filter(slug__startswith="bench-fan-", status=Agency.Status.ACTIVE))


def next_idle(job: str, agency, at: datetime) -> datetime:
    """What an idle agency's run at ``at`` records: its next local time, or the safety net."""
    from tenants.jobs import services as agency_jobs

    if job in LOCAL:
        return min(agency_jobs.next_local(agency, LOCAL[job], now=at), at + agency_jobs.job_for(job).every)
    return at + agency_jobs.job_for(job).every


def steady_state(agencies: list, entries: dict) -> None:
    """Idle agencies as they are after a while: minute jobs due at random points of their safety
    net, local-time jobs at their next local time, nightly jobs at their beat (once a day)."""
    from tenants.jobs import services as agency_jobs
    from tenants.jobs.models import AgencyJob

    AgencyJob.objects.unscoped().filter(agency__slug__startswith="bench-fan-").delete()
    rows = []
    for job in entries:
        every = agency_jobs.job_for(job).every
        for agency in agencies:
            if job in LOCAL:
                due = agency_jobs.next_local(agency, LOCAL[job], now=DAY0)
            elif every < timedelta(hours=12):
                due = DAY0 + every * random.random()
            else:
                due = DAY0
            rows.append(AgencyJob(agency=agency, job=job, due_at=due))
    AgencyJob.objects.unscoped().bulk_create(rows, batch_size=5000)
    vacuum()


def simulate_day(n: int, entries: dict, agencies: list) -> tuple[float, float, dict]:
    from django.db import connection

    from tenants.jobs.models import AgencyJob
    from tenants.jobs.services import claim_due

    table = AgencyJob._meta.db_table
    by_id = {a.pk: a for a in agencies}
    old = new = 0
    by_job = dict.fromkeys(entries, 0)
    hour = None
    for at, job in fires(entries):
        if at.hour != hour:  # as autovacuum would: the claims' old row versions cleared now and then
            hour = at.hour
            vacuum()
        old += n
        claimed = claim_due(job, now=at)
        new += len(claimed)
        by_job[job] += len(claimed)
        if claimed:  # each claimed run finds nothing to do and records its next due time
            ids = [a.pk for a in claimed]
            nexts = [next_idle(job, by_id[pk], at) for pk in ids]
            with connection.cursor() as cursor:
                cursor.execute(f"""UPDATE {table} j SET due_at = v.next, ran_at = %s
                                   FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, next)
                                   WHERE j.agency_id = v.id AND j.job = %s""", [at, ids, nexts, job])
    return old / 24, new / 24, by_job


def claim_costs(n: int, entries: dict, agencies: list) -> None:
    from tenants.jobs.models import AgencyJob
    from tenants.jobs.services import claim_due

    job = "campaigns.tick"
    at = DAY0 + timedelta(days=1)
    AgencyJob.objects.unscoped().filter(job=job).update(due_at=at + timedelta(minutes=30))
    vacuum()
    idle = []
    for _ in range(QUERIES):  # nothing due: the statement reads and writes nothing
        started = time.perf_counter()
        assert claim_due(job, now=at) == []
        idle.append((time.perf_counter() - started) * 1000)
    busy = []
    for _ in range(QUERIES):
        AgencyJob.objects.unscoped().filter(job=job).update(due_at=at - timedelta(minutes=1))
        vacuum()
        started = time.perf_counter()
        claimed = claim_due(job, now=at)
        busy.append((time.perf_counter() - started) * 1000)
        assert len(claimed) == n
    print(f"one fan-out claim ({job}): nothing due median {statistics.median(idle):.2f} ms "
          f"(range {min(idle):.2f}–{max(idle):.2f}); all {n:,} due median {statistics.median(busy):.1f} ms "
          f"(range {min(busy):.1f}–{max(busy):.1f})")


def drain_rates() -> list[float]:
    """A real worker process drains TASKS empty agency tasks; tasks/s from the first to the last run."""
    import redis
    from django.conf import settings
    from django_tenants.utils import tenant_context

    from tenants.models import Agency

    sys.path.insert(0, str(ROOT))
    from bench._fanout_worker import noop

    Agency.objects.filter(slug="bench-drain").delete()
    agency = Agency(name="Bench drain", slug="bench-drain", schema_name="bench_drain")  # no schema: the task reads nothing
    Agency.objects.bulk_create([agency])
    agency = Agency.objects.get(slug="bench-drain")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(QUEUE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "platform"), os.environ.get("PYTHONPATH", "")]))
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "bench._fanout_worker", "worker", "-P", "solo",
                               "-Q", QUEUE, "-l", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rates = []
    try:
        for run in range(RUNS + 1):  # the first run warms the worker up and is not counted
            key = f"bench:fanout:{run}:{time.time()}"
            count = TASKS if run else 50
            with tenant_context(agency):
                for _ in range(count):
                    noop.apply_async((key,), queue=QUEUE)
            deadline = time.monotonic() + 120 + count / 10
            while int(client.get(f"{key}:count") or 0) < count:
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise RuntimeError("the worker did not drain the queue: " + worker.stderr.read().decode()[-2000:]
                                       if worker.poll() is not None else "the worker did not drain the queue in time")
                time.sleep(0.05)
            if run:
                first, last = float(client.get(f"{key}:first")), float(client.get(f"{key}:last"))
                rates.append((count - 1) / (last - first))
            client.delete(f"{key}:first", f"{key}:last", f"{key}:count")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        Agency.objects.filter(slug="bench-drain").delete()
    return rates


if __name__ == "__main__":
    sys.exit(main())
