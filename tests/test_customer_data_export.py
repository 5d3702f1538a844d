"""Per-customer data export (GDPR Art. 15/20, PIPL; crm.privacy): everything held about one customer
as a ZIP with data.json and files; full document numbers; admins only; logged; fenced per agency;
and the collector (crm.privacy.collect) misses no model that points at a customer."""
import io
import json
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.db import connection, models
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.roles import Role
from crm.customers import services
from crm.campaigns.models import Campaign, Consent, EmailTemplate, Recipient
from crm.care.models import Complaint, Survey
from crm.loyalty.models import Greeting, Occasion, Referral
from crm.customers.models import (ChangeLog, Contact, Customer, FamilyDate, ImportJob, LoyaltyMembership, Preferences)
from crm.pipeline.models import Opportunity, Stage, Task
from crm.privacy import collect, export
from crm.privacy.models import AccessEntry
from crm.tiers.models import TierChange
from crm.trips.models import ChecklistItem, ItineraryItem, Payment, Traveler, Trip
from crm.visits.models import Visit

from .conftest import staff

pytestmark = pytest.mark.django_db
PAGE = ChangeLog.Via.PAGE
NUMBER = "E12345678"
# The kinds of record the issue names, by model: each must be in a rich customer's export.
EXPECTED = ["crm.Customer", "crm.Phone", "crm.Email", "crm.Address", "crm.TravelDocument", "crm.DocumentReveal",
            "crm.Preferences", "crm.LoyaltyMembership", "crm.FamilyDate", "crm.Contact", "crm.ChangeLog",
            "crm.Employment", "pipeline.Opportunity", "pipeline.Task", "trips.Trip", "trips.ItineraryItem",
            "trips.Traveler", "trips.Payment", "trips.ChecklistItem", "care.Survey", "care.Complaint",
            "campaigns.Consent", "campaigns.Recipient", "tiers.TierChange", "visits.Visit",
            "visits.Visit_met_people", "loyalty.Greeting", "loyalty.Referral", "privacy.AccessEntry"]


def in_agency(agency, fn):
    with tenant_context(agency):
        result = fn()
    connection.set_schema_to_public()
    return result


