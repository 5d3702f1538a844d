"""Erasure of one customer (GDPR Art. 17, PIPL): after it, a search of every text and JSON column of
every table of the agency's schema (read from pg_catalog, not from the code under test) finds the
person's name, phone, e-mail and document number nowhere; trips, payments and value totals stay;
stored files and cache entries are gone; the erasure is logged without personal data; only admins
may erase, and only in their own agency."""
import os
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.campaigns.models import Campaign, Consent, EmailTemplate, Recipient
from crm.care.models import Complaint, Survey
from crm.loyalty.models import Greeting, Occasion
from crm.customers.models import ChangeLog, Contact, Customer, ImportJob, Phone, TravelDocument
from crm.pipeline.models import Opportunity, Stage, Task
from crm.privacy.collect import customer_graph
from crm.retention import services
from crm.retention.models import Erasure
from crm.trips.models import ChecklistItem, ItineraryItem, Payment, Traveler, Trip, TripSummary
from crm.value import services as value_services
from crm.value.models import CustomerValue

from .conftest import staff

pytestmark = pytest.mark.django_db

NAME = "甄士隐"
LATIN = ("ZHEN", "Shiyin")
PHONE = "139 1234 5678"  # as typed; stored +8613912345678
EMAIL = "zhen.shiyin@example.test"
DOCUMENT = "E98765432"
NEEDLES = [NAME, "Shiyin", "13912345678", "+8613912345678", EMAIL, DOCUMENT]

# Text, character, JSON and text-array columns of the active schema's tables, from the catalogue.
_COLUMNS = """
SELECT c.relname, a.attname
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'json'::regtype, 'jsonb'::regtype,
                     'text[]'::regtype, 'varchar[]'::regtype, 'bpchar[]'::regtype)
ORDER BY 1, 2"""


def occurrences(needles) -> dict[str, set]:
    """{needle: {"table.column", …}} for every case-insensitive occurrence in the active schema."""
    found: dict[str, set] = {}
    with connection.cursor() as cursor:
        cursor.execute(_COLUMNS)
        columns = cursor.fetchall()
        for table, column in columns:
            for needle in needles:
                cursor.execute(f'SELECT 1 FROM "{table}" WHERE strpos(lower("{column}"::text), lower(%s)) > 0 LIMIT 1',
                               [needle])
                if cursor.fetchone():
                    found.setdefault(needle, set()).add(f"{table}.{column}")
    return found


def person(agency, name=NAME, phone=PHONE, email=EMAIL, document=DOCUMENT) -> Customer:
    """A customer with something personal in every corner of the agency's data."""
    owner = staff(agency, "sales")
    customer = crm_services.customer_create(
        actor=owner, via=ChangeLog.Via.PAGE, name=name, latin_surname=LATIN[0], latin_given=LATIN[1], gender="M",
        birthday=date(1980, 5, 17), notes=f"Prefers calls on {phone}", tags=["vip"], phones=[phone], emails=[email],
        addresses=[{"line": "18 Renmin Road", "city": "Suzhou"}], owner=owner)
    crm_services.customer_update(actor=owner, via=ChangeLog.Via.PAGE, customer=customer, notes="Renamed",
                                 name=f"{name} ")  # a change-log entry with the name
    crm_services.document_add(actor=owner, customer=customer, kind="passport", issuing_country="CN",
                              number=document, via=ChangeLog.Via.PAGE, expires_on=date(2031, 1, 1))
    crm_services.customer_preferences_set(actor=owner, customer=customer, seat="aisle", meal="VGML")
    crm_services.loyalty_set(actor=owner, customer=customer, programme="CA", number="CA778899001")
    crm_services.family_date_add(actor=owner, customer=customer, label="Wedding anniversary", date=date(2005, 10, 1))
    crm_services.contact_add(actor=owner, customer=customer, channel="call",
                             summary=f"{name} called from {phone} about the passport {document}")
    Consent.objects.create(customer=customer, email_opt_in=True, opted_in_at=timezone.now())
    stage = Stage.objects.filter(kind=Stage.Kind.OPEN).order_by("position").first()
    opportunity = Opportunity.objects.create(customer=customer, title=f"{name} · Kyoto", currency="CNY", stage=stage,
                                             message=f"Write to {email}")
    Task.objects.create(title=f"Call {name} back", customer=customer, opportunity=opportunity, owner=owner,
                        due_at=timezone.now(), notes=f"{phone}")
    trip = Trip.objects.create(customer=customer, title=f"{name} in Kyoto", destination="Japan", currency="CNY",
                               status=Trip.Status.COMPLETED, depart_on=date(2025, 4, 1), return_on=date(2025, 4, 8),
                               confirmed_at=timezone.now() - timedelta(days=400), notes=f"Passport {document}")
    ItineraryItem.objects.create(trip=trip, kind="flight", description=f"PVG-KIX for {LATIN[0]} {LATIN[1]}",
                                 cost=Decimal("3000"), sell=Decimal("4200"), details={"passenger": f"{LATIN[0]}/{LATIN[1]}"})
    traveler = Traveler.objects.create(trip=trip, customer=customer, is_lead=True)
    ChecklistItem.objects.create(traveler=traveler, document="passport", note=f"{document} received")
    Payment.objects.create(trip=trip, kind="deposit", amount=Decimal("1000"), currency="CNY",
                           note=f"Transfer from {name}", reference=f"{phone}")
    Payment.objects.create(trip=trip, kind="balance", amount=Decimal("3200"), currency="CNY")
    survey = Survey.objects.create(trip=trip, customer=customer, email=email, csat=5, nps=9,
                                   comment=f"Great, {name}", answered_at=timezone.now())
    Complaint.objects.create(customer=customer, trip=trip, survey=survey, category="hotel",
                             description=f"{name}: room was cold", currency="CNY",
                             deadline_at=timezone.now() + timedelta(days=1))
    template = EmailTemplate.objects.create(name=f"Spring #{customer.pk}", subject_en="Hi", body_en="Hello {{ first_name }}")
    campaign = Campaign.objects.create(name="Spring", template=template, status=Campaign.Status.SENT)
    Recipient.objects.create(campaign=campaign, customer=customer, email=email, language="en", group="send",
                             status="sent", sent_at=timezone.now())
    occasion = Occasion.objects.filter(kind=Occasion.Kind.BIRTHDAY).first() or Occasion.objects.create(
        name="Birthday", kind=Occasion.Kind.BIRTHDAY, subject_en="Happy birthday")
    Greeting.objects.get_or_create(customer=customer, occasion=occasion, occasion_date=date(2026, 5, 17), defaults=dict(label="Birthday",
                            channel="email", language="en", email=email, subject=f"Happy birthday, {name}"))
    return Customer.objects.get(pk=customer.pk)


