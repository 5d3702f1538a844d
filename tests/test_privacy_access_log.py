"""The access log (crm.privacy): who opened which customer card, revealed which document, exported
customers — on pages and through the API — seen only by admins, fenced per agency, pruned after
the retention period."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.roles import ROLE_CAPS, Cap, Role
from crm.customers import services
from crm.customers.models import ChangeLog, Customer
from crm.privacy import services as privacy
from crm.privacy.models import AccessEntry

from .conftest import staff

pytestmark = pytest.mark.django_db
PAGE = ChangeLog.Via.PAGE
HX = {"HTTP_HX_REQUEST": "true"}
What = AccessEntry.What
NUMBER = "E12345678"


def in_agency(agency, fn):
    with tenant_context(agency):
        result = fn()
    connection.set_schema_to_public()
    return result


def make(agency, name="张伟", phones=("13800138000",), number=None):
    def create():
        customer = services.customer_create(actor=None, via=PAGE, name=name, phones=list(phones))
        document = services.document_add(actor=None, customer=customer, number=number, via=PAGE, kind="passport",
                                         issuing_country="CN") if number else None
        return customer, document
    return in_agency(agency, create)


def entries(agency, **filters):
    return in_agency(agency, lambda: list(AccessEntry.objects.filter(**filters).order_by("id")))


# --- written on every path ------------------------------------------------------------------------

def test_card_page_is_logged_with_who_what_request_and_address(page_client, alpha):
    customer, _ = make(alpha)
    response = page_client("alpha", "sales").get(f"/customers/{customer.pk}/", HTTP_X_REQUEST_ID="req-card-1")
    assert response.status_code == 200
    [entry] = entries(alpha, customer_id=customer.pk)
    assert (entry.what, entry.via, entry.user_id) == (What.CARD_VIEW, "page", staff(alpha, "sales").pk)
    assert entry.request_id == "req-card-1" and entry.address == "127.0.0.1"
    assert timezone.now() - entry.at < timedelta(minutes=1)


def test_a_missing_card_logs_nothing(page_client, alpha):
    assert page_client("alpha", "sales").get("/customers/999999/").status_code == 404
    assert entries(alpha) == []


def test_api_reads_are_logged(api_client, alpha):
    customer, _ = make(alpha)
    client = api_client("alpha", "sales")
    assert client.get(f"/api/v1/customers/{customer.pk}/").status_code == 200
    assert client.get(f"/api/v1/customers/{customer.pk}/contacts/").status_code == 200
    assert client.get(f"/api/v1/customers/{customer.pk}/history/").status_code == 200
    assert client.get("/api/v1/screen-pop/", {"phone": "138 0013 8000"}).status_code == 200
    logged = [(e.what, e.via, e.detail) for e in entries(alpha, customer_id=customer.pk)]
    assert logged == [(What.CARD_VIEW, "api", ""), (What.API_READ, "api", "contacts"),
                      (What.HISTORY_VIEW, "api", ""), (What.CARD_VIEW, "api", "screen pop")]


def test_history_and_screen_pop_pages_are_logged(page_client, alpha):
    customer, _ = make(alpha)
    client = page_client("alpha", "call_center")
    assert client.get(f"/customers/{customer.pk}/history/", **HX).status_code == 200
    assert client.get("/screen-pop/+8613800138000/").status_code == 200
    logged = [(e.what, e.detail) for e in entries(alpha, customer_id=customer.pk)]
    assert logged == [(What.HISTORY_VIEW, ""), (What.CARD_VIEW, "screen pop")]


def test_document_reveals_are_logged_from_the_page_and_the_api(page_client, api_client, alpha):
    customer, document = make(alpha, number=NUMBER)
    assert page_client("alpha", "service").post(f"/documents/{document.pk}/reveal/", **HX).status_code == 200
    response = api_client("alpha", "sales").post(f"/api/v1/documents/{document.pk}/reveal/")
    assert response.status_code == 200 and response.json()["number"] == NUMBER
    logged = [(e.what, e.via, e.user_id, e.detail) for e in entries(alpha, customer_id=customer.pk)]
    assert logged == [(What.DOCUMENT_REVEAL, "page", staff(alpha, "service").pk, "passport E1234****"),
                      (What.DOCUMENT_REVEAL, "api", staff(alpha, "sales").pk, "passport E1234****")]
    assert all(NUMBER not in e.detail for e in entries(alpha))


def test_refused_reveal_is_not_logged(api_client, alpha):
    _customer, document = make(alpha, number=NUMBER)
    assert api_client("alpha", "finance").post(f"/api/v1/documents/{document.pk}/reveal/").status_code == 403
    assert entries(alpha) == []


def test_customer_list_exports_are_logged_with_their_filters(page_client, api_client, alpha):
    make(alpha)
    assert page_client("alpha", "manager").get("/customers/export/", {"q": "张", "format": "xlsx"}).status_code == 200
    assert api_client("alpha", "admin").get("/api/v1/customers/export/", {"kind": "person"}).status_code == 200
    logged = [(e.what, e.via, e.customer_id, e.detail) for e in entries(alpha)]
    assert logged == [(What.CUSTOMER_EXPORT, "page", None, "q=%E5%BC%A0&format=xlsx"),
                      (What.CUSTOMER_EXPORT, "api", None, "kind=person")]


def test_a_background_list_export_is_logged_when_downloaded(page_client, api_client, alpha, settings, tmp_path):
    from crm.customers import exports
    from crm.customers.models import CustomerExport

    settings.EXPORT_ROOT = tmp_path
    manager = staff(alpha, "manager")

    def ready():
        job = CustomerExport.objects.create(created_by=manager, filters={"q": "张"}, status=CustomerExport.Status.DONE,
                                            file_name="ready.csv", finished_at=timezone.now(),
                                            expires_at=timezone.now() + timedelta(hours=1))
        (exports.folder() / job.file_name).write_text("name\n张伟\n")
        return job
    job = in_agency(alpha, ready)
    assert entries(alpha) == []  # prepared, not yet seen by anyone
    assert page_client("alpha", "manager").get(f"/customers/exports/{job.pk}/download/").status_code == 200
    assert api_client("alpha", "manager").get(f"/api/v1/customer-exports/{job.pk}/download/").status_code == 200
    logged = [(e.what, e.via, e.user_id, e.customer_id, e.detail) for e in entries(alpha)]
    detail = f"export {job.pk}: q=%E5%BC%A0&format=csv"
    assert logged == [(What.CUSTOMER_EXPORT, "page", manager.pk, None, detail),
                      (What.CUSTOMER_EXPORT, "api", manager.pk, None, detail)]


def test_recording_is_one_insert_and_no_read(alpha):
    customer, _ = make(alpha)
    user = staff(alpha, "sales")
    with tenant_context(alpha), CaptureQueriesContext(connection) as queries:
        privacy.access_record(user=user, customer=customer, what=What.CARD_VIEW, via="page")
    connection.set_schema_to_public()
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET search_path")]
    assert len(statements) == 1 and "INSERT INTO" in statements[0], statements  # an EXECUTE of it (caravan.db.prepared)


def test_the_written_out_insert_names_every_field_of_an_entry():
    """``access_record`` writes its INSERT by hand: a field added to AccessEntry must be added there too
    (its database default would not apply: Django keeps defaults in Python)."""
    from crm.privacy.services import INSERT_FIELDS

    fields = {f.name for f in AccessEntry._meta.concrete_fields if not f.primary_key}
    assert set(INSERT_FIELDS) == fields


def test_a_suspended_agency_still_logs_who_reads(page_client, charlie):
    """Read-only means no changes by staff; the log of their reads is still written."""
    customer, _ = make(charlie)
    assert page_client("charlie", "sales").get(f"/customers/{customer.pk}/").status_code == 200
    assert [e.what for e in entries(charlie)] == [What.CARD_VIEW]


def test_address_is_the_one_our_proxies_saw(page_client, alpha, settings):
    settings.PROXY_COUNT = 1
    customer, _ = make(alpha)
    # The client invented the first hop; our one proxy appended the address it saw.
    page_client("alpha", "sales").get(f"/customers/{customer.pk}/", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.7")
    [entry] = entries(alpha)
    assert entry.address == "203.0.113.7"


# --- who sees the log ------------------------------------------------------------------------------

def test_only_admins_have_the_capabilities():
    for role in Role.values:
        assert (Cap.ACCESS_LOG_VIEW in ROLE_CAPS[role]) == (role == Role.ADMIN), role
        assert (Cap.PERSONAL_DATA_EXPORT in ROLE_CAPS[role]) == (role == Role.ADMIN), role


def test_admin_sees_the_agency_log_and_filters_it(page_client, alpha):
    first, _ = make(alpha, name="王芳", phones=["13900139000"])
    second, _ = make(alpha, name="李雷", phones=["13700137000"])
    page_client("alpha", "sales").get(f"/customers/{first.pk}/")
    page_client("alpha", "service").get(f"/customers/{second.pk}/")
    admin = page_client("alpha", "admin")
    html = admin.get("/privacy/access-log/").content.decode()
    assert "王芳" in html and "李雷" in html and "Opened the customer card" in html
    assert "Entries are deleted after 730 days." in html
    html = admin.get("/privacy/access-log/", {"user": staff(alpha, "service").pk}).content.decode()
    assert "李雷" in html and "王芳" not in html
    html = admin.get("/privacy/access-log/", {"customer": first.pk}).content.decode()
    assert "王芳" in html and "李雷" not in html
    html = admin.get("/privacy/access-log/", {"what": What.DOCUMENT_REVEAL}).content.decode()
    assert "王芳" not in html and "No access recorded." in html
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    html = admin.get("/privacy/access-log/", {"date_from": tomorrow}).content.decode()
    assert "王芳" not in html
    response = admin.get("/privacy/access-log/", {"date_from": tomorrow, "date_to": "2020-01-01", "customer": "x"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-field="date_to"' in html and 'data-field="customer"' in html


def test_the_log_is_paginated(page_client, alpha):
    customer, _ = make(alpha)
    user = staff(alpha, "sales")
    in_agency(alpha, lambda: AccessEntry.objects.bulk_create(
        [AccessEntry(user=user, customer=customer, what=What.CARD_VIEW, via="page") for _ in range(55)]))
    admin = page_client("alpha", "admin")
    html = admin.get("/privacy/access-log/", {"what": What.CARD_VIEW}).content.decode()
    assert "Page 1 of 2" in html and "what=card_view&amp;page=2" in html
    assert admin.get("/privacy/access-log/", {"what": What.CARD_VIEW, "page": 2}).status_code == 200


def test_customer_section_and_page(page_client, alpha):
    customer, _ = make(alpha)
    page_client("alpha", "sales").get(f"/customers/{customer.pk}/")
    admin = page_client("alpha", "admin")
    card = admin.get(f"/customers/{customer.pk}/").content.decode()
    assert 'data-test="access-log-section"' in card and f"/customers/{customer.pk}/personal-data/" in card
    section = admin.get(f"/customers/{customer.pk}/access-log/", **HX).content.decode()
    assert "<html" not in section and "Sales of alpha" in section and "Admin of alpha" in section
    page = admin.get(f"/customers/{customer.pk}/access-log/").content.decode()
    assert "<html" in page and "Sales of alpha" in page
    # Other roles do not get the section on the card.
    assert 'data-test="access-log-section"' not in page_client("alpha", "manager").get(
        f"/customers/{customer.pk}/").content.decode()


@pytest.mark.parametrize("role", [r for r in Role.values if r != Role.ADMIN])
def test_staff_other_than_admins_are_refused(page_client, api_client, alpha, role):
    customer, _ = make(alpha)
    assert page_client("alpha", role).get("/privacy/access-log/").status_code == 403
    assert page_client("alpha", role).get(f"/customers/{customer.pk}/access-log/").status_code == 403
    assert api_client("alpha", role).get("/api/v1/access-log/").status_code == 403


def test_api_lists_and_filters_the_log(api_client, alpha):
    customer, document = make(alpha, number=NUMBER)
    other, _ = make(alpha, name="李雷", phones=["13700137000"])
    api_client("alpha", "sales").get(f"/api/v1/customers/{customer.pk}/")
    api_client("alpha", "sales").post(f"/api/v1/documents/{document.pk}/reveal/")
    api_client("alpha", "sales").get(f"/api/v1/customers/{other.pk}/")
    client = api_client("alpha", "admin")
    response = client.get("/api/v1/access-log/", {"customer": customer.pk})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2
    assert [r["what"] for r in body["results"]] == [What.DOCUMENT_REVEAL, What.CARD_VIEW]
    row = body["results"][0]
    assert row["customer"] == {"id": customer.pk, "name": "张伟"} and row["via"] == "api"
    assert row["user"]["id"] == staff(alpha, "sales").pk and row["address"] == "127.0.0.1" and row["request_id"]
    body = client.get("/api/v1/access-log/", {"what": What.CARD_VIEW, "user": staff(alpha, "sales").pk}).json()
    assert body["count"] == 2
    response = client.get("/api/v1/access-log/", {"what": "nonsense", "date_from": "2026-13-01"})
    assert response.status_code == 400
    assert {"what", "date_from"} <= set(response.json()["error"]["fields"])


# --- the agency fence ------------------------------------------------------------------------------

def test_alpha_admin_cannot_read_bravos_log(page_client, api_client, alpha, bravo):
    theirs, _ = make(bravo, name="布拉沃客户", phones=["13600136000"])
    page_client("bravo", "sales").get(f"/customers/{theirs.pk}/")
    assert len(entries(bravo)) == 1
    # Alpha's admin on alpha's host: bravo's customer id is nobody here, bravo's entries are not listed.
    admin = page_client("alpha", "admin")
    assert admin.get(f"/customers/{theirs.pk}/access-log/").status_code == 404
    assert "布拉沃客户" not in admin.get("/privacy/access-log/").content.decode()
    assert api_client("alpha", "admin").get("/api/v1/access-log/").json()["count"] == 0
    # Alpha's session or token on bravo's host: not signed in there.
    on_bravo = page_client("alpha", "admin", on="bravo.localhost").get("/privacy/access-log/")
    assert on_bravo.status_code == 302 and "/accounts/login/" in on_bravo["Location"]
    assert api_client("alpha", "admin", on="bravo.localhost").get("/api/v1/access-log/").status_code == 401
    # And none of it on the platform domain.
    assert page_client(None).get("/privacy/access-log/").status_code == 404


# --- retention -------------------------------------------------------------------------------------

def test_prune_deletes_only_entries_past_retention(alpha, settings):
    settings.ACCESS_LOG_RETENTION_DAYS = 730
    customer, _ = make(alpha)
    now = timezone.now()

    def seed():
        user = staff(alpha, "sales")
        old = AccessEntry.objects.create(user=user, customer=customer, what=What.CARD_VIEW, via="page",
                                         at=now - timedelta(days=731))
        kept = AccessEntry.objects.create(user=user, customer=customer, what=What.CARD_VIEW, via="page",
                                          at=now - timedelta(days=729))
        return old, kept
    old, kept = in_agency(alpha, seed)
    assert in_agency(alpha, lambda: privacy.access_log_next_prune(now=now)) == now  # overdue
    assert in_agency(alpha, lambda: privacy.access_log_prune(now=now)) == 1
    assert [e.pk for e in entries(alpha)] == [kept.pk]
    assert in_agency(alpha, lambda: privacy.access_log_next_prune(now=now)) == kept.at + timedelta(days=730)
    settings.ACCESS_LOG_RETENTION_DAYS = 0  # keep everything
    assert in_agency(alpha, lambda: privacy.access_log_prune(now=now + timedelta(days=5000))) == 0


def test_prune_job_runs_in_the_agency_and_records_its_next_run(alpha):
    from crm.privacy.tasks import prune_access_log
    from tenants.jobs.models import AgencyJob
    from tenants.jobs.services import JOBS

    from caravan.celery import app

    assert "privacy.prune_access_log" in JOBS
    assert any(e["args"] == ("privacy.prune_access_log",) for e in app.conf.beat_schedule.values()
               if e["task"] == "caravan.fan_out")
    customer, _ = make(alpha)
    in_agency(alpha, lambda: AccessEntry.objects.create(customer=customer, what=What.CARD_VIEW, via="page",
                                                        at=timezone.now() - timedelta(days=800)))
    assert in_agency(alpha, prune_access_log) == 1
    assert entries(alpha) == []
    assert AgencyJob.objects.unscoped().filter(agency=alpha, job="privacy.prune_access_log").exists()
