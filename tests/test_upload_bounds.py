"""Uploads and feeds are bounded by what they unpack to, and parsed only in a worker with a memory
limit (issue 18: a 1 MB .xlsx whose one cell unpacks to 1,000 MB took a web worker to 2.27 GB).

The bombs are real: a ~1 MB workbook whose one cell inflates to 1,000 MB, the same with its zip
directory lying about the size, and a gzip feed inflating a thousandfold. Each is refused with a
message naming the limit, on the page and in the API; the web process's memory does not grow; an
import job never stays "running"."""
import gzip
import io
import resource
import shutil
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from caravan import unpack
from crm.customers import imports
from crm.customers.models import ImportJob
from crm.customers.tasks import check_import, import_customers
from integrations import services
from integrations.models import Feed, FeedRun, HotelRate, Supplier

from .bombs import lying_copy, workbook_with_cell
from .conftest import staff

pytestmark = pytest.mark.django_db

CELL_MB = 1000
MB = 1024 * 1024
FEEDS = Path(__file__).parent / "data" / "feeds"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FEED_SPOOL_DIR = tmp_path / "spool"
    storages["default"].__dict__.pop("relative_media_root", None)
    yield
    storages["default"].__dict__.pop("relative_media_root", None)


@pytest.fixture(scope="session")
def bomb(tmp_path_factory) -> Path:
    return workbook_with_cell(tmp_path_factory.mktemp("bombs") / "customers.xlsx", CELL_MB)


def hwm() -> int:
    return unpack.peak_rss()


def work(job: ImportJob) -> str:
    return check_import.apply(args=[job.pk, imports.state(job)["task"]["token"]]).get()["status"]


# --- the archive itself --------------------------------------------------------------------------------

def test_the_bomb_is_what_the_issue_describes(bomb):
    """~1 MB on the wire, 1,000 MB unpacked: refused from the zip directory alone, in no time."""
    assert bomb.stat().st_size < 1.2 * MB
    with zipfile.ZipFile(bomb) as archive:
        assert sum(i.file_size for i in archive.infolist()) > CELL_MB * MB
    with pytest.raises(unpack.UnpackRefused, match="200 MB"):
        unpack.check_zip(bomb)
    with pytest.raises(unpack.UnpackRefused, match="UPLOAD_MAX_RATIO"):
        unpack.check_zip(bomb, max_bytes=4000 * MB)


def test_inflating_with_a_counter_catches_what_the_directory_hides(bomb, tmp_path):
    liar = lying_copy(bomb, tmp_path / "liar.xlsx")
    before = hwm()
    assert unpack.check_zip(liar) < 100_000  # the directory says it is small
    with pytest.raises(unpack.UnpackRefused, match="damaged"):
        unpack.check_zip(liar, read=True)
    assert hwm() - before < 64 * MB  # inflated chunk by chunk


# --- the import: page, API, worker -------------------------------------------------------------------------

def test_the_bomb_is_refused_on_upload_page_and_api_without_the_web_process_growing(page_client, api_client,
                                                                                      alpha, bomb, settings):
    content = bomb.read_bytes()
    client = page_client("alpha", "admin")
    before = hwm()
    page = client.post("/customers/import/", {"file": SimpleUploadedFile("customers.xlsx", content)})
    api = api_client("alpha", "admin").post("/api/v1/imports/", {"file": SimpleUploadedFile("customers.xlsx", content)},
                                            format="multipart")
    grown = hwm() - before
    assert grown < 64 * MB, f"the web side grew by {grown / MB:.0f} MB"
    assert page.status_code == 400 and b'data-field="file"' in page.content
    assert "unpacks to more than 200 MB".encode() in page.content and b"UPLOAD_MAX_UNPACKED_BYTES" in page.content
    assert api.status_code == 400
    assert "UPLOAD_MAX_UNPACKED_BYTES" in api.json()["error"]["fields"]["file"][0]
    with tenant_context(alpha):
        assert not ImportJob.objects.exists()
    assert not list((Path(settings.MEDIA_ROOT) / "alpha").rglob("*.xlsx"))  # nothing kept


