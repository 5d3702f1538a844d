"""The retention policy: travel documents deleted a set time after the customer's last trip ("never"
keeps them), inactive customers anonymised only when the agency turned it on, the dry run and the
report (counts, no names; e-mailed to admins on request), the job scheduled through tenants.jobs at
the time its data next needs it, the page and API for admins only, and each agency's policy touching
its own customers only."""
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from caravan.celery import app as celery_app
from crm.customers import services as crm_services
from crm.customers.models import ChangeLog, Contact, Customer, Phone, TravelDocument
from crm.retention import services
from crm.retention import tasks as retention_tasks
from crm.retention.models import Erasure, RetentionPolicy, RetentionRun
from crm.trips.models import Payment, Traveler, Trip
from tenants.jobs import services as agency_jobs
from tenants.jobs.models import AgencyJob

from .conftest import staff

pytestmark = pytest.mark.django_db
TODAY = date(2026, 6, 15)
NOW = timezone.make_aware(timezone.datetime(2026, 6, 15, 12, 0))
_serial = iter(range(10_000_000, 99_999_999))


def customer_with_document(name, *, added_months_ago, trip_returned_months_ago=None, as_traveler=False,
                           phone=None) -> Customer:
    customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=name,
                                            phones=[phone] if phone else [])
    document = crm_services.document_add(actor=None, customer=customer, kind="passport", issuing_country="CN",
                                         number=f"E{next(_serial)}", via=ChangeLog.Via.PAGE)
    TravelDocument.objects.filter(pk=document.pk).update(
        created_at=NOW - timedelta(days=round(added_months_ago * 30.5)))
    if trip_returned_months_ago is not None:
        back = TODAY - timedelta(days=round(trip_returned_months_ago * 30.5))
        buyer = customer
        if as_traveler:
            buyer = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=f"Booker of {name}")
        trip = Trip.objects.create(customer=buyer, title="Trip", currency="CNY", status=Trip.Status.COMPLETED,
                                   depart_on=back - timedelta(days=5), return_on=back)
        if as_traveler:
            Traveler.objects.create(trip=trip, customer=customer)
    return customer


def make_old(customer: Customer, years: float) -> None:
    at = NOW - timedelta(days=round(years * 365.25))
    Customer.objects.filter(pk=customer.pk).update(created_at=at, updated_at=at)
    ChangeLog.objects.filter(customer=customer).update(at=at)


def documents_left(*customers) -> list[int]:
    return [TravelDocument.objects.filter(customer=c).count() for c in customers]


# --- documents ------------------------------------------------------------------------------------

def test_documents_are_deleted_only_when_due(alpha, bravo):
    with tenant_context(bravo):
        theirs = customer_with_document("Bravo's old trip", added_months_ago=40, trip_returned_months_ago=30)
    with tenant_context(alpha):
        RetentionPolicy.objects.update_or_create(pk=1, defaults={"document_months": 24})
        old_trip = customer_with_document("Old trip", added_months_ago=40, trip_returned_months_ago=30)
        recent_trip = customer_with_document("Recent trip", added_months_ago=40, trip_returned_months_ago=12)
        no_trip_old = customer_with_document("No trip, old document", added_months_ago=30)
        no_trip_new = customer_with_document("No trip, new document", added_months_ago=1)
        added_after = customer_with_document("Document added after the trip", added_months_ago=6,
                                             trip_returned_months_ago=30)
        traveler = customer_with_document("Travelled on someone's booking", added_months_ago=40,
                                          trip_returned_months_ago=3, as_traveler=True)
        merged_keep = customer_with_document("Merged survivor", added_months_ago=40)
        merged_drop = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="Merged away")
        Trip.objects.create(customer=merged_drop, title="Trip", currency="CNY", status=Trip.Status.COMPLETED,
                            return_on=TODAY - timedelta(days=60))
        crm_services.customer_merge(actor=staff(alpha, "admin"), keep=merged_keep, drop=merged_drop)

        preview = services.retention_preview(today=TODAY, now=NOW)
        assert (preview["documents"], preview["customers"]) == (2, 0)

        run = services.retention_run(trigger=RetentionRun.Trigger.SCHEDULE, today=TODAY, now=NOW)

        assert documents_left(old_trip, no_trip_old) == [0, 0]
        assert documents_left(recent_trip, no_trip_new, added_after, traveler, merged_keep) == [1, 1, 1, 1, 1]
        run.refresh_from_db()
        assert (run.documents_deleted, run.customers_anonymised, run.remaining) == (2, 0, 0)
        assert run.documents_cutoff == date(2024, 6, 15) and run.document_months == 24
        assert run.finished_at is not None
        # Customers, trips and payments stay; only the document is gone.
        assert Customer.objects.get(pk=old_trip.pk).name == "Old trip"
        assert Trip.objects.filter(customer=old_trip).count() == 1
        # A second run finds nothing more.
        again = services.retention_run(trigger=RetentionRun.Trigger.SCHEDULE, today=TODAY, now=NOW)
        assert again.documents_deleted == 0
    with tenant_context(bravo):  # alpha's policy touched alpha's schema only
        assert documents_left(theirs) == [1] and not RetentionRun.objects.exists()