def rich_customer(agency) -> tuple[Customer, dict]:
    """A person with a bit of everything, and a merged-away duplicate with a trip of its own."""
    def make():
        admin = staff(agency, "admin")
        person = services.customer_create(actor=admin, via=PAGE, name="王芳", latin_surname="Wang", latin_given="Fang",
                                          phones=["13800138000"], emails=["wang.fang@example.cn"],
                                          addresses=[{"line": "朝阳区建国路 1 号", "city": "北京", "country": "CN"}])
        document = services.document_add(actor=admin, customer=person, number=NUMBER, via=PAGE, kind="passport",
                                         issuing_country="CN")
        services.document_reveal(actor=staff(agency, "sales"), document=document, via=PAGE)
        Preferences.objects.create(customer=person, seat="aisle", airlines=["CA"], meal="AVML")
        LoyaltyMembership.objects.create(customer=person, programme="CA", number="CA123456", tier="Gold")
        FamilyDate.objects.create(customer=person, label="结婚纪念日", date=timezone.localdate() - timedelta(days=3000))
        Contact.objects.create(customer=person, staff=admin, channel="call", summary="问了京都的行程")
        company = services.customer_create(actor=admin, via=PAGE, name="华为差旅 Acme Corp", kind=Customer.Kind.COMPANY)
        services.employment_set(actor=admin, company=company, person=person, job_grade="P2", department="Sales")
        stage = Stage.objects.filter(kind=Stage.Kind.OPEN).order_by("position").first()
        opportunity = Opportunity.objects.create(customer=person, title="京都秋色 Kyoto", currency="CNY", stage=stage)
        Task.objects.create(title="回电 Call back", due_at=timezone.now(), customer=person, opportunity=opportunity)
        trip = Trip.objects.create(customer=person, title="京都秋色 Kyoto", destination="Japan", currency="CNY",
                                   opportunity=opportunity, depart_on=timezone.localdate() + timedelta(days=30))
        ItineraryItem.objects.create(trip=trip, kind="hotel", description="京都丽思卡尔顿", sell=Decimal("8800.00"))
        traveler = Traveler.objects.create(trip=trip, customer=person, is_lead=True)
        ChecklistItem.objects.create(traveler=traveler, document="passport")
        Payment.objects.create(trip=trip, kind="deposit", amount=Decimal("3000.00"), currency="CNY")
        Survey.objects.create(trip=trip, customer=person, email="wang.fang@example.cn")
        Complaint.objects.create(customer=person, trip=trip, category="hotel", description="房间太吵",
                                 deadline_at=timezone.now() + timedelta(days=2), currency="CNY")
        Consent.objects.create(customer=person, email_opt_in=True, opted_in_at=timezone.now())
        template = EmailTemplate.objects.create(name="秋季促销 Autumn")
        campaign = Campaign.objects.create(name="秋季促销 Autumn", template=template)
        Recipient.objects.create(campaign=campaign, customer=person, email="wang.fang@example.cn", language="zh-hans",
                                 group="send", status="sent")
        TierChange.objects.create(customer=person, why="manual")
        visit = Visit.objects.create(account=company, visited_at=timezone.now(), topics="年度出差计划")
        visit.met_people.add(person)
        occasion = Occasion.objects.filter(kind=Occasion.Kind.BIRTHDAY).first() or Occasion.objects.create(
            name="生日 Birthday", kind=Occasion.Kind.BIRTHDAY)
        Greeting.objects.create(customer=person, occasion=occasion, occasion_date=timezone.localdate(), label="生日",
                                channel="email", language="zh-hans")
        friend = services.customer_create(actor=admin, via=PAGE, name="李雷", phones=["13700137000"])
        Referral.objects.create(referrer=person, referred=friend)
        duplicate = services.customer_create(actor=admin, via=PAGE, name="王芳 (旧)", phones=["13600136000"])
        old_trip = Trip.objects.create(customer=duplicate, title="三亚 Sanya", destination="海南", currency="CNY")
        services.customer_merge(actor=admin, keep=person, drop=duplicate)
        return person, {"trip": trip, "old_trip": old_trip, "duplicate": duplicate, "friend": friend,
                        "company": company, "stage": stage, "campaign": campaign}
    return in_agency(agency, make)


def unzip(response) -> tuple[dict, zipfile.ZipFile]:
    content = b"".join(response.streaming_content)
    archive = zipfile.ZipFile(io.BytesIO(content))
    return json.loads(archive.read("data.json")), archive


# --- what the export holds -------------------------------------------------------------------------

