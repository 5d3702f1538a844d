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

from .test_tasks import worker  # noqa: F401  (fixture: a real Celery worker thread)

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
    from crm.customers import services as crm
    from crm.customers.models import ChangeLog
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
        from crm.destinations import services as knowledge  # an article with a visa note and an attachment

        article = knowledge.article_save(actor=admin, article=None, data={"country": "JP", "city": "Tokyo",
                                                                          "title_zh": "东京"})
        knowledge.visa_note_save(actor=admin, article=article, nationality="CN", data={"requirement": "visa",
                                                                                        "checked": True})
        knowledge.attachment_add(actor=admin, article=article, upload=ContentFile(b"%PDF-1.4 map", name="map.pdf"))
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


def test_round_trip_export_delete_restore_gives_every_row_back(roots, monkeypatch):
    from crm.customers.models import TravelDocument
    from crm.trips.models import TripSummary

    agency = agency_onboard(name="Kilo 旅行", slug="kilo", plan="professional", admin_email="first@kilo.test").agency
    _seed(agency)
    export = _export(agency)
    assert export.status == JobStatus.DONE and export.tables_done == export.tables_total > 50
    path = services.export_path(export)
    assert path.parent == roots / "exports" and len(path.name) > 30  # unguessable name, private directory
    before_schema, before_shared = _schema_rows("kilo"), _shared_rows(agency.pk)
    with schema_context("public"):
        structure = catalog.plain_indexes("kilo"), catalog.foreign_keys("kilo"), catalog.tables_with_user_triggers("kilo")
    assert before_schema["trips_tripsummary"] and before_schema["crm_traveldocument"]
    keep = roots / "kept.zip"
    keep.write_bytes(path.read_bytes())

    agency_delete(agency=agency, confirm_slug="kilo", actor="test")
    assert not schema_exists("kilo") and not path.exists()
    assert not (roots / "media" / "kilo").exists()

    monkeypatch.setattr(services, "BULK_ROWS", 1)  # the big-table path (keys and indexes rebuilt) for every table
    restored = services.restore_archive(keep, slug="kilo", actor="operator@test")
    assert restored.pk != agency.pk
    after_schema, after_shared = _schema_rows("kilo"), _shared_rows(restored.pk)
    # The load drops indexes and foreign keys and turns triggers off: all of them are back.
    assert (catalog.plain_indexes("kilo"), catalog.foreign_keys("kilo"), catalog.tables_with_user_triggers("kilo")) \
        == structure and structure[0] and structure[1] and structure[2]
    with connection.cursor() as cursor:
        cursor.execute("""SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                          JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = 'kilo' AND NOT t.tgisinternal AND t.tgenabled = 'D'""")
        assert cursor.fetchone()[0] == 0
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
        from crm.destinations.models import Attachment

        assert Attachment.objects.get().file.open("rb").read() == b"%PDF-1.4 map"  # knowledge-base files too
        assert cache.get("k") is None
        assert TripSummary.objects.count() == 1
        document = TravelDocument.objects.get()
        from crm.customers import crypto

        assert crypto.decrypt(document.number_encrypted) == "E12345678"
        # Sequences follow the restored rows: a new customer gets a fresh id.
        from crm.customers import services as crm
        from crm.customers.models import ChangeLog, Customer

        newest = max(Customer.objects.values_list("pk", flat=True))
        assert crm.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="New one").pk > newest
        # The summary triggers are back on: a new line shows in the trip's summary row.
        from crm.trips import services as trips
        from crm.trips.models import Trip

        trip = Trip.objects.get()
        assert TripSummary.objects.get(trip=trip).sell == Decimal("6500")
        trips.item_add(actor=None, trip=trip, kind="tour", description="Day tour", cost=Decimal("100"),
                       sell=Decimal("150"))
        assert TripSummary.objects.get(trip=trip).sell == Decimal("6650")
    connection.set_schema_to_public()
    agency_delete(agency=Agency.objects.get(slug="kilo"), confirm_slug="kilo", actor="test")


@pytest.fixture
def alpha_export(roots, alpha):
    return _export(alpha, actor="admin@alpha.test")