def test_never_keeps_documents(alpha):
    with tenant_context(alpha):
        services.policy_update(actor=staff(alpha, "admin"), document_months=None, inactive_years=None,
                               email_report=False)
        ancient = customer_with_document("Ancient", added_months_ago=200, trip_returned_months_ago=190)
        assert services.retention_preview(today=TODAY, now=NOW)["documents"] == 0
        run = services.retention_run(trigger=RetentionRun.Trigger.MANUAL, today=TODAY, now=NOW)
        assert run.documents_deleted == 0 and run.documents_cutoff is None
        assert documents_left(ancient) == [1]


def test_months_are_calendar_months():
    assert services.months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert services.months_before(date(2026, 6, 15), 24) == date(2024, 6, 15)
    assert services.months_after(date(2024, 1, 31), 1) == date(2024, 2, 29)


# --- inactive customers -------------------------------------------------------------------------

def test_inactive_customers_are_anonymised_only_when_the_agency_turned_it_on(alpha, bravo):
    with tenant_context(alpha):
        dormant = customer_with_document("Dormant Person 睡着", added_months_ago=70, phone="13611112222")
        make_old(dormant, 6)
        trip = Trip.objects.create(customer=dormant, title="Long ago", currency="CNY", status=Trip.Status.COMPLETED,
                                   depart_on=date(2020, 5, 1), return_on=date(2020, 5, 8))
        Trip.objects.filter(pk=trip.pk).update(created_at=NOW - timedelta(days=6 * 365))
        Payment.objects.create(trip=trip, kind="balance", amount=100, currency="CNY")
        talked = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="Called last year")
        make_old(talked, 6)
        Contact.objects.create(customer=talked, channel="call", summary="Hello", at=NOW - timedelta(days=300))
        travelled = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="Travelled recently")
        make_old(travelled, 6)
        Trip.objects.create(customer=travelled, title="Recent", currency="CNY", status=Trip.Status.COMPLETED,
                            return_on=TODAY - timedelta(days=100), created_at=NOW - timedelta(days=6 * 365))
        company = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="Old Co.", kind="company")
        make_old(company, 9)

        # Off by default.
        assert RetentionPolicy.load().inactive_years is None
        assert services.retention_preview(today=TODAY, now=NOW)["customers"] == 0
        assert services.retention_run(trigger="schedule", today=TODAY, now=NOW).customers_anonymised == 0
        assert Customer.objects.get(pk=dormant.pk).name == "Dormant Person 睡着"

        services.policy_update(actor=staff(alpha, "admin"), document_months=None, inactive_years=3, email_report=False)
        assert services.retention_preview(today=TODAY, now=NOW)["customers"] == 1
        run = services.retention_run(trigger="schedule", today=TODAY, now=NOW)
        assert (run.customers_anonymised, run.documents_deleted, run.remaining) == (1, 0, 0)
        dormant.refresh_from_db()
        assert dormant.name == f"Erased customer #{dormant.pk}"
        assert not Phone.objects.filter(customer=dormant).exists()
        assert documents_left(dormant) == [0]
        assert Payment.objects.get(trip=trip).amount == 100  # kept for the accounts
        erasure = Erasure.objects.get(customer=dormant)
        assert (erasure.actor, erasure.via, erasure.reason) == (None, "retention", "retention")
        for kept in (talked, travelled, company):
            assert Customer.objects.get(pk=kept.pk).name == kept.name
        # Once only.
        assert services.retention_run(trigger="schedule", today=TODAY, now=NOW).customers_anonymised == 0
    with tenant_context(bravo):
        assert not Erasure.objects.exists() and not RetentionRun.objects.exists()