def other_customer_mentioning(agency) -> Customer:
    """Someone else whose timeline mentions the person's phone and e-mail (no link to them)."""
    other = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="Other Person 别人")
    crm_services.contact_add(actor=staff(agency, "sales"), customer=other, channel="note",
                             summary=f"Referred by the customer on {PHONE} / {EMAIL.upper()}")
    return other


def erase(agency, customer, role="admin", reason="request", confirm=None) -> Erasure:
    return services.customer_erase(actor=staff(agency, role), customer=customer, reason=reason,
                                   confirm=str(customer.pk) if confirm is None else confirm, via=Erasure.Via.PAGE)


# --- every trace ----------------------------------------------------------------------------------

def test_erasure_leaves_no_trace_in_any_column_of_the_agency_schema(alpha, settings, tmp_path,
                                                                    django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    with tenant_context(alpha):
        customer = person(alpha)
        other = other_customer_mentioning(alpha)
        sheet = ImportJob.objects.create(created_by=staff(alpha, "admin"), original_name="customers.csv",
                                         file=default_storage.save("imports/customers.csv", ContentFile(
                                             f"name,phone,email\n{NAME},{PHONE},{EMAIL}\n".encode())))
        unrelated = ImportJob.objects.create(created_by=staff(alpha, "admin"), original_name="others.csv",
                                             file=default_storage.save("imports/others.csv", ContentFile(
                                                 b"name,phone\nSomeone Else,13800138000\n")))
        sheet_path, unrelated_path = default_storage.path(sheet.file.name), default_storage.path(unrelated.file.name)
        cache.set(services.customer_cache_key(customer.pk, "card"), f"{NAME} {PHONE}")
        before = occurrences(NEEDLES)
        assert {"crm_customer.name", "crm_changelog.new", "trips_trip.title", "crm_contact.summary",
                "campaigns_recipient.email", "loyalty_greeting.subject"} <= before[NAME] | before[EMAIL]
        assert len(set().union(*before.values())) >= 15  # the search finds what it looks for

        with django_capture_on_commit_callbacks(execute=True):
            erasure = erase(alpha, customer)

        assert occurrences(NEEDLES) == {}  # no table needs an exception
        customer.refresh_from_db()
        assert customer.name == f"Erased customer #{customer.pk}"
        assert (customer.latin_surname, customer.birthday, customer.notes, customer.tags) == ("", None, "", [])
        assert not TravelDocument.objects.filter(customer=customer).exists()
        assert not Phone.objects.filter(customer=customer).exists()
        assert not Consent.objects.filter(customer=customer).exists()
        # The other customer's note keeps its words but not the identifiers.
        note = Contact.objects.get(customer=other).summary
        assert note.startswith("Referred by the customer on") and "[erased]" in note
        # Files: the spreadsheet holding the person is gone from disk, the other one stays.
        assert not os.path.exists(sheet_path)
        assert os.path.exists(unrelated_path)
        assert ImportJob.objects.get(pk=sheet.pk).file.name == ""
        assert cache.get(services.customer_cache_key(customer.pk, "card")) is None
        # The log: who, which customer, why; no personal data.
        assert (erasure.actor, erasure.customer_id, erasure.reason, erasure.via) == (
            staff(alpha, "admin"), customer.pk, "request", "page")
        assert erasure.files_deleted == 1
        logged = str(Erasure.objects.filter(pk=erasure.pk).values().get())
        assert not any(n.lower() in logged.lower() for n in NEEDLES)


def test_trips_payments_and_value_totals_are_kept(alpha):
    with tenant_context(alpha):
        customer = person(alpha)
        value_services.value_run()
        paid = Payment.objects.filter(trip__customer=customer).aggregate(s=Sum("amount"))["s"]
        sold = TripSummary.objects.filter(customer=customer).aggregate(s=Sum("sell"))["s"]
        value_before = CustomerValue.objects.get(customer=customer)
        agency_total = CustomerValue.objects.aggregate(s=Sum("revenue_total"))["s"]

        erase(alpha, customer)
        value_services.value_run()

        trip = Trip.objects.get(customer=customer)
        assert (trip.status, trip.depart_on, trip.destination) == (Trip.Status.COMPLETED, date(2025, 4, 1), "Japan")
        assert Payment.objects.filter(trip__customer=customer).aggregate(s=Sum("amount"))["s"] == paid == Decimal("4200")
        assert TripSummary.objects.filter(customer=customer).aggregate(s=Sum("sell"))["s"] == sold == Decimal("4200")
        assert ItineraryItem.objects.get(trip=trip).cost == Decimal("3000")
        after = CustomerValue.objects.get(customer=customer)
        assert (after.revenue_total, after.trips_total) == (value_before.revenue_total, value_before.trips_total)
        assert CustomerValue.objects.aggregate(s=Sum("revenue_total"))["s"] == agency_total
        assert Survey.objects.get(trip=trip).csat == 5  # scores stay, words go
        assert Survey.objects.get(trip=trip).comment == ""
        assert Trip.objects.get(pk=trip.pk).title == "[erased] in Kyoto"


def test_records_merged_into_the_customer_are_erased_with_it(alpha):
    with tenant_context(alpha):
        keep = person(alpha)
        drop = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=f"{NAME} (old record)",
                                            phones=["13700001111"])
        Trip.objects.create(customer=drop, title="Old trip", currency="CNY", status=Trip.Status.COMPLETED)
        crm_services.customer_merge(actor=staff(alpha, "admin"), keep=keep, drop=drop)
        erasure = erase(alpha, Customer.objects.get(pk=drop.pk), confirm=str(drop.pk))  # through the old record
        assert sorted(erasure.customer_ids) == sorted([keep.pk, drop.pk])
        assert erasure.customer_id == keep.pk
        assert Customer.objects.get(pk=drop.pk).name == f"Erased customer #{drop.pk}"
        assert occurrences([NAME, "13700001111"]) == {}
        assert Trip.objects.filter(customer=drop).count() == 1


