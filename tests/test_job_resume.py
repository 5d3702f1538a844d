"""Long jobs survive a dead worker (caravan.leases): a real Celery worker is killed with SIGKILL in
the middle of a job, a new worker starts, the watchdog finds the lease run out and queues the job
again, and the job resumes from its checkpoint: every row lands exactly once.

The worker runs as a subprocess on the committed test database with a 2-second lease; the test
process plays the watchdog (``leases.watchdog``, what ``caravan.leases_watchdog`` and the fanned-out
``leases.watchdog`` run every minute) and reads the results through its own committed connection.
"""
import csv
import io
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone, translation
from django.utils.html import escape
from django_tenants.utils import schema_context, tenant_context

from caravan import leases
from caravan.celery import app as celery_app
from crm.customers import exports, imports
from crm.customers.models import Customer, CustomerExport, ImportJob
from crm.customers.tasks import import_customers
from . import servers
from .conftest import staff

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ROWS = 20_000
LEASE_SECONDS = 2
REF = "resume-test-"


class Worker:
    """``celery worker --pool solo`` (tasks run in its main process: SIGKILL kills the job mid-step)."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log, self.process = env, log, None

    def start(self) -> "Worker":
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "caravan", "worker", "--pool", "solo", "--loglevel", "INFO",
                 "-Q", self.env["CELERY_QUEUE"], "-n", f"resume-{os.getpid()}-{time.monotonic_ns()}@%h"],
                cwd=servers.ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while b"ready." not in self.log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start:\n{servers.log_tail(self.log)}")
            time.sleep(0.2)
        return self

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            servers.stop(self.process, timeout=20)


@pytest.fixture
def worker(django_db_setup, tmp_path):
    """Start and kill workers at will (``worker.start()``, ``worker.kill()``); stopped afterwards."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE  # where this test process queues
    env = os.environ.copy()
    env.update({
        "DATABASE_URL": servers.database_url(connection.settings_dict),
        "DJANGO_SETTINGS_MODULE": "caravan.settings",
        "FAST_PASSWORD_HASHING": "1",
        "CELERY_QUEUE": queue,
        "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "EXPORT_ROOT": str(settings.EXPORT_ROOT),
        "FEED_SPOOL_DIR": str(settings.FEED_SPOOL_DIR),
        "PYTHONPATH": os.pathsep.join([str(servers.ROOT), str(servers.ROOT / "platform")]
                                      + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]),
    })
    celery_app.control.purge()
    workers = []

    def make() -> Worker:
        started = Worker(env, tmp_path / f"worker-{len(workers) + 1}.log").start()
        workers.append(started)
        return started

    yield make
    for each in workers:
        each.stop()