def test_a_large_backlog_is_anonymised_in_batches_and_due_again_soon(alpha, monkeypatch):
    monkeypatch.setattr(services, "BATCH", 2)
    with tenant_context(alpha):
        services.policy_update(actor=staff(alpha, "admin"), document_months=None, inactive_years=2, email_report=False)
        people = [crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=f"Gone {n}") for n in range(3)]
        for p in people:
            make_old(p, 4)
        first = services.retention_run(trigger="schedule", today=TODAY, now=NOW)
        assert (first.customers_anonymised, first.remaining) == (2, 1)
        soon = services.retention_next_due(now=NOW)
        assert soon == NOW + services.AGAIN_SOON
        second = services.retention_run(trigger="schedule", today=TODAY, now=NOW)
        assert (second.customers_anonymised, second.remaining) == (1, 0)


# --- report -----------------------------------------------------------------------------------------

def test_the_report_is_emailed_to_admins_without_names(alpha, mailbox):
    with tenant_context(alpha):
        services.policy_update(actor=staff(alpha, "admin"), document_months=12, inactive_years=None, email_report=True)
        customer_with_document("Secret Name 秘密", added_months_ago=30)
        run = services.retention_run(trigger="schedule", today=TODAY, now=NOW)
        assert run.documents_deleted == 1
        assert RetentionRun.objects.get(pk=run.pk).emailed_at is not None
    recipients = sorted(m["To"] for m in mailbox)
    assert recipients == ["admin@alpha.test", "first@alpha.test"]
    body = mailbox[0].get_payload(decode=True).decode()
    assert "1 travel document deleted" in body and "Secret" not in body and "秘密" not in body


def test_no_email_when_off_or_nothing_happened(alpha, mailbox):
    with tenant_context(alpha):
        services.policy_update(actor=staff(alpha, "admin"), document_months=12, inactive_years=None, email_report=True)
        services.retention_run(trigger="schedule", today=TODAY, now=NOW)  # nothing due
        services.policy_update(actor=staff(alpha, "admin"), document_months=12, inactive_years=None, email_report=False)
        customer_with_document("Someone", added_months_ago=30)
        assert services.retention_run(trigger="schedule", today=TODAY, now=NOW).documents_deleted == 1
    assert mailbox == []


# --- scheduling -----------------------------------------------------------------------------------

def test_the_job_is_fanned_out_and_records_when_its_data_next_needs_it(alpha, bravo):
    entries = [e for e in celery_app.conf.beat_schedule.values()
               if e["task"] == "caravan.fan_out" and e["args"] == ("retention.run",)]
    assert len(entries) == 1
    assert agency_jobs.job_for("retention.run").every == timedelta(days=1)
    assert getattr(celery_app.tasks["retention.run"].run, "agency_job", None) == "retention.run"
    with tenant_context(alpha):
        services.policy_update(actor=staff(alpha, "admin"), document_months=24, inactive_years=None,
                               email_report=False)
        customer_with_document("Due in a few hours", added_months_ago=30, trip_returned_months_ago=1)
        today = services._today()
        soon = customer_with_document("Due tomorrow", added_months_ago=40)
        TravelDocument.objects.filter(customer=soon).update(created_at=timezone.make_aware(timezone.datetime.combine(
            services.months_before(today, 24), timezone.datetime.min.time())) + timedelta(hours=12))
        retention_tasks.run_retention.apply()
        assert documents_left(soon) == [1]  # not yet: the clock started exactly 24 months ago
        expected = services.retention_next_due()
    row = AgencyJob.objects.unscoped().get(agency=alpha, job="retention.run")
    assert row.ran_at is not None
    # Capped by the job's safety net (a day): between 00:00 and 03:00 agency time the data's next time, tomorrow's
    # 03:00 run, lies more than a day ahead.
    assert row.due_at == min(expected, row.ran_at + timedelta(days=1))
    assert timezone.now() < row.due_at <= timezone.now() + timedelta(days=1, hours=4)
    assert not AgencyJob.objects.unscoped().filter(agency=bravo, job="retention.run", ran_at__isnull=False).exists()


