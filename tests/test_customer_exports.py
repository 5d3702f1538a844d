"""The customer list export (R-CUST-8, issue 18): a short list is answered at once, whole and with its
length; a long one is a background job (leased: see tests/test_job_resume.py for a worker killed
mid-file) whose private file only the person who asked can download, on their agency's host."""
import csv
import io
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django_tenants.utils import tenant_context

from crm.customers import exports, services
from crm.customers.models import CustomerExport
from crm.customers.tasks import export_customers

from .conftest import staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers(alpha):
    with tenant_context(alpha):
        return [services.customer_create(actor=None, via="page", name=f"导出{i}", phones=[f"1380013{i:04d}"]).pk
                for i in range(5)]


def test_a_short_list_is_answered_whole_with_its_length(page_client, customers, settings):
    settings.CUSTOMER_EXPORT_DIRECT_ROWS = 1000
    response = page_client("alpha", "manager").get("/customers/export/")
    body = b"".join(response.streaming_content)
    assert response.status_code == 200 and int(response["Content-Length"]) == len(body)  # a cut shows as one
    assert len(list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))) >= 6


def test_a_long_list_is_prepared_in_the_background_and_only_its_owner_downloads_it(
        page_client, alpha, customers, settings, mailbox, django_capture_on_commit_callbacks):
    settings.CUSTOMER_EXPORT_DIRECT_ROWS = 2
    client = page_client("alpha", "manager")
    offer = client.get("/customers/export/?tag=&kind=person")
    assert offer.status_code == 200 and b'data-test="start-export"' in offer.content  # not a cut stream: an offer
    assert b'name="kind" value="person"' in offer.content
    with django_capture_on_commit_callbacks(execute=False) as queued:
        started = client.post("/customers/exports/", {"kind": "person", "format": "csv"})
    assert started.status_code == 302 and len(queued) == 1
    with tenant_context(alpha):
        job = CustomerExport.objects.get()
        assert (job.status, job.filters, job.created_by.email) == ("running", {"kind": "person"}, "manager@alpha.test")
    progress = client.get(started["Location"], HTTP_HX_REQUEST="true")
    assert b'data-status="running"' in progress.content and b"every 1s" in progress.content

    with tenant_context(alpha):
        assert export_customers.apply(args=[job.pk]).get()["status"] == "done"
        job.refresh_from_db()
        path = exports.folder() / job.file_name
    assert Path(django_settings.EXPORT_ROOT) in path.parents and Path(django_settings.MEDIA_ROOT) not in path.parents
    assert path.stat().st_mode & 0o077 == 0  # readable by the app alone
    assert job.done_rows == job.total_rows >= len(customers)
    ready = client.get(started["Location"])
    assert b'data-test="download"' in ready.content
    [message] = mailbox
    text = message.get_payload(decode=True).decode()
    assert message["To"] == "manager@alpha.test" and f"http://alpha.localhost:" in text
    assert f"/customers/exports/{job.pk}/\r\n" in text

    download = client.get(f"/customers/exports/{job.pk}/download/")
    body = b"".join(download.streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))[1:]
    assert download.status_code == 200 and len(rows) == job.done_rows and set(customers) <= {int(r[0]) for r in rows}
    with tenant_context(alpha):
        assert CustomerExport.objects.get(pk=job.pk).downloads == 1

    # The fence: another person of the same agency, another agency's host, a guessed id.
    other = page_client("alpha", "admin")
    assert other.get(f"/customers/exports/{job.pk}/").status_code == 404
    assert other.get(f"/customers/exports/{job.pk}/download/").status_code == 404
    bravo = page_client("bravo", "manager")
    assert bravo.get(f"/customers/exports/{job.pk}/download/").status_code == 404
    assert page_client("alpha", "manager", on="bravo.localhost").get(f"/customers/exports/{job.pk}/download/").status_code in (302, 403, 404)
    assert client.get(f"/customers/exports/{job.pk + 1000}/download/").status_code == 404
    assert page_client("alpha", "sales").get(f"/customers/exports/{job.pk}/download/").status_code == 403
    assert page_client(None, on="alpha.localhost").get(f"/customers/exports/{job.pk}/download/").status_code == 302


def test_an_expired_export_is_deleted_and_no_longer_served(page_client, alpha, customers, settings):
    settings.CUSTOMER_EXPORT_DIRECT_ROWS = 2
    with tenant_context(alpha):
        job = exports.export_request(actor=staff(alpha, "manager"), filters={})
        export_customers.apply(args=[job.pk])
        job.refresh_from_db()
        path = exports.folder() / job.file_name
        assert path.is_file()
        assert exports.expire(now=job.expires_at) == 1
        assert not path.exists() and CustomerExport.objects.get(pk=job.pk).status == "expired"
    assert page_client("alpha", "manager").get(f"/customers/exports/{job.pk}/download/").status_code == 404


def test_the_api_answers_a_long_list_with_a_background_export_only_its_owner_reads(api_client, alpha, customers,
                                                                                   settings):
    settings.CUSTOMER_EXPORT_DIRECT_ROWS = 1000
    small = api_client("alpha", "manager").get("/api/v1/customers/export/")
    body = b"".join(small.streaming_content)
    assert small.status_code == 200 and int(small["Content-Length"]) == len(body)

    settings.CUSTOMER_EXPORT_DIRECT_ROWS = 2
    client = api_client("alpha", "manager")
    answer = client.get("/api/v1/customers/export/?kind=person")
    assert answer.status_code == 202 and answer["Location"] == f"/api/v1/customer-exports/{answer.json()['id']}/"
    job_id = answer.json()["id"]
    assert answer.json()["status"] == "running" and answer.json()["download"] is None
    assert client.get(f"/api/v1/customer-exports/{job_id}/download/").status_code == 409  # not ready yet
    with tenant_context(alpha):
        assert CustomerExport.objects.get(pk=job_id).filters == {"kind": "person", "unowned": False}
        export_customers.apply(args=[job_id])
    ready = client.get(f"/api/v1/customer-exports/{job_id}/").json()
    assert ready["status"] == "done" and ready["download"] == f"/api/v1/customer-exports/{job_id}/download/"
    file = client.get(ready["download"])
    assert file.status_code == 200 and len(b"".join(file.streaming_content).splitlines()) == ready["done_rows"] + 1
    assert [e["id"] for e in client.get("/api/v1/customer-exports/").json()["results"]] == [job_id]
    # Another person of alpha, bravo's token, alpha's token on bravo's host: nothing.
    assert api_client("alpha", "admin").get(f"/api/v1/customer-exports/{job_id}/download/").status_code == 404
    assert api_client("alpha", "admin").get("/api/v1/customer-exports/").json()["results"] == []
    assert api_client("bravo", "manager").get(f"/api/v1/customer-exports/{job_id}/").status_code == 404
    assert api_client("alpha", "sales").get("/api/v1/customer-exports/").status_code == 403
    assert api_client("alpha", "manager", on="bravo.localhost").get(f"/api/v1/customer-exports/{job_id}/").status_code == 401