def test_every_model_the_walk_reaches_has_an_erasure_rule():
    missing = sorted(m._meta.label for m in customer_graph() if m._meta.label not in services.RULES)
    assert missing == [], "add a rule (delete, blank or keep with a reason) to crm.retention.services.RULES"
    for label, rules in services.RULES.items():
        for rule in rules:
            assert rule.delete or rule.blank or rule.why, label


def test_erasure_needs_the_confirmation_a_reason_and_a_person(alpha):
    with tenant_context(alpha):
        customer = person(alpha)
        with pytest.raises(ValidationError) as refused:
            erase(alpha, customer, confirm="1" + str(customer.pk), reason="retention")
        assert set(refused.value.message_dict) == {"confirm", "reason"}
        company = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="ACME Ltd.", kind="company")
        with pytest.raises(ValidationError):
            erase(alpha, company)
        assert Customer.objects.get(pk=customer.pk).name == NAME  # nothing half-applied
        erase(alpha, customer)
        with pytest.raises(ValidationError):
            erase(alpha, customer)  # once
        assert Erasure.objects.count() == 1


@pytest.mark.parametrize("role", ["manager", "sales", "call_center", "service", "finance"])
def test_only_admins_may_erase(alpha, role, page_client, api_client):
    with tenant_context(alpha):
        customer = person(alpha)
        with pytest.raises(PermissionDenied):
            erase(alpha, customer, role=role)
    connection.set_schema_to_public()
    assert page_client("alpha", role).get(f"/customers/{customer.pk}/erase/").status_code == 403
    assert page_client("alpha", role).post(f"/customers/{customer.pk}/erase/",
                                           {"reason": "request", "confirm": customer.pk}).status_code == 403
    assert api_client("alpha", role).post(f"/api/v1/customers/{customer.pk}/erase/",
                                          {"reason": "request", "confirm": str(customer.pk)},
                                          format="json").status_code == 403
    with tenant_context(alpha):
        assert Customer.objects.get(pk=customer.pk).name == NAME
        assert not Erasure.objects.exists()