def test_saving_the_policy_makes_the_job_due_now(alpha, django_capture_on_commit_callbacks):
    AgencyJob.objects.unscoped().update_or_create(agency=alpha, job="retention.run",
                                       defaults={"due_at": timezone.now() + timedelta(days=1)})
    with tenant_context(alpha):
        with django_capture_on_commit_callbacks(execute=True):
            services.policy_update(actor=staff(alpha, "admin"), document_months=6, inactive_years=None,
                                   email_report=False)
    assert AgencyJob.objects.unscoped().get(agency=alpha, job="retention.run").due_at <= timezone.now()


# --- pages and API --------------------------------------------------------------------------------

def test_admin_page_shows_policy_dry_run_and_reports(alpha, page_client):
    with tenant_context(alpha):
        customer_with_document("Old", added_months_ago=50)
    connection.set_schema_to_public()
    client = page_client("alpha", "admin")
    page = client.get("/settings/personal-data/")
    assert page.status_code == 200
    assert b"It would delete 1 travel document" in page.content
    saved = client.post("/settings/personal-data/", {"action": "save", "document_months": "", "inactive_years": "5",
                                                     "email_report": "on"})
    assert saved.status_code == 302
    with tenant_context(alpha):
        policy = RetentionPolicy.load()
        assert (policy.document_months, policy.inactive_years, policy.email_report) == (None, 5, True)
    connection.set_schema_to_public()
    bad = client.post("/settings/personal-data/", {"action": "save", "document_months": "7", "inactive_years": ""})
    assert bad.status_code == 400 and b'data-field="document_months"' in bad.content
    ran = client.post("/settings/personal-data/", {"action": "run"})
    assert ran.status_code == 302
    with tenant_context(alpha):
        assert RetentionRun.objects.get().trigger == "manual"


@pytest.mark.parametrize("role", ["manager", "sales", "finance"])
def test_staff_cannot_see_or_change_the_policy(alpha, role, page_client, api_client):
    assert page_client("alpha", role).get("/settings/personal-data/").status_code == 403
    assert page_client("alpha", role).post("/settings/personal-data/", {"action": "run"}).status_code == 403
    api = api_client("alpha", role)
    assert api.get("/api/v1/retention/policy/").status_code == 403
    assert api.put("/api/v1/retention/policy/", {"document_months": 1, "inactive_years": None,
                                                "email_report": False}, format="json").status_code == 403
    assert api.post("/api/v1/retention/runs/").status_code == 403
    with tenant_context(alpha):
        assert not RetentionRun.objects.exists()
        assert RetentionPolicy.load().document_months == 24


def test_api_policy_preview_and_runs(alpha, bravo, api_client):
    api = api_client("alpha", "admin")
    assert api.get("/api/v1/retention/policy/").json()["document_months"] == 24
    refused = api.put("/api/v1/retention/policy/", {"document_months": 0, "inactive_years": 99, "email_report": False},
                      format="json")
    assert refused.status_code == 400 and {"document_months", "inactive_years"} <= set(str(refused.json()).split("'"))
    assert api.put("/api/v1/retention/policy/", {"email_report": True}, format="json").status_code == 400  # PUT: all
    ok = api.put("/api/v1/retention/policy/", {"document_months": 12, "inactive_years": None, "email_report": False},
                 format="json")
    assert ok.status_code == 200 and ok.json()["document_months"] == 12
    with tenant_context(alpha):
        customer_with_document("Old", added_months_ago=30)
    connection.set_schema_to_public()
    assert api.get("/api/v1/retention/preview/").json()["documents"] == 1
    created = api.post("/api/v1/retention/runs/")
    assert created.status_code == 201 and created.json()["documents_deleted"] == 1
    run_id = created.json()["id"]
    assert api.get(f"/api/v1/retention/runs/{run_id}/").status_code == 200
    assert [r["id"] for r in api.get("/api/v1/retention/runs/").json()["results"]] == [run_id]
    # The fence: alpha's report is not on bravo's host, nor alpha's token.
    assert api_client("bravo", "admin").get(f"/api/v1/retention/runs/{run_id}/").status_code == 404
    assert api_client("alpha", "admin", on="bravo.localhost").get("/api/v1/retention/policy/").status_code == 401
    with tenant_context(bravo):
        assert RetentionPolicy.load().document_months == 24
