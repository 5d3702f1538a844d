"""Long jobs' leases (caravan.leases): what they cost, and how soon a dead worker's job goes on.

    DATABASE_URL=…/caravan_bench CELERY_QUEUE=bench .venv/bin/python -m infra.devenv bench job_resume

In an agency ``bench-resume`` (enterprise plan: no customer limit), with generated spreadsheets of N
rows for each N in BENCH_RESUME_SIZES (default 50000,150000):

1. **Resumption.** A real worker (``celery worker --pool solo`` subprocess, ``JOB_LEASE_SECONDS`` =
   BENCH_RESUME_LEASE, default 10) is SIGKILLed once the first batch of an N-row import (smallest N) is
   committed; a new worker is started at once and the watchdog run every second. Timed, BENCH_RESUME_KILLS
   times (default 3): from the kill to the resumed worker holding the lease, and to the import done
   (compared with the same import uninterrupted). In production the beat runs the watchdog every
   minute: add up to 60 s to the first figure. Every row is checked to land exactly once.
2. **Overhead.** The import through its task (``crm.import_customers``: lease taken, heartbeat thread,
   checkpoint committed in each batch's transaction, lease given up) against ``crm.customers.imports.run`` alone
   (no lease, nothing saved between batches), alternating, BENCH_RESUME_RUNS runs at the smallest size
   (default 3) and BENCH_RESUME_RUNS_LARGE at the others (default 2);
   the imported customers are deleted between runs. Median and range of each, and the difference.
"""
import csv
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [int(n) for n in os.environ.get("BENCH_RESUME_SIZES", "50000,150000").split(",")]
RUNS = int(os.environ.get("BENCH_RESUME_RUNS", "3"))
RUNS_LARGE = int(os.environ.get("BENCH_RESUME_RUNS_LARGE", "2"))
KILLS = int(os.environ.get("BENCH_RESUME_KILLS", "3"))
LEASE = int(os.environ.get("BENCH_RESUME_LEASE", "10"))
SLUG = "bench-resume"
ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate_platform", verbosity=0)
    print(f"Machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    agency = _agency()
    work = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    files = {n: _spreadsheet(work / f"{n}.csv", n) for n in SIZES}
    n = min(SIZES)
    print(f"\n1. Resumption after SIGKILL of the worker mid-import ({n:,} rows, JOB_LEASE_SECONDS={LEASE}, "
          f"watchdog every 1 s), {KILLS} kills:", flush=True)
    resumed, total, clean = [], [], []
    for _ in range(KILLS):
        to_lease, to_done, plain = _kill_and_resume(agency, files[n], n, work)
        print(f"   kill: resumed after {to_lease:.1f} s, done after {to_done:.1f} s (uninterrupted {plain:.1f} s)",
              flush=True)
        resumed.append(to_lease)
        total.append(to_done)
        clean.append(plain)
    print(f"   kill → resumed worker holds the lease: {_fig(resumed)} s (lease {LEASE} s + watchdog + pickup)")
    print(f"   whole import with one kill: {_fig(total)} s; uninterrupted (same worker setup): {_fig(clean)} s")
    print(f"   with the beat's one-minute watchdog: resumption ≤ {statistics.median(resumed) + 60:.0f} s after death; "
          f"with JOB_LEASE_SECONDS=60 (production): ≤ {60 + 60 + statistics.median(resumed) - LEASE:.0f} s", flush=True)
    print("\n2. Import overhead of the lease (task with lease, heartbeat and checkpoints vs. imports.run alone), "
          f"alternating, {RUNS} runs at {n:,} rows and {RUNS_LARGE} at larger sizes:", flush=True)
    for n in SIZES:
        leased, bare = [], []
        for _ in range(RUNS if n == min(SIZES) else RUNS_LARGE):
            bare.append(_import(agency, files[n], n, leased=False))
            leased.append(_import(agency, files[n], n, leased=True))
        overhead = [(a - b) / b * 100 for a, b in zip(leased, bare)]
        print(f"   {n:>7,} rows: no lease {_fig(bare)} s ({n / statistics.median(bare):,.0f} rows/s); "
              f"leased {_fig(leased)} s; overhead median {statistics.median(overhead):+.1f} % "
              f"(range {min(overhead):+.1f} … {max(overhead):+.1f} %)", flush=True)
    return 0


def _fig(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} (range {min(values):.1f}–{max(values):.1f})"


def _agency():
    from tenants.models import Agency
    from tenants.services import agency_onboard

    return Agency.objects.filter(slug=SLUG).first() or agency_onboard(
        name="Bench resume", slug=SLUG, plan="enterprise", admin_email=f"admin@{SLUG}.test", actor="bench").agency


def _spreadsheet(path: Path, rows: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["姓名", "手机", "邮箱", "编号", "城市"])
        for i in range(rows):
            writer.writerow([f"基准客户{i}", f"136{i:08d}", f"bench{i}@resume.test", f"bench-resume-{i}", "上海"])
    return path


def _clean(agency) -> None:
    from django.db import connection
    from django_tenants.utils import tenant_context

    with tenant_context(agency), connection.cursor() as cursor:
        for table in ("crm_phone", "crm_email", "crm_address", "crm_changelog"):
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute("DELETE FROM crm_customer")
        cursor.execute("DELETE FROM crm_importjob")


def _job(agency, path: Path):
    from django.core.files import File
    from django_tenants.utils import tenant_context

    from accounts.models import User
    from caravan import leases
    from crm.customers.models import ImportJob

    with tenant_context(agency), open(path, "rb") as source:
        job = ImportJob(created_by=User.objects.get(email=f"admin@{SLUG}.test"), original_name=path.name,
                        mapping={"姓名": "name", "手机": "phone", "邮箱": "email", "编号": "external_ref", "城市": "city"},
                        status=ImportJob.Status.RUNNING, **leases.offered())
        job.file.save(path.name, File(source), save=False)
        job.save()
        return job


def _import(agency, path: Path, rows: int, *, leased: bool) -> float:
    from django_tenants.utils import tenant_context

    from crm.customers import imports
    from crm.customers.models import ImportJob
    from crm.customers.tasks import import_customers

    _clean(agency)
    job = _job(agency, path)
    with tenant_context(agency):
        started = time.perf_counter()
        if leased:
            import_customers.apply(args=[job.pk]).get()
        else:
            imports.run(ImportJob.objects.select_related("created_by").get(pk=job.pk))
        elapsed = time.perf_counter() - started
        if leased:
            job.refresh_from_db()
            assert (job.status, job.created_count) == ("done", rows), (job.status, job.created_count, job.errors[:3])
    return elapsed


def _worker(env: dict, log: Path) -> subprocess.Popen:
    """A worker on the bench's own queue, once it says it is ready."""
    log.write_bytes(b"")
    process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "caravan", "worker", "--pool", "solo",
                                "--loglevel", "INFO", "-Q", env["CELERY_QUEUE"], "-n", f"bench-{time.monotonic_ns()}@%h"],
                               cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while b"ready." not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return process