def test_export_holds_every_kind_of_record_with_full_document_numbers(page_client, alpha):
    person, made = rich_customer(alpha)
    admin = page_client("alpha", "admin")
    page = admin.get(f"/customers/{person.pk}/personal-data/")
    assert page.status_code == 200 and 'data-test="data-export-download"' in page.content.decode()
    response = admin.get(f"/customers/{person.pk}/personal-data/", {"download": "zip"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert f"customer-{person.pk}-data-" in response["Content-Disposition"] and "no-store" in response["Cache-Control"]
    data, archive = unzip(response)
    assert (data["format"], data["version"]) == (export.FORMAT, export.VERSION)
    assert data["customer"] == {"id": person.pk, "name": "王芳"}
    missing = [label for label in EXPECTED if not data["records"].get(label)]
    assert missing == []
    assert data["counts"] == {label: len(rows) for label, rows in data["records"].items()}
    # The subject's right: the full number, decrypted; no ciphertext, no keyed hashes.
    [document] = data["records"]["crm.TravelDocument"]
    assert document["number"] == NUMBER and document["masked"] == "E1234****"
    assert not {"number_encrypted", "number_hash", "tail_hash"} & set(document)
    assert "search_text" not in data["records"]["crm.Customer"][0]
    assert data["models"]["crm.TravelDocument"]["fields"]["number"]
    # The merged-away record and its trip are the same person.
    assert {c["id"] for c in data["records"]["crm.Customer"]} == {person.pk, made["duplicate"].pk}
    assert {t["id"] for t in data["records"]["trips.Trip"]} == {made["trip"].pk, made["old_trip"].pk}
    # Names of what rows point at; other people by id only, companies by name.
    assert data["references"]["campaigns.Campaign"] == {str(made["campaign"].pk): "秋季促销 Autumn"}
    assert data["references"]["crm.Customer"] == {str(made["company"].pk): "华为差旅 Acme Corp"}
    assert "李雷" not in json.dumps(data, ensure_ascii=False)
    assert data["staff"][str(staff(alpha, "sales").pk)] == "Sales of alpha"
    # The access log is in it, this export's own entry included.
    logged = {(e["what"], e["user_id"]) for e in data["records"]["privacy.AccessEntry"]}
    assert (AccessEntry.What.DOCUMENT_REVEAL, staff(alpha, "sales").pk) in logged
    assert (AccessEntry.What.DATA_EXPORT, staff(alpha, "admin").pk) in logged
    assert archive.namelist() == ["data.json"]


def test_export_is_logged(page_client, api_client, alpha):
    person, _ = rich_customer(alpha)
    page_client("alpha", "admin").get(f"/customers/{person.pk}/personal-data/", {"download": "zip"})
    response = api_client("alpha", "admin").get(f"/api/v1/personal-data/{person.pk}/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    data, _archive = unzip(response)
    assert data["records"]["crm.TravelDocument"][0]["number"] == NUMBER
    logged = in_agency(alpha, lambda: list(AccessEntry.objects.filter(what=AccessEntry.What.DATA_EXPORT)
                                            .order_by("id").values_list("customer_id", "via", "user_id")))
    admin = staff(alpha, "admin").pk
    assert logged == [(person.pk, "page", admin), (person.pk, "api", admin)]


def test_files_named_by_records_are_in_the_archive(page_client, alpha, settings, tmp_path):
    """Records keyed some other way come in through a hook; files they name are copied in."""
    settings.MEDIA_ROOT = tmp_path
    person, _ = rich_customer(alpha)

    def seed():
        job = ImportJob(created_by=staff(alpha, "admin"), original_name="客户.csv")
        job.file.save("客户.csv", ContentFile("姓名,电话\n王芳,13800138000\n".encode()), save=True)
        return job
    job = in_agency(alpha, seed)

    @collect.register_hook
    def imports_of(customer_ids):
        yield ImportJob, ImportJob.objects.filter(pk=job.pk)
    try:
        data, archive = unzip(page_client("alpha", "admin").get(f"/customers/{person.pk}/personal-data/", {"download": "zip"}))
    finally:
        collect.HOOKS.remove(imports_of)
    [entry] = data["files"]
    assert entry["model"] == "crm.ImportJob" and entry["id"] == job.pk and entry["field"] == "file"
    assert archive.read(entry["path"]).decode() == "姓名,电话\n王芳,13800138000\n"
    assert data["records"]["crm.ImportJob"][0]["file"] == entry["path"]


def test_a_suspended_agency_can_still_export(page_client, charlie):
    """Read-only agencies may read and export (the read-only message says so): a customer's request
    for their data is answered all the same."""
    customer = in_agency(charlie, lambda: services.customer_create(actor=None, via=PAGE, name="查理客户",
                                                                   phones=["13400134000"]))
    response = page_client("charlie", "admin").get(f"/customers/{customer.pk}/personal-data/", {"download": "zip"})
    assert response.status_code == 200
    data, _archive = unzip(response)
    assert data["customer"] == {"id": customer.pk, "name": "查理客户"}


# --- who may export --------------------------------------------------------------------------------

@pytest.mark.parametrize("role", [r for r in Role.values if r != Role.ADMIN])
def test_only_admins_export(page_client, api_client, alpha, role):
    person, _ = rich_customer(alpha)
    assert page_client("alpha", role).get(f"/customers/{person.pk}/personal-data/").status_code == 403
    assert page_client("alpha", role).get(f"/customers/{person.pk}/personal-data/",
                                          {"download": "zip"}).status_code == 403
    assert api_client("alpha", role).get(f"/api/v1/personal-data/{person.pk}/").status_code == 403
    assert 'data-test="data-export"' not in page_client("alpha", role).get(f"/customers/{person.pk}/").content.decode()
    assert not in_agency(alpha, lambda: AccessEntry.objects.filter(what=AccessEntry.What.DATA_EXPORT).exists())


def test_alpha_admin_cannot_export_bravos_customer(page_client, api_client, alpha, bravo):
    rich_customer(alpha)  # alpha has customers too; bravo's id below is none of them
    theirs = None
    for n in range(5):  # each schema numbers its own rows: take an id alpha does not have
        theirs = in_agency(bravo, lambda: services.customer_create(actor=None, via=PAGE, name="布拉沃客户",
                                                                   phones=[f"1350013500{n}"]))
        if not in_agency(alpha, lambda: Customer.objects.filter(pk=theirs.pk).exists()):
            break
    ours = page_client("alpha", "admin")
    assert ours.get(f"/customers/{theirs.pk}/personal-data/").status_code == 404
    assert ours.get(f"/customers/{theirs.pk}/personal-data/", {"download": "zip"}).status_code == 404
    assert api_client("alpha", "admin").get(f"/api/v1/personal-data/{theirs.pk}/").status_code == 404
    on_bravo = page_client("alpha", "admin", on="bravo.localhost").get(f"/customers/{theirs.pk}/personal-data/",
                                                                        {"download": "zip"})
    assert on_bravo.status_code == 302 and "/accounts/login/" in on_bravo["Location"]
    assert api_client("alpha", "admin", on="bravo.localhost").get(
        f"/api/v1/personal-data/{theirs.pk}/").status_code == 401
    assert page_client(None).get(f"/customers/{theirs.pk}/personal-data/").status_code == 404
    assert not in_agency(bravo, lambda: AccessEntry.objects.exists())


# --- the collector misses nothing ------------------------------------------------------------------

def _relations_to_customer():
    """Every forward relation of every installed model pointing at Customer, found independently."""
    found = set()
    for model in apps.get_models(include_auto_created=True):
        for field in model._meta.get_fields(include_hidden=True):
            if isinstance(field, models.Field) and field.is_relation and field.related_model is Customer:
                found.add(f"{model._meta.label}.{field.name}")
    return found


def test_every_relation_to_a_customer_is_walked_or_skipped_with_a_reason():
    """Fails when a model gains a relation to Customer that the collector does not follow: add a
    reason to collect.SKIP, or fix the walk."""
    walked = {edge.key for edges in collect.customer_graph().values() for edge in edges}
    not_covered = _relations_to_customer() - walked - set(collect.SKIP)
    assert not_covered == set()
    assert all(reason.strip() for reason in collect.SKIP.values())


def test_the_walk_reaches_the_children_of_owned_rows():
    graph = collect.customer_graph()
    for label in ("trips.ItineraryItem", "trips.Payment", "trips.ChecklistItem", "crm.DocumentReveal",
                  "pipeline.StageChange", "policies.BookingCheck"):
        assert apps.get_model(label) in graph, label


def test_every_model_the_collector_yields_is_in_the_export(alpha):
    person, _ = rich_customer(alpha)

    def both():
        yielded = {model._meta.label for model, queryset in collect.customer_records(person) if queryset.exists()}
        data, _files = export.collect(person)
        return yielded, data
    yielded, data = in_agency(alpha, both)
    assert yielded == set(data["records"])
    assert set(EXPECTED) <= yielded


def test_mentions_are_collected_but_not_walked_into(alpha):
    """A travel manager is named on a company's policy version: the version is about them, the
    company's bookings under it are not."""
    from . import policy_factories as pf

    def run():
        account, boss, traveler, version = pf.setup_account(alpha)
        version.travel_manager = boss
        version.save(update_fields=["travel_manager"])
        pf.trip_with_items(account, traveler)
        found = collect.customer_record_ids(boss)
        return found, account, traveler, version
    found, account, traveler, version = in_agency(alpha, run)
    by_label = {m._meta.label: ids for m, ids in found.items()}
    assert version.pk in by_label["policies.PolicyVersion"]
    assert "trips.Trip" not in by_label and "trips.ItineraryItem" not in by_label
    assert traveler.pk not in by_label["crm.Customer"] and account.pk not in by_label["crm.Customer"]


def test_other_customers_rows_are_not_collected(alpha):
    person, made = rich_customer(alpha)
    found = in_agency(alpha, lambda: {m._meta.label: ids for m, ids in collect.customer_record_ids(made["friend"]).items()})
    assert found["crm.Customer"] == {made["friend"].pk}
    assert "trips.Trip" not in found and "crm.TravelDocument" not in found