def test_admin_erases_through_the_page_and_the_api(alpha, page_client, api_client):
    with tenant_context(alpha):
        first = person(alpha)
        second = person(alpha, name="贾雨村", phone="13500002222", email="jia@example.test", document="G12345678")
    connection.set_schema_to_public()
    client = page_client("alpha", "admin")
    page = client.get(f"/customers/{first.pk}/erase/")
    assert page.status_code == 200 and b'data-test="erase-plan"' in page.content
    wrong = client.post(f"/customers/{first.pk}/erase/", {"reason": "request", "confirm": "no"})
    assert wrong.status_code == 400 and b'data-field="confirm"' in wrong.content
    done = client.post(f"/customers/{first.pk}/erase/", {"reason": "request", "confirm": str(first.pk)})
    assert done.status_code == 302 and done["Location"] == f"/customers/{first.pk}/"

    api = api_client("alpha", "admin")
    missing = api.post(f"/api/v1/customers/{second.pk}/erase/", {"reason": "request", "confirm": "x"}, format="json")
    assert missing.status_code == 400 and "confirm" in str(missing.json())
    response = api.post(f"/api/v1/customers/{second.pk}/erase/",
                        {"reason": "consent_withdrawn", "confirm": str(second.pk)}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["customer"] == second.pk and response.json()["via"] == "api"
    listed = api.get("/api/v1/erasures/").json()
    assert [row["customer"] for row in listed["results"]] == [second.pk, first.pk]
    with tenant_context(alpha):
        assert Customer.objects.get(pk=second.pk).name == f"Erased customer #{second.pk}"


def test_the_fence_alpha_cannot_erase_bravos_customer(alpha, bravo, page_client, api_client):
    with tenant_context(bravo):
        theirs = person(bravo)  # same name, phone, e-mail and passport number, another agency
        cache.set(services.customer_cache_key(theirs.pk, "card"), "bravo's")
    with tenant_context(alpha):
        ours = person(alpha)
    connection.set_schema_to_public()
    body = {"reason": "request", "confirm": str(theirs.pk)}
    # Bravo's id on alpha's host: 404 (or alpha's own record of that number is what would be addressed).
    if theirs.pk != ours.pk:
        assert api_client("alpha", "admin").post(f"/api/v1/customers/{theirs.pk}/erase/", body,
                                                 format="json").status_code == 404
        assert page_client("alpha", "admin").post(f"/customers/{theirs.pk}/erase/", body).status_code == 404
    # Alpha's token or session on bravo's host: refused.
    assert api_client("alpha", "admin", on="bravo.localhost").post(
        f"/api/v1/customers/{theirs.pk}/erase/", body, format="json").status_code == 401
    assert page_client("alpha", "admin", on="bravo.localhost").post(
        f"/customers/{theirs.pk}/erase/", body).status_code in (302, 403)
    # Alpha erases its own customer; bravo's namesake is untouched.
    assert api_client("alpha", "admin").post(f"/api/v1/customers/{ours.pk}/erase/",
                                             {"reason": "request", "confirm": str(ours.pk)},
                                             format="json").status_code == 201
    with tenant_context(bravo):
        theirs.refresh_from_db()
        assert theirs.name == NAME and theirs.latin_given == LATIN[1]
        assert Phone.objects.get(customer=theirs).number == "+8613912345678"
        assert TravelDocument.objects.filter(customer=theirs).count() == 1
        assert set(occurrences(NEEDLES)) == set(NEEDLES)
        assert not Erasure.objects.exists()
        assert cache.get(services.customer_cache_key(theirs.pk, "card")) == "bravo's"