def test_a_lying_bomb_passes_the_web_and_fails_the_job_in_the_worker_with_a_reason(page_client, api_client, alpha,
                                                                                  bomb, tmp_path):
    liar = lying_copy(bomb, tmp_path / "liar.xlsx").read_bytes()
    client = page_client("alpha", "manager")
    before = hwm()
    response = client.post("/customers/import/", {"file": SimpleUploadedFile("customers.xlsx", liar)})
    assert response.status_code == 302 and hwm() - before < 64 * MB  # stored, not parsed
    with tenant_context(alpha):
        job = ImportJob.objects.get()
        assert imports.progress(job)["state"] == "reading"
        assert work(job) == "refused"
        job.refresh_from_db()
    assert job.status == "failed" and job.finished_at is not None and "damaged" in job.failure
    assert not Path(job.file.path).exists()  # a refused file is deleted at once
    # The page polling for the headers is sent to the job's page, which says why.
    polled = client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert polled["HX-Redirect"] == f"/customers/import/{job.pk}/"
    detail = client.get(f"/customers/import/{job.pk}/")
    assert b'data-status="failed"' in detail.content and b"damaged" in detail.content
    assert b"every 1s" not in detail.content
    api = api_client("alpha", "manager")
    body = api.get(f"/api/v1/imports/{job.pk}/").json()
    assert (body["status"], body["check"]["state"]) == ("failed", "failed") and "damaged" in body["failure"]
    assert api.post(f"/api/v1/imports/{job.pk}/run/", {"mapping": {"姓名": "name"}}, format="json").status_code == 409
    assert api.post(f"/api/v1/imports/{job.pk}/check/", {"mapping": {"姓名": "name"}},
                    format="json").status_code == 409


def test_a_file_within_the_zip_bounds_still_cannot_take_the_worker_past_its_memory_limit(alpha, bomb, settings):
    """Bounds loosened so the bomb reaches the parser: the worker's parse hits PARSE_MAX_MEMORY_MB,
    the job fails with that reason, and the process's own limit is put back afterwards."""
    settings.UPLOAD_MAX_UNPACKED_BYTES = 4000 * MB
    settings.UPLOAD_MAX_RATIO = 100_000
    settings.PARSE_MAX_MEMORY_MB = 300
    limits = resource.getrlimit(resource.RLIMIT_AS)
    with tenant_context(alpha):
        job, _headers = imports.job_create(actor=staff(alpha, "admin"),
                                           upload=SimpleUploadedFile("customers.xlsx", bomb.read_bytes()))
        before = hwm()
        assert work(job) == "memory"
        job.refresh_from_db()
        assert imports.progress(job)["state"] == "failed"
    assert resource.getrlimit(resource.RLIMIT_AS) == limits
    assert job.status == "failed" and "PARSE_MAX_MEMORY_MB" in job.failure and "300 MB" in job.failure
    assert hwm() - before < 450 * MB


def test_a_check_whose_worker_died_is_shown_as_stopped_and_can_be_asked_again(alpha, page_client):
    with tenant_context(alpha):
        job, _headers = imports.job_create(actor=staff(alpha, "admin"),
                                           upload=SimpleUploadedFile("a.csv", "姓名\n王芳\n".encode()))
        work(job)
        imports.check_request(job, mapping={"姓名": "name"})
        # The worker took it and died: its "working" mark is older than the check's time limit.
        imports._update_state(job, lambda s: s["task"].update(state="working", at="2020-01-01T00:00:00+00:00"))
        assert imports.progress(job)["state"] == "stopped"
        job.refresh_from_db()
        assert job.status == "uploaded"  # never "running"
    page = page_client("alpha", "admin").get(f"/customers/import/{job.pk}/mapping/")
    assert b'data-state="stopped"' in page.content and b"Check again" in page.content
    with tenant_context(alpha):
        imports.check_request(job, mapping={"姓名": "name"})
        assert work(job) == "done" and imports.progress(job)["state"] == "checked"