def test_export_pages_and_downloads_are_fenced(alpha_export, alpha, bravo, page_client, operator_client):
    pk = alpha_export.pk
    admin = page_client("alpha", "admin")
    assert admin.get("/settings/export/").status_code == 200
    detail = admin.get(f"/settings/export/{pk}/")
    assert detail.status_code == 200 and b"Download the archive" in detail.content
    download = admin.get(f"/settings/export/{pk}/download/")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert zipfile.ZipFile(__import__("io").BytesIO(b"".join(download.streaming_content))).read("manifest.json")
    with schema_context("public"):
        logged = AgencyEvent.objects.unscoped().filter(agency=alpha, kind=AgencyEvent.Kind.EXPORT_DOWNLOADED)
        assert list(logged.values_list("actor", flat=True)) == ["admin@alpha.test"]
    for role in ("sales", "manager", "finance"):
        client = page_client("alpha", role)
        assert client.get("/settings/export/").status_code == 403
        assert client.get(f"/settings/export/{pk}/download/").status_code == 403
        assert client.post("/settings/export/").status_code == 403
    other = page_client("bravo", "admin")
    assert other.get(f"/settings/export/{pk}/").status_code == 404
    assert other.get(f"/settings/export/{pk}/download/").status_code == 404
    stolen = page_client("alpha", "admin", on="bravo.localhost")  # alpha's session on bravo's host: signed out
    assert stolen.get(f"/settings/export/{pk}/download/").status_code == 302
    assert page_client(None).get(f"/settings/export/{pk}/download/").status_code == 404  # platform domain
    assert operator_client.get(f"/agencies/alpha/exports/{pk}/download/").status_code == 200
    assert operator_client.get(f"/agencies/bravo/exports/{pk}/download/").status_code == 404
    listed = operator_client.get("/api/operator/agencies/alpha/exports/").json()
    assert listed[0]["download_url"] == f"http://localhost/api/operator/agencies/alpha/exports/{pk}/download/"
    assert operator_client.post("/api/operator/agencies/bravo/exports/").status_code == 202
    assert operator_client.get("/api/operator/agencies/bravo/exports/").json()[0]["status"] == "queued"
    assert operator_client.get(f"/api/operator/agencies/bravo/exports/{pk}/download/").status_code == 404
    api = operator_client.get(f"/api/operator/agencies/alpha/exports/{pk}/download/")
    assert api.status_code == 200
    with schema_context("public"):
        assert logged.count() == 3
    staff_on_platform = page_client("alpha", "admin", on="localhost")  # staff session means nothing there
    assert staff_on_platform.get(f"/agencies/alpha/exports/{pk}/download/").status_code == 302


def test_agency_staff_cannot_reach_the_operator_export_and_deletion_actions(charlie, page_client, api_client):
    """The console's and the operator API's export, deletion scheduling and cancelling: no agency's admin
    reaches them for another agency (or its own), by token on an agency host or the platform's, or by session."""
    actions = ("schedule-deletion", "cancel-deletion", "exports")
    for slug, on in (("alpha", None), ("alpha", "localhost"), ("charlie", None)):
        client = api_client(slug, "admin", on=on)
        for action in actions:
            response = client.post(f"/api/operator/agencies/charlie/{action}/", {}, format="json")
            assert response.status_code in (401, 403, 404), (slug, on, action, response.status_code)
        assert client.get("/api/operator/agencies/charlie/exports/").status_code in (401, 403, 404)
    session = page_client("alpha", "admin", on="localhost")  # an agency admin's session on the platform domain
    for action in ("export", "schedule_deletion", "cancel_deletion"):
        response = session.post("/agencies/charlie/", {"action": action, "note": "crossing"})
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    agency_host = page_client("alpha", "admin")  # the console is not on an agency host
    assert agency_host.post("/agencies/charlie/", {"action": "schedule_deletion"}).status_code == 404
    charlie.refresh_from_db()
    assert charlie.status == Agency.Status.SUSPENDED and charlie.deletion_due_at is None
    assert not AgencyExport.objects.unscoped().filter(agency=charlie).exists()