def wait_for(what: str, check, *, timeout: float = 240, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s" + (f":\n{servers.log_tail(log)}" if log else ""))
        time.sleep(0.05)


def watchdog_until_resumed(committed, agency, *, public: bool = False, timeout: float = 30) -> dict:
    """Run the watchdog (as the beat would, every minute) until it has queued the job again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with committed():
            if public:
                with schema_context("public"):
                    counts = leases.watchdog(public=True)
            else:
                with tenant_context(agency):
                    counts = leases.watchdog(public=False)
        if counts["resumed"] or counts["failed"]:
            return counts
        time.sleep(0.2)
    pytest.fail("the watchdog found no expired lease")


@pytest.fixture
def cleanup(committed, alpha):
    yield
    with committed(), tenant_context(alpha), connection.cursor() as cursor:
        ids = "SELECT id FROM crm_customer WHERE external_ref LIKE 'resume-test-%%'"
        for table in ("crm_phone", "crm_email", "crm_changelog"):
            cursor.execute(f"DELETE FROM {table} WHERE customer_id IN ({ids})")
        cursor.execute(f"DELETE FROM crm_customer WHERE id IN ({ids})")
        CustomerExport.objects.all().delete()


def spreadsheet(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "手机", "编号"])
    for i in range(rows):
        writer.writerow([f"续传客户{i}", f"137{i:08d}", f"{REF}{i}"])
    return out.getvalue().encode()


def test_an_import_killed_mid_run_resumes_and_every_row_lands_once(worker, committed, alpha, cleanup):
    first = worker()
    with committed(), tenant_context(alpha):
        job, _headers = imports.job_create(actor=staff(alpha, "admin"),
                                           upload=SimpleUploadedFile("resume.csv", spreadsheet(ROWS)))

    def read():
        with committed(), tenant_context(alpha):
            return imports.state(ImportJob.objects.get(pk=job.pk)).get("headers")

    wait_for("the worker reading the file", read, log=first.log)
    with committed(), tenant_context(alpha):
        job = imports.job_start(ImportJob.objects.get(pk=job.pk), mapping={"姓名": "name", "手机": "phone", "编号": "external_ref"})
        import_customers.delay(job.pk)

    def midway():
        with committed(), tenant_context(alpha):
            row = ImportJob.objects.filter(pk=job.pk).values("status", "processed_rows").get()
        assert row["status"] == "running", f"the import ended before it could be killed: {row}"
        return row["processed_rows"] >= imports.BATCH_SIZE

    wait_for("the first batch", midway, log=first.log)
    first.kill()
    killed_at = time.monotonic()
    with committed(), tenant_context(alpha):
        at_kill = ImportJob.objects.get(pk=job.pk)
        written = Customer.objects.filter(external_ref__startswith=REF).count()
    assert at_kill.status == "running" and 0 < at_kill.processed_rows < ROWS
    assert written >= at_kill.processed_rows  # committed with its checkpoint (perhaps one batch more, uncounted)

    # Before the lease runs out nothing is resumed (the worker might only be slow); then "run" is
    # not refused for ever: the stale lease is taken over.
    with committed(), tenant_context(alpha):
        assert leases.watchdog(public=False) == {"resumed": 0, "failed": 0}
    worker()
    counts = watchdog_until_resumed(committed, alpha)
    assert counts == {"resumed": 1, "failed": 0}

    def finished():
        with committed(), tenant_context(alpha):
            return ImportJob.objects.get(pk=job.pk).status in ("done", "failed")

    wait_for("the resumed import", finished, log=first.log)
    resumed_after = time.monotonic() - killed_at
    with committed(), tenant_context(alpha):
        job = ImportJob.objects.get(pk=job.pk)
        refs = list(Customer.objects.filter(external_ref__startswith=REF).values_list("external_ref", flat=True))
        phones = Customer.objects.filter(external_ref__startswith=REF, phones__number__startswith="+86137").count()
    assert (job.status, job.attempts, job.failure) == ("done", 2, "")
    assert (job.processed_rows, job.created_count, job.updated_count, job.error_count) == (ROWS, ROWS, 0, 0)
    assert len(refs) == ROWS and len(set(refs)) == ROWS and phones == ROWS  # each row once: none lost, none twice
    assert resumed_after < 120


def test_a_large_customer_export_killed_mid_file_resumes_to_a_complete_file(worker, committed, alpha, cleanup,
                                                                           monkeypatch):
    with committed(), tenant_context(alpha), connection.cursor() as cursor:
        now = timezone.now()
        cursor.execute(
            "INSERT INTO crm_customer (kind, name, latin_surname, latin_given, gender, language, source, tags, notes, "
            "industry, external_ref, search_text, created_at, updated_at) "
            "SELECT 'person', '导出客户' || i, '', '', '', 'zh-hans', 'import', '{}', '', '', %s || i, '', %s, %s "
            "FROM generate_series(1, %s) i", [REF, now, now, ROWS])
        expected = set(Customer.objects.filter(merged_into__isnull=True).values_list("pk", flat=True))
        owner = staff(alpha, "admin")
    first = worker()
    with committed(), tenant_context(alpha):
        job = exports.export_request(actor=owner, filters={})
    with committed(), tenant_context(alpha):
        assert CustomerExport.objects.get(pk=job.pk).status == "running"

    def midway():
        with committed(), tenant_context(alpha):
            row = CustomerExport.objects.filter(pk=job.pk).values("status", "done_rows").get()
        assert row["status"] == "running", f"the export ended before it could be killed: {row}"
        return row["done_rows"] >= exports.PAGE

    wait_for("the first page of the export", midway, log=first.log)
    first.kill()
    worker()
    assert watchdog_until_resumed(committed, alpha) == {"resumed": 1, "failed": 0}

    def finished():
        with committed(), tenant_context(alpha):
            return CustomerExport.objects.get(pk=job.pk).status in ("done", "failed")

    wait_for("the resumed export", finished, log=first.log)
    with committed(), tenant_context(alpha):
        job = CustomerExport.objects.get(pk=job.pk)
        path = exports.folder() / job.file_name
    assert (job.status, job.attempts, job.total_rows, job.done_rows) == ("done", 2, len(expected), len(expected))
    assert Path(settings.EXPORT_ROOT) in path.parents and Path(settings.MEDIA_ROOT) not in path.parents
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    ids = [int(r[0]) for r in rows[1:]]
    assert len(ids) == len(expected) and set(ids) == expected and ids == sorted(ids)  # complete, each once, in order
    assert job.size == path.stat().st_size


def offers(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"data": {"offers": [')
        for i in range(count):
            day = f"2027-03-{1 + i % 28:02d}"
            segment = ('{"origin": {"iata_code": "PEK"}, "destination": {"iata_code": "SHA"}, "departing_at": "%sT08:00:00",'
                       ' "arriving_at": "%sT10:30:00", "marketing_carrier": {"iata_code": "CA"},'
                       ' "marketing_carrier_flight_number": "%d", "passengers": [{"cabin_class": "economy"}]}') % (
                day, day, 1000 + i % 8000)
            out.write(("," if i else "") + '{"id": "off_resume_%d", "total_amount": "%d.00", "total_currency": "CNY",'
                      ' "slices": [{"origin": {"iata_code": "PEK"}, "destination": {"iata_code": "SHA"}, "duration":'
                      ' "PT2H30M", "fare_brand_name": "Economy", "segments": [%s]}]}' % (i, 600 + i % 2000, segment))
        out.write("]}}")


def test_a_feed_run_killed_mid_message_is_run_again_and_its_offers_land_once(worker, committed):
    from integrations import services
    from integrations.models import Feed, FeedRun, FlightOffer, Supplier

    count = 60_000
    with committed(), schema_context("public"):
        Supplier.objects.filter(code="resume-air").delete()
        supplier = Supplier.objects.create(code="resume-air", name="Resume air", kind="air")
        feed = services.feed_save(Feed(supplier=supplier, name="offers", connector="air_offers", mode="push"))
    spool = services._spool(feed)
    offers(spool, count)
    first = worker()
    try:
        with committed(), schema_context("public"):
            services.queue_file(feed, spool, trigger="push")
            run = FeedRun.objects.unscoped().filter(feed=feed).get()

        def running():
            with committed(), schema_context("public"):
                row = FeedRun.objects.unscoped().filter(pk=run.pk).values("status", "lease_owner").get()
            assert row["status"] == "running", f"the run ended before it could be killed: {row}"
            return row["lease_owner"] != ""

        wait_for("the worker taking the run", running, log=first.log)
        time.sleep(1.0)  # well into reading the message
        first.kill()
        with committed(), schema_context("public"):
            assert FeedRun.objects.unscoped().get(pk=run.pk).status == "running"
            assert not FlightOffer.objects.unscoped().filter(feed=feed).exists()  # one transaction: nothing half-written
        assert spool.exists()  # kept for the next attempt
        worker()
        assert watchdog_until_resumed(committed, None, public=True) == {"resumed": 1, "failed": 0}

        def finished():
            with committed(), schema_context("public"):
                return FeedRun.objects.unscoped().get(pk=run.pk).status != "running"

        wait_for("the resumed run", finished, log=first.log)
        with committed(), schema_context("public"):
            run = FeedRun.objects.unscoped().get(pk=run.pk)
            stored = FlightOffer.objects.unscoped().filter(feed=feed).count()
            distinct = FlightOffer.objects.unscoped().filter(feed=feed).values("offer_id").distinct().count()
            runs = FeedRun.objects.unscoped().filter(feed=feed).count()
        assert (run.status, run.attempts, run.rows_accepted, runs) == ("succeeded", 2, count, 1)
        assert stored == distinct == count and not spool.exists()
    finally:
        with committed(), schema_context("public"):
            Supplier.objects.filter(code="resume-air").delete()


def test_a_job_that_keeps_dying_fails_with_a_reason_its_page_and_api_show(committed, alpha, page_client, api_client,
                                                                           settings, cleanup):
    """Each attempt takes the lease and dies (the lease runs out); after JOB_MAX_ATTEMPTS the watchdog
    gives the job up with a reason instead of queueing it again."""
    with committed(), tenant_context(alpha):
        owner = staff(alpha, "admin")
        job = ImportJob.objects.create(created_by=owner, original_name="dies.csv", status="running",
                                       mapping={"姓名": "name"}, **leases.offered())
    for attempt in range(1, settings.JOB_MAX_ATTEMPTS + 1):
        with committed(), tenant_context(alpha):
            lease = leases.acquire(imports.IMPORT, job.pk)
            assert lease is not None and lease.attempts == attempt
            assert leases.acquire(imports.IMPORT, job.pk) is None  # held: a second message does nothing
            ImportJob.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))  # it died
            outcome = leases.watchdog(public=False)
        assert outcome == ({"resumed": 1, "failed": 0} if attempt < settings.JOB_MAX_ATTEMPTS else
                           {"resumed": 0, "failed": 1})
    with translation.override(alpha.language):
        reason = leases.reason_given_up()  # in the agency's language
    with committed(), tenant_context(alpha):
        job = ImportJob.objects.get(pk=job.pk)
        assert (job.status, job.failure, job.lease_until) == ("failed", reason, None)
        assert leases.acquire(imports.IMPORT, job.pk) is None  # the redelivered message finds it given up
    page = page_client("alpha", "admin").get(f"/customers/import/{job.pk}/")
    assert 'data-test="failure"' in page.content.decode() and escape(reason) in page.content.decode()
    body = api_client("alpha", "admin").get(f"/api/v1/imports/{job.pk}/").json()
    assert body["status"] == "failed" and body["failure"] == reason
    # Fence: the job and its reason are alpha's only.
    assert page_client("bravo", "admin").get(f"/customers/import/{job.pk}/").status_code == 404
    assert api_client("bravo", "admin").get(f"/api/v1/imports/{job.pk}/").status_code == 404
    with committed(), tenant_context(alpha):
        ImportJob.objects.filter(pk=job.pk).delete()


def test_run_takes_over_a_stale_import_instead_of_answering_409_for_ever(committed, alpha, cleanup):
    with committed(), tenant_context(alpha):
        job = ImportJob.objects.create(created_by=staff(alpha, "admin"), original_name="stuck.csv", status="running",
                                       mapping={"姓名": "name"}, **leases.offered())
        assert leases.acquire(imports.IMPORT, job.pk) is not None  # a worker took it …
        with pytest.raises(imports.ImportAlreadyStarted):  # … and is alive: a second "run" is refused
            imports.job_start(ImportJob.objects.get(pk=job.pk), mapping=job.mapping)
        ImportJob.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))  # … then died
        again = imports.job_start(ImportJob.objects.get(pk=job.pk), mapping=job.mapping)
        assert again.status == "running" and again.lease_owner == "" and again.lease_until > timezone.now()
        assert leases.acquire(imports.IMPORT, job.pk).attempts == 2  # the queued run resumes it
        ImportJob.objects.filter(pk=job.pk).delete()


def test_a_tier_recompute_and_an_agency_export_whose_workers_died_are_resumed_then_given_up_visibly(
        committed, alpha, page_client, settings):
    """The same lease on the other long jobs: the recompute an admin asked for, and the agency's export
    archive (platform side). A dead worker's job is queued again; one that keeps dying fails, with the
    reason on its page."""
    from crm.tiers import services as tiers
    from crm.tiers.models import TierRecompute
    from tenants.portability import services as portability
    from tenants.portability.models import AgencyExport

    def dies(kind, pk, *, public=False):
        lease = leases.acquire(kind, pk)
        assert lease is not None
        kind.rows.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))
        with schema_context("public") if public else tenant_context(alpha):
            return leases.watchdog(public=public)

    with committed():
        with tenant_context(alpha):
            recompute = TierRecompute.objects.create(requested_by=staff(alpha, "admin"), **leases.offered())
            assert dies(tiers.RECOMPUTE, recompute.pk) == {"resumed": 1, "failed": 0}
            assert tiers.recompute_run()["recomputed"] == 1  # the queued message: the assignment runs, once
            assert TierRecompute.objects.get(pk=recompute.pk).status == "done"
            assert tiers.recompute_run()["recomputed"] == 0
            dying = TierRecompute.objects.create(requested_by=staff(alpha, "admin"), **leases.offered())
            outcomes = [dies(tiers.RECOMPUTE, dying.pk) for _ in range(settings.JOB_MAX_ATTEMPTS)]
            assert outcomes[-1] == {"resumed": 0, "failed": 1}
            dying.refresh_from_db()
            assert dying.status == "failed" and dying.failure
        with schema_context("public"):
            export = AgencyExport.objects.unscoped().create(agency=alpha, requested_by="admin@alpha.test",
                                                            **leases.offered())
            outcomes = [dies(portability.EXPORT, export.pk, public=True) for _ in range(settings.JOB_MAX_ATTEMPTS)]
            assert outcomes == [{"resumed": 1, "failed": 0}] * (settings.JOB_MAX_ATTEMPTS - 1) + [{"resumed": 0, "failed": 1}]
            export.refresh_from_db()
            assert export.status == "failed" and export.failure == export.error != ""
    try:
        admin = page_client("alpha", "admin")
        tiers_page = admin.get("/settings/tiers/").content.decode()
        assert 'data-test="failure"' in tiers_page and escape(dying.failure) in tiers_page
        export_page = admin.get(f"/settings/export/{export.pk}/").content.decode()
        assert 'data-test="failure"' in export_page and escape(export.failure) in export_page
        assert page_client("bravo", "admin").get(f"/settings/export/{export.pk}/").status_code == 404
    finally:
        with committed():
            with tenant_context(alpha):
                TierRecompute.objects.all().delete()
            with schema_context("public"):
                AgencyExport.objects.unscoped().filter(pk=export.pk).delete()