def test_an_import_that_meets_an_unreadable_line_fails_with_the_reason(alpha):
    """The run reads the file again in its worker, bounded the same way: a line the check never
    saw (the run was started without one) fails the job with the reason, never a bare 500 or "running"."""
    lines = ["姓名"] + [f"客户{i}" for i in range(8)] + ["x" * 200_000]
    with tenant_context(alpha):
        job, _headers = imports.job_create(actor=staff(alpha, "admin"),
                                           upload=SimpleUploadedFile("a.csv", "\n".join(lines).encode()))
        assert work(job) == "done"
        job.refresh_from_db()
        job = imports.job_start(job, mapping={"姓名": "name"})
        result = import_customers.apply(args=[job.pk]).get()
        job.refresh_from_db()
    assert result["status"] == "failed" and job.status == "failed" and job.finished_at is not None
    assert "line 10" in job.failure and "131,072" in job.failure


def test_another_agencys_check_is_not_found(api_client, alpha, bravo):
    with tenant_context(bravo):
        theirs, _headers = imports.job_create(actor=staff(bravo, "admin"),
                                              upload=SimpleUploadedFile("a.csv", "姓名\n王芳\n".encode()))
    api = api_client("alpha", "admin")
    assert api.get(f"/api/v1/imports/{theirs.pk}/check/").status_code == 404
    assert api.post(f"/api/v1/imports/{theirs.pk}/check/", {"mapping": {"姓名": "name"}},
                    format="json").status_code == 404
    with tenant_context(alpha):  # a task queued under one agency never reads another's job
        assert check_import.apply(args=[theirs.pk, "x"]).get()["status"] in ("missing", "stale")


# --- feeds ---------------------------------------------------------------------------------------------------

def hotel_feed() -> Feed:
    supplier, _ = Supplier.objects.get_or_create(code="hotelbeds-cn", defaults={"name": "HotelHub", "kind": "hotel"})
    return services.feed_save(Feed(supplier=supplier, name="Rates", connector="ota_hotel", mode="push"))


def test_a_gzipped_feed_is_read_and_a_gzip_bomb_is_refused(tmp_path):
    feed = hotel_feed()
    good = tmp_path / "good.msg"
    good.write_bytes(gzip.compress((FEEDS / "ota_hotel_avail_rs.xml").read_bytes()))
    done = services.run_file(feed, good, trigger=FeedRun.Trigger.PUSH)
    assert done.status == "succeeded" and done.rows_accepted == 9

    bomb = tmp_path / "bomb.msg"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(b'<?xml version="1.0"?><OTA_HotelAvailRS><RoomStays><RoomStay><!--')
        chunk = b" " * MB
        for _ in range(CELL_MB):
            out.write(chunk)
    assert bomb.stat().st_size < 1.2 * MB
    before = hwm()
    failed = services.run_file(feed, bomb, trigger=FeedRun.Trigger.PUSH)
    assert hwm() - before < 64 * MB
    assert failed.status == "failed" and "UPLOAD_MAX_RATIO" in failed.error
    assert HotelRate.objects.unscoped().filter(feed=feed).count() == 9  # the inventory stays as it was


def test_a_gzipped_feed_past_its_unpacked_limit_is_refused(settings, tmp_path):
    settings.FEED_MAX_UNPACKED_BYTES = 2000
    feed = hotel_feed()
    path = tmp_path / "big.msg"
    shutil.copy(FEEDS / "ota_hotel_avail_rs.xml", tmp_path / "plain.xml")
    path.write_bytes(gzip.compress((tmp_path / "plain.xml").read_bytes()))
    failed = services.run_file(feed, path, trigger=FeedRun.Trigger.PUSH)
    assert failed.status == "failed" and "FEED_MAX_UNPACKED_BYTES" in failed.error


# --- agency restore archives (operators' uploads) ---------------------------------------------------------

def test_a_restore_archive_that_is_a_bomb_is_refused_before_its_manifest_is_read(tmp_path):
    from tenants.portability import services as portability

    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("manifest.json", "w") as manifest:
            manifest.write(b'{"format": "caravan-agency-export", "padding": "')
            for _ in range(200):
                manifest.write(b" " * MB)
            manifest.write(b'"}')
    before = hwm()
    with pytest.raises(portability.ArchiveRefused) as refused:
        portability.open_archive(path, trust_unsigned=True)
    assert "UPLOAD_MAX_RATIO" in " ".join(refused.value.messages) and hwm() - before < 64 * MB