def test_an_admin_starts_an_export_and_sees_its_progress(roots, alpha, page_client):
    admin = page_client("alpha", "admin")
    response = admin.post("/settings/export/")
    export = AgencyExport.objects.unscoped().get(agency=alpha)
    assert response.status_code == 302 and response["Location"] == f"/settings/export/{export.pk}/"
    fragment = admin.get(f"/settings/export/{export.pk}/", HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 1s"' in fragment.content and b"0 of 0 tables" in fragment.content
    assert admin.post("/settings/export/").status_code == 302  # refused: one at a time
    assert AgencyExport.objects.unscoped().filter(agency=alpha).count() == 1
    services.export_run(export.pk)
    assert b"The export is ready" in admin.get(f"/settings/export/{export.pk}/", HTTP_HX_REQUEST="true").content


def test_a_suspended_agencys_admin_can_still_export(roots, charlie, page_client):
    response = page_client("charlie", "admin").post("/settings/export/")
    assert response.status_code == 302
    assert AgencyExport.objects.unscoped().filter(agency=charlie).exists()


def test_the_manifest_checksums_hold_and_a_tampered_archive_is_refused(alpha_export, roots):
    path = services.export_path(alpha_export)
    archive = services.open_archive(path)
    manifest = archive.manifest
    assert manifest["agency"]["slug"] == "alpha" and manifest["schema"] == "alpha"
    assert {"crm", "trips", "tenants"} <= set(manifest["migrations"]["schema"])
    customers = next(t for t in manifest["tables"] if t["table"] == "crm_customer")
    assert customers["scope"] == "schema" and customers["columns"][0] == "id"
    assert "Caravan agency export" in archive.zip.read("README.txt").decode()

    tampered = roots / "tampered.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "schema/accounts_user.csv":
                data = data.replace(b"alpha.test", b"evil.test")
            target.writestr(item, data)
    with pytest.raises(ValidationError, match="checksum of schema/accounts_user.csv does not match"):
        services.restore_archive(tampered, slug="lima", actor="test")
    assert not Agency.objects.filter(slug="lima").exists() and not schema_exists("lima")

    # A forger who also fixes the manifest's checksum cannot sign it: refused all the same.
    forged = roots / "forged.zip"
    with zipfile.ZipFile(tampered) as source, zipfile.ZipFile(forged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "manifest.json":
                manifest = json.loads(data)
                for entry in manifest["tables"]:
                    if entry["file"] == "schema/accounts_user.csv":
                        entry["sha256"] = __import__("hashlib").sha256(source.read(entry["file"])).hexdigest()
                data = json.dumps(manifest).encode()
            target.writestr(item, data)
    with pytest.raises(ValidationError, match="not signed by this Caravan platform"):
        services.restore_archive(forged, slug="lima", actor="test")
    assert services.open_archive(forged, trust_unsigned=True).manifest["schema"] == "alpha"  # the operator's call
    assert not Agency.objects.filter(slug="lima").exists() and not schema_exists("lima")


def test_an_archive_from_another_migration_state_is_refused_clearly(alpha_export, roots):
    path = services.export_path(alpha_export)
    other = roots / "future.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(other, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "manifest.json":
                manifest = json.loads(data)
                manifest["migrations"]["schema"]["crm"].append("9999_from_the_future")
                data = json.dumps(manifest).encode()
            if item.filename == "manifest.sig":  # as if this platform had made it at another state
                data = services.sign_manifest(json.dumps(manifest)).encode()
            target.writestr(item, data)
    with pytest.raises(ValidationError, match="another migration state.*crm: archive has 9999_from_the_future"):
        services.restore_archive(other, slug="lima", actor="test")
    assert not Agency.objects.filter(slug="lima").exists() and not schema_exists("lima")
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="another migration state"):
        call_command("restore_agency", str(other), "--slug", "lima")


def test_a_refused_restore_is_explained_in_the_operators_language(alpha_export, roots):
    """The worker stores the refusal as text: in the language of the operator who asked for the restore."""
    import re

    from tenants.portability.models import AgencyRestore

    from .conftest import OPERATOR

    tampered = roots / "tampered.zip"
    with zipfile.ZipFile(services.export_path(alpha_export)) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, data + b"x" if item.filename.endswith(".csv") else data)
    with schema_context("public"):
        User.objects.filter(email=OPERATOR).update(language="zh-hans")
        job = AgencyRestore.objects.create(slug="oscar", archive=str(tampered), requested_by=OPERATOR)
        failed = services.restore_run(job.pk)
    assert failed.status == JobStatus.FAILED and re.search("[\u4e00-\u9fff]", failed.error), failed.error
    assert not schema_exists("oscar")