def _kill_and_resume(agency, path: Path, rows: int, work: Path) -> tuple[float, float, float]:
    from django.conf import settings
    from django_tenants.utils import tenant_context

    from caravan import leases
    from caravan.celery import app
    from crm.customers import imports
    from crm.customers.models import Customer, ImportJob
    from crm.customers.tasks import import_customers

    # The worker reads the queue this process sends to (the watchdog's re-queued run goes there too).
    env = {**os.environ, "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE, "JOB_LEASE_SECONDS": str(LEASE),
           "MEDIA_ROOT": str(settings.MEDIA_ROOT), "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")])}
    app.control.purge()

    def state(job):
        with tenant_context(agency):
            return ImportJob.objects.filter(pk=job.pk).values("status", "processed_rows", "attempts", "lease_owner").get()

    def queue(job):
        with tenant_context(agency):
            import_customers.delay(job.pk)  # autocommit: sent at once
        return time.perf_counter()

    # The same import uninterrupted, by the same kind of worker, for comparison.
    _clean(agency)
    job = _job(agency, path)
    worker = _worker(env, work / "worker-1.log")
    started = queue(job)
    while state(job)["status"] == "running":
        time.sleep(0.05)
    plain = time.perf_counter() - started
    worker.kill()
    worker.wait()

    _clean(agency)
    job = _job(agency, path)
    worker = _worker(env, work / "worker-2.log")
    started = queue(job)
    while state(job)["processed_rows"] < imports.BATCH_SIZE:
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    killed = time.perf_counter()
    worker = _worker(env, work / "worker-3.log")  # started at once: its start-up is part of the figure
    resumed = None
    while True:
        now = state(job)
        if resumed is None and now["attempts"] == 2 and now["lease_owner"]:
            resumed = time.perf_counter() - killed
        if now["status"] != "running":
            break
        if resumed is None:
            with tenant_context(agency):
                leases.watchdog(public=False)  # the beat's job, here every second
        time.sleep(1 if resumed is None else 0.05)
    done = time.perf_counter() - started
    worker.kill()
    worker.wait()
    with tenant_context(agency):
        job.refresh_from_db()
        refs = Customer.objects.filter(external_ref__startswith="bench-resume-").values("external_ref").distinct().count()
        count = Customer.objects.count()
    assert (job.status, job.attempts, job.created_count, refs, count) == ("done", 2, rows, rows, rows), \
        (job.status, job.attempts, job.created_count, refs, count)
    return resumed, done, plain


if __name__ == "__main__":
    sys.exit(main())
