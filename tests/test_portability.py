"""Agency export, restore and deletion (R-PLAT-2, docs/portability.md).

The round trip exports a seeded agency, deletes it, restores it under the same slug and compares
every table's rows (all columns) and its shared rows; then the fences around the export pages and
downloads, the archive's checksums and migration state, expiry, and the grace-period deletion that
leaves nothing of the agency in public tables, the cache or on disk.
"""
import json
import zipfile
from datetime import date
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists, tenant_context

from accounts.models import User
from accounts.roles import Role
from tenants.models import Agency, AgencyEvent
from tenants.portability import catalog, services
from tenants.portability.models import AgencyExport, JobStatus
from tenants.services import agency_delete, agency_onboard, agency_suspend

pytestmark = pytest.mark.django_db


@pytest.fixture
def roots(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"  # django-tenants' storage re-reads MEDIA_ROOT only then
    settings.EXPORT_ROOT = tmp_path / "exports"
    return tmp_path


def _seed(agency: Agency) -> None:
    """Customers with a travel document, a trip with travelers, items and payments, a file."""
    from django.core.files.storage import default_storage

    from billing import services as billing
    from crm import services as crm
    from crm.models import ChangeLog
    from crm.trips import services as trips

    billing.account_for(agency)
    with tenant_context(agency):
        admin = User.objects.create_user(f"admin@{agency.slug}.test", "pw-admin-Caravan!", role=Role.ADMIN,
                                         full_name="Admin", language="en")
        buyer = crm.customer_create(actor=admin, via=ChangeLog.Via.PAGE, name="王小明 Wang", phones=["+8613800000001"],
                                    emails=["wang@example.com"])
        other = crm.customer_create(actor=admin, via=ChangeLog.Via.PAGE, name="Lee Mei", emails=["lee@example.com"])
        crm.document_add(actor=admin, customer=buyer, kind="passport", issuing_country="CN", number="E12345678",
                         via=ChangeLog.Via.PAGE)
        trip = trips.trip_create(actor=admin, customer=buyer, title="东京 Tokyo", destination="日本 东京",
                                 depart_on=date(2027, 3, 1), return_on=date(2027, 3, 8), status="confirmed")
        trips.traveler_add(actor=admin, trip=trip, customer=other)
        trips.item_add(actor=admin, trip=trip, kind="flight", description="PEK-HND", cost=Decimal("2000"),
                       sell=Decimal("2600"))
        trips.item_add(actor=admin, trip=trip, kind="hotel", description="Hotel", cost=Decimal("3000"),
                       sell=Decimal("3900"), details={"discounted": True})
        trips.payment_record(actor=admin, trip=trip, kind="deposit", amount=Decimal("1000"), method="bank",
                             received_on=date(2027, 1, 5))
        default_storage.save("documents/scan.pdf", ContentFile(b"%PDF scan " + "护照".encode()))
        cache.set("k", "value")
    connection.set_schema_to_public()


def _schema_rows(schema: str) -> dict[str, list]:
    out = {}
    with connection.cursor() as cursor:
        for table in catalog.schema_tables(schema):
            cols = catalog.columns(schema, table)
            cursor.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{schema}"."{table}"')
            out[table] = sorted(cursor.fetchall(), key=repr)
    return out


def _shared_rows(agency_id: int) -> dict[str, list]:
    """The agency's shared rows without their own ids and the keys between them (new on restore)."""
    out = {}
    with connection.cursor() as cursor:
        for table in catalog.shared_tables():
            keys = {k.column for k in table.keys} | {"id"}
            cols = [c for c in catalog.columns("public", table.name) if c not in keys]
            cursor.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM public."{table.name}" '
                           f'WHERE {table.condition}', {"agency": agency_id})
            out[table.name] = sorted(cursor.fetchall(), key=repr)
    return out


def _export(agency: Agency, actor="admin@test") -> AgencyExport:
    export = services.export_request(agency=agency, actor=actor)
    return services.export_run(export.pk)


def test_shared_tables_are_found_in_the_catalogue():
    names = {t.name for t in catalog.shared_tables()}
    assert {"tenants_agency", "tenants_domain", "tenants_agencyevent", "billing_billingaccount", "integrations_feed",
            "integrations_feedrun", "integrations_quarantinedrecord", "integrations_hotelrate",
            "integrations_flightoffer"} <= names
    assert not names & catalog.NOT_EXPORTED
    order = [t.name for t in catalog.shared_tables()]
    assert order.index("integrations_feed") < order.index("integrations_feedrun") < order.index(
        "integrations_quarantinedrecord")


def test_round_trip_export_delete_restore_gives_every_row_back(roots):
    from crm.models import TravelDocument
    from crm.trips.models import TripSummary

    agency = agency_onboard(name="Kilo 旅行", slug="kilo", plan="professional", admin_email="first@kilo.test").agency
    _seed(agency)
    export = _export(agency)
    assert export.status == JobStatus.DONE and export.tables_done == export.tables_total > 50
    path = services.export_path(export)
    assert path.parent == roots / "exports" and len(path.name) > 30  # unguessable name, private directory
    before_schema, before_shared = _schema_rows("kilo"), _shared_rows(agency.pk)
    assert before_schema["trips_tripsummary"] and before_schema["crm_traveldocument"]
    keep = roots / "kept.zip"
    keep.write_bytes(path.read_bytes())

    agency_delete(agency=agency, confirm_slug="kilo", actor="test")
    assert not schema_exists("kilo") and not path.exists()
    assert not (roots / "media" / "kilo").exists()

    restored = services.restore_archive(keep, slug="kilo", actor="operator@test")
    assert restored.pk != agency.pk
    after_schema, after_shared = _schema_rows("kilo"), _shared_rows(restored.pk)
    assert after_schema.keys() == before_schema.keys()
    for table in before_schema:
        assert after_schema[table] == before_schema[table], table
    kinds = [row for row in after_shared["tenants_agencyevent"] if AgencyEvent.Kind.RESTORED not in row]
    assert kinds == before_shared["tenants_agencyevent"]
    for table in before_shared:
        if table != "tenants_agencyevent":
            assert after_shared[table] == before_shared[table], table
    with tenant_context(restored):
        from django.core.files.storage import default_storage

        assert default_storage.open("documents/scan.pdf").read() == b"%PDF scan " + "护照".encode()
        assert cache.get("k") is None
        assert TripSummary.objects.count() == 1
        document = TravelDocument.objects.get()
        from crm import crypto

        assert crypto.decrypt(document.number_encrypted) == "E12345678"
        # Sequences follow the restored rows: a new customer gets a fresh id.
        from crm import services as crm
        from crm.models import ChangeLog, Customer

        newest = max(Customer.objects.values_list("pk", flat=True))
        assert crm.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="New one").pk > newest
    connection.set_schema_to_public()
    agency_delete(agency=Agency.objects.get(slug="kilo"), confirm_slug="kilo", actor="test")