def test_a_restore_under_a_new_slug_beside_the_original(alpha_export, alpha, roots):
    from crm.customers.models import TravelDocument

    restored = services.restore_archive(services.export_path(alpha_export), slug="lima", actor="op@test",
                                        name="Lima copy")
    assert restored.name == "Lima copy" and restored.get_primary_domain().domain == "lima.localhost"
    assert _schema_rows("lima")["crm_customer"] == _schema_rows("alpha")["crm_customer"]
    with tenant_context(restored):
        assert User.objects.filter(email="admin@alpha.test").exists()
        for document in TravelDocument.objects.all():  # lookup hashes re-keyed for the new schema
            from crm.customers import crypto

            assert document.tail_hash == crypto.lookup_hash("tail:" + crypto.decrypt(document.number_encrypted)[-4:])
    connection.set_schema_to_public()
    agency_delete(agency=restored, confirm_slug="lima", actor="test")


def test_expired_archives_are_deleted(alpha_export):
    path = services.export_path(alpha_export)
    assert services.expire_exports() == 0 and path.exists()
    assert services.expire_exports(now=timezone.now() + timezone.timedelta(hours=49)) == 1
    alpha_export.refresh_from_db()
    assert not path.exists() and alpha_export.status == JobStatus.EXPIRED and not alpha_export.downloadable


def _public_rows_keyed_by(agency_id: int) -> dict[str, int]:
    """Every public table with a foreign key to tenants_agency: rows still naming the agency."""
    counts = {}
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT c.relname, a.attname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
            WHERE k.contype = 'f' AND n.nspname = 'public' AND k.confrelid = 'public.tenants_agency'::regclass""")
        for table, column in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM public."{table}" WHERE "{column}" = %s', [agency_id])
            counts[table] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tenants_agency WHERE id = %s", [agency_id])
        counts["tenants_agency"] = cursor.fetchone()[0]
    return counts


def test_grace_period_deletion_leaves_nothing(roots, mailbox, operator_client, page_client):
    from integrations.models import Feed, FeedRun, Supplier

    agency = agency_onboard(name="Mike", slug="mike", plan="professional", admin_email="first@mike.test").agency
    _seed(agency)
    supplier = Supplier.objects.create(code="mike-hotels", name="Hotels", kind="hotel")
    feed = Feed.objects.unscoped().create(supplier=supplier, name="Own rates", connector="ota_hotel", agency=agency)
    FeedRun.objects.unscoped().create(feed=feed, trigger="manual")
    export = _export(agency)
    with pytest.raises(ValidationError, match="Suspend the agency"):
        services.deletion_schedule(agency=agency, actor="op@test")
    response = operator_client.post("/api/operator/agencies/mike/schedule-deletion/", {}, format="json")
    assert response.status_code == 400
    agency_suspend(agency=agency, actor="op@test")
    agency = services.deletion_schedule(agency=agency, actor="op@test", note="asked by the owner")
    assert agency.status == Agency.Status.DELETION_SCHEDULED and agency.is_read_only
    from billing import services as billing

    billing.refresh(agency)  # billing's status rule never lifts a scheduled deletion
    agency.refresh_from_db()
    assert agency.status == Agency.Status.DELETION_SCHEDULED
    assert page_client("mike", None).get("/accounts/login/").status_code == 200  # staff can still sign in
    assert services.deletion_notice(agency) == 2  # every active admin
    assert {m["To"] for m in mailbox} == {"first@mike.test", "admin@mike.test"}
    assert all("http://mike.localhost:8000/settings/export/" in m.get_payload() for m in mailbox)
    services.deletion_cancel(agency=agency, actor="op@test")
    agency.refresh_from_db()
    assert agency.status == Agency.Status.SUSPENDED and agency.deletion_due_at is None
    response = operator_client.post("/api/operator/agencies/mike/schedule-deletion/", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "deletion_scheduled"

    redis = cache.client.get_client()
    assert redis.keys("mike:*")
    assert services.purge_due() == []  # not due yet
    assert any(_public_rows_keyed_by(agency.pk).values())
    later = timezone.now() + timezone.timedelta(days=31)
    assert services.purge_due(now=later) == ["mike"]
    assert not schema_exists("mike") and not any(_public_rows_keyed_by(agency.pk).values())
    assert not FeedRun.objects.unscoped().filter(feed_id=feed.pk).exists()
    assert not AgencyExport.objects.unscoped().filter(pk=export.pk).exists()
    assert not services.export_path(export).exists() and not (roots / "media" / "mike").exists()
    assert not list((roots / "exports").glob("mike-*"))
    assert not redis.keys("mike:*")  # the agency's cache entries (keys carry the schema)


def test_operators_restore_from_the_console_and_schedule_deletion(alpha_export, alpha, operator_client, page_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tenants.portability.models import AgencyRestore

    path = services.export_path(alpha_export)
    upload = SimpleUploadedFile("alpha.zip", path.read_bytes(), content_type="application/zip")
    taken = operator_client.post("/restores/", {"archive": upload, "slug": "bravo"})
    assert taken.status_code == 400 and b"already exists" in taken.content
    upload.seek(0)
    response = operator_client.post("/restores/", {"archive": upload, "slug": "november", "name": "November"})
    assert response.status_code == 302
    job = AgencyRestore.objects.get(slug="november")
    assert services.restore_run(job.pk, "November").status == JobStatus.DONE
    page = operator_client.get("/restores/")
    assert b"november" in page.content and b"hx-trigger" not in page.content
    agency = Agency.objects.get(slug="november")
    assert agency.name == "November" and not __import__("os").path.exists(job.archive)
    assert page_client("alpha", "admin").get("/restores/").status_code == 404  # console only on the platform domain

    suspended = operator_client.get("/agencies/charlie/").content  # charlie is suspended: deletion offered
    assert b'data-test="schedule-deletion"' in suspended and b"after 30 days" in suspended
    assert operator_client.post("/agencies/november/", {"action": "schedule_deletion"}).status_code == 302
    agency.refresh_from_db()
    assert agency.status != Agency.Status.DELETION_SCHEDULED  # not suspended first: refused
    agency_suspend(agency=agency, actor="op@test")
    operator_client.post("/agencies/november/", {"action": "schedule_deletion", "note": "owner asked"})
    agency.refresh_from_db()
    assert agency.status == Agency.Status.DELETION_SCHEDULED and agency.deletion_due_at > timezone.now()
    assert b"To be deleted on" in operator_client.get("/agencies/november/").content
    with pytest.raises(ValidationError):
        from tenants.services import agency_reactivate

        agency_reactivate(agency=agency, actor="op@test")
    operator_client.post("/agencies/november/", {"action": "export"})
    assert AgencyExport.objects.unscoped().filter(agency=agency, by_operator=True).exists()
    agency_delete(agency=agency, confirm_slug="november", actor="test")


def test_an_export_is_made_by_a_real_worker_in_one_snapshot(roots, alpha, committed, worker):
    """Queued on commit as platform work; the worker's own connection reads in a repeatable-read snapshot."""
    import time

    with committed():
        export = services.export_request(agency=alpha, actor="admin@alpha.test")
    try:
        for _ in range(120):
            with committed():
                export.refresh_from_db()
            if export.status in (JobStatus.DONE, JobStatus.FAILED):
                break
            time.sleep(0.5)
        assert export.status == JobStatus.DONE, export.error
        assert services.open_archive(services.export_path(export)).manifest["agency"]["slug"] == "alpha"
    finally:
        with committed():
            AgencyEvent.objects.unscoped().filter(agency=alpha, text_kind="agency_export", text_params__id=str(export.pk)).delete()
            AgencyExport.objects.unscoped().filter(pk=export.pk).delete()
