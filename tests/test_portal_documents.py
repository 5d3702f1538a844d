"""Document scans (issue 21, crm.documents): a customer uploads a passport, ID or visa scan in the portal from
the phone; the file is sniffed, size-limited and stored encrypted with the agency's own data key under its
schema's folder; staff who may reveal documents view it (logged), accept it (the visa checklist) or reject it
with a reason (an e-mail); a passport expiring within six months of the return warns both sides; every route
refuses another customer's ids, another agency's host, no session and roles without the capability."""
import io
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.files.storage import storages
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context
from PIL import Image

from crm.customers import crypto
from crm.customers.models import ChangeLog, Contact, TravelDocument
from crm.customers.services import document_add
from crm.documents import services, storage
from crm.documents.models import DataKey, DocumentFile, DocumentFileView
from crm.pipeline.models import Task
from crm.privacy.models import AccessEntry
from crm.trips import services as trips
from crm.trips.models import ChecklistItem

from .conftest import host
from .portal_helpers import confirmed_trip, person, portal_client, subject_of, text_of

pytestmark = pytest.mark.django_db(transaction=False)

MARKER = b"CARAVAN-PASSPORT-MARKER-E12345678"


def jpeg() -> bytes:
    """A real JPEG, as a phone's camera would send (small)."""
    out = io.BytesIO()
    Image.new("RGB", (64, 40), (30, 90, 160)).save(out, "JPEG")
    return out.getvalue()


def pdf() -> bytes:
    """A minimal real PDF whose text carries a marker that must never be on disk in the clear."""
    body = b"BT /F1 12 Tf 10 10 Td (" + MARKER + b") Tj ET"
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 50]/Contents 4 0 R>>endobj\n"
            b"4 0 obj<</Length " + str(len(body)).encode() + b">>stream\n" + body + b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    """Scans go to a temporary MEDIA_ROOT (django-tenants' storage caches the root it derived: drop it)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    storages["default"].__dict__.pop("relative_media_root", None)
    yield
    storages["default"].__dict__.pop("relative_media_root", None)


@pytest.fixture
def visa_trip(alpha):
    """Wang Fang's visa trip (with its default checklist), and Li Lei, another customer of the same agency."""
    suffix = uuid.uuid4().hex[:8]
    with tenant_context(alpha):
        wang = person("王芳", f"wang.{suffix}@example.cn", language="zh-hans")
        trip = confirmed_trip(wang, title="京都红叶")
        trip = trips.trip_update(actor=None, trip=trip, needs_visa=True)
        li = person("Li Lei", f"li.{suffix}@example.cn")
        li_trip = confirmed_trip(li, title="Hokkaido")
    connection.set_schema_to_public()
    return {"wang": wang, "trip": trip, "li": li, "li_trip": li_trip}


def _upload(client, trip, person_row, data, *, kind="passport", name="scan.jpg", **fields):
    upload = io.BytesIO(data)
    upload.name = name
    return client.post(f"/portal/trips/{trip.pk}/documents/upload/",
                       {"person": person_row.pk, "kind": kind, "file": upload, **fields})


def _disk(settings, agency) -> list[Path]:
    return sorted((Path(settings.MEDIA_ROOT) / agency.schema_name / "documents").glob("*"))


def test_a_customer_uploads_a_passport_scan_stored_encrypted_in_the_agencys_folder(alpha, visa_trip, settings):
    wang, trip = visa_trip["wang"], visa_trip["trip"]
    client = portal_client(alpha, wang)
    page = client.get(f"/portal/trips/{trip.pk}/documents/upload/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'accept="image/*,application/pdf"' in html and 'capture="environment"' in html
    expires = trip.return_on + timedelta(days=2000)
    response = _upload(client, trip, wang, jpeg(), number="E 1234 5678", expires_on=expires.isoformat(),
                       issuing_country="cn")
    assert response.status_code == 302 and response["Location"].endswith(f"/portal/trips/{trip.pk}/#documents")
    files = _disk(settings, alpha)
    assert len(files) == 1 and files[0].suffix == ".bin"
    assert files[0].parent == Path(settings.MEDIA_ROOT) / "alpha" / "documents"  # the agency's schema folder
    on_disk = files[0].read_bytes()
    assert not on_disk.startswith(b"\xff\xd8\xff") and b"JFIF" not in on_disk  # not the JPEG in the clear
    with tenant_context(alpha):
        file = DocumentFile.objects.get()
        assert file.storage_name == files[0].stem and file.customer_id == wang.pk and file.trip_id == trip.pk
        assert (file.content_type, file.status, file.uploaded_by_customer_id) == ("image/jpeg", "pending", wang.pk)
        assert len(files[0].stem) == 32 and int(files[0].stem, 16) >= 0  # a random uuid: nothing of the customer
        # The typed number became the card's travel document, encrypted like any other, marked as the customer's.
        document = file.travel_document
        assert document.kind == TravelDocument.Kind.PASSPORT and document.masked == "E1234****"
        assert document.expires_on == expires and "E12345678" not in document.number_encrypted
        assert ChangeLog.objects.filter(customer=wang, field="documents", via=ChangeLog.Via.PORTAL).exists()
        # Staff see it: a timeline entry and a task "Document to verify" for the trip's owner, one per file.
        contact = Contact.objects.get(customer=wang, channel=Contact.Channel.PORTAL)
        assert contact.direction == Contact.Direction.INBOUND and "王芳" in contact.display_summary
        task = Task.objects.get(key=f"document-file:{file.pk}")
        assert task.trip_id == trip.pk and task.owner_id == trip.owner_id and "王芳" in task.display_title
        # The key that opens it is the agency's own data key, kept wrapped with DOCUMENT_KEYS.
        key = DataKey.objects.get()
        raw = crypto.decrypt(key.wrapped).encode()
        assert raw not in key.wrapped.encode() and raw not in on_disk
        assert Fernet(raw).decrypt(on_disk) == jpeg()
        assert services.file_open(file=file, customer=wang) == jpeg()
    connection.set_schema_to_public()
    trip_page = client.get(f"/portal/trips/{trip.pk}/").content.decode()
    assert "Documents we need" in trip_page or "所需材料" in trip_page
    shown = client.get(f"/portal/trips/{trip.pk}/documents/{file.pk}/file/")
    assert shown.status_code == 200 and shown.content == jpeg() and shown["Content-Type"] == "image/jpeg"
    assert shown["Content-Disposition"].startswith("inline") and shown["Cache-Control"] == "private, no-store"
    assert shown["X-Content-Type-Options"] == "nosniff"


def test_a_pdf_marker_never_reaches_the_disk_in_the_clear(alpha, visa_trip, settings):
    wang, trip = visa_trip["wang"], visa_trip["trip"]
    client = portal_client(alpha, wang)
    assert _upload(client, trip, wang, pdf(), kind="visa", name="visa.pdf").status_code == 302
    [stored] = _disk(settings, alpha)
    assert MARKER not in stored.read_bytes() and b"%PDF" not in stored.read_bytes()
    with tenant_context(alpha):
        file = DocumentFile.objects.get()
        assert file.content_type == "application/pdf" and file.size == len(pdf())
        assert MARKER in services.file_open(file=file, customer=wang)


@pytest.mark.parametrize("data, name", [
    (b"<!doctype html><html><script>alert(1)</script></html>", "passport.jpg"),
    (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64, "passport.jpg"),
    (b"GIF89a\x01\x00\x01\x00", "passport.png"),
    (b"", "empty.jpg"),
], ids=["html-renamed-jpg", "exe-renamed-jpg", "gif", "empty"])
def test_anything_but_a_photo_or_pdf_is_refused_whatever_its_name(alpha, visa_trip, settings, data, name):
    wang, trip = visa_trip["wang"], visa_trip["trip"]
    client = portal_client(alpha, wang)
    response = _upload(client, trip, wang, data, name=name)
    assert response.status_code == 400
    assert 'data-field="file"' in response.content.decode()
    assert _disk(settings, alpha) == []
    with tenant_context(alpha):
        assert not DocumentFile.objects.exists()


def test_a_file_past_the_limit_is_refused_and_nothing_is_half_written(alpha, visa_trip, settings):
    wang, trip = visa_trip["wang"], visa_trip["trip"]
    settings.PORTAL_UPLOAD_MAX_BYTES = 300
    client = portal_client(alpha, wang)
    response = _upload(client, trip, wang, jpeg() + b"\x00" * 400)
    assert response.status_code == 400 and 'data-field="file"' in response.content.decode()
    settings.PORTAL_UPLOAD_MAX_BYTES = 10 * 1024 * 1024
    # A number already on someone else's card: a field error after the file was written — the file goes too.
    with tenant_context(alpha):
        document_add(actor=None, customer=visa_trip["li"], kind="passport", issuing_country="CN", number="E99887766",
                     via=ChangeLog.Via.PAGE)
    connection.set_schema_to_public()
    response = _upload(client, trip, wang, jpeg(), number="E99887766", issuing_country="CN")
    assert response.status_code == 400 and 'data-field="number"' in response.content.decode()
    assert _disk(settings, alpha) == []
    with tenant_context(alpha):
        assert not DocumentFile.objects.exists()


def _uploaded(alpha, visa_trip, data=None, kind="passport"):
    with tenant_context(alpha):
        file = services.file_upload(uploader=visa_trip["wang"], person=visa_trip["wang"], kind=kind,
                                    data=data or jpeg(), trip=visa_trip["trip"])
    connection.set_schema_to_public()
    return file


def test_staff_view_a_scan_only_with_the_reveal_capability_and_every_view_is_logged(alpha, bravo, visa_trip, page_client):
    file = _uploaded(alpha, visa_trip)
    sales = page_client("alpha", "sales")
    response = sales.get(f"/document-files/{file.pk}/file/")
    assert response.status_code == 200 and response.content == jpeg()
    assert response["Cache-Control"] == "private, no-store" and response["X-Content-Type-Options"] == "nosniff"
    with tenant_context(alpha):
        entry = AccessEntry.objects.get(what="document_file")
        assert entry.customer_id == visa_trip["wang"].pk and entry.user.email == "sales@alpha.test"
        assert DocumentFileView.objects.filter(file_id=file.pk, user__email="sales@alpha.test").count() == 1
    connection.set_schema_to_public()
    for role in ("finance", "call_center"):  # no documents capability: nothing about scans
        client = page_client("alpha", role)
        assert client.get(f"/document-files/{file.pk}/file/").status_code == 403
        assert client.get("/documents/review/").status_code == 403
        assert client.get(f"/trips/{visa_trip['trip'].pk}/document-files/").status_code == 403
        assert client.get(f"/customers/{visa_trip['wang'].pk}/document-files/").status_code == 403
        assert client.post(f"/document-files/{file.pk}/review/", {"decision": "accept"}).status_code == 403
    # Another agency's staff on alpha's ids: nothing there.
    other = page_client("bravo", "admin")
    assert other.get(f"/document-files/{file.pk}/file/").status_code == 404
    assert other.post(f"/document-files/{file.pk}/review/", {"decision": "accept"}).status_code == 404
    # Alpha's staff session is no key to bravo's host.
    assert page_client("alpha", "sales", on=host("bravo")).get(f"/document-files/{file.pk}/file/").status_code in (302, 403, 404)
    # Anonymous: the sign-in page.
    assert page_client("alpha").get(f"/document-files/{file.pk}/file/").status_code == 302
    # The queue and the boxes list it for sales.
    queue = sales.get("/documents/review/").content.decode()
    assert visa_trip["wang"].name in queue and f"/document-files/{file.pk}/review/" in queue
    box = sales.get(f"/trips/{visa_trip['trip'].pk}/document-files/").content.decode()
    assert f"/document-files/{file.pk}/file/" in box
    assert f"/document-files/{file.pk}/file/" in sales.get(f"/customers/{visa_trip['wang'].pk}/document-files/").content.decode()


def test_accepting_marks_the_travelers_checklist_item_received(alpha, visa_trip, page_client):
    file = _uploaded(alpha, visa_trip)
    sales = page_client("alpha", "sales")
    trip_url = f"/trips/{visa_trip['trip'].pk}/"
    response = sales.post(f"/document-files/{file.pk}/review/", {"decision": "accept", "next": trip_url})
    assert response.status_code == 302 and response["Location"] == trip_url
    with tenant_context(alpha):
        file.refresh_from_db()
        assert file.status == "accepted" and file.reviewed_by.email == "sales@alpha.test"
        item = ChecklistItem.objects.get(traveler__trip=visa_trip["trip"], document=ChecklistItem.Document.PASSPORT)
        assert item.status == ChecklistItem.Status.RECEIVED and item.received_at is not None
        assert Task.objects.get(key=f"document-file:{file.pk}").done_at is not None
    connection.set_schema_to_public()
    # Reviewed once: a second decision is refused.
    sales.post(f"/document-files/{file.pk}/review/", {"decision": "reject", "reason": "late"})
    with tenant_context(alpha):
        file.refresh_from_db()
        assert file.status == "accepted"


def test_rejecting_needs_a_reason_and_emails_it_to_the_customer(alpha, visa_trip, page_client, mailbox,
                                                                 django_capture_on_commit_callbacks):
    file = _uploaded(alpha, visa_trip)
    sales = page_client("alpha", "sales")
    sales.post(f"/document-files/{file.pk}/review/", {"decision": "reject", "reason": "  "})
    with tenant_context(alpha):
        file.refresh_from_db()
        assert file.status == "pending"
    connection.set_schema_to_public()
    with django_capture_on_commit_callbacks(execute=True):
        sales.post(f"/document-files/{file.pk}/review/", {"decision": "reject", "reason": "照片模糊，请重新拍摄"})
    with tenant_context(alpha):
        file.refresh_from_db()
        assert (file.status, file.reason) == ("rejected", "照片模糊，请重新拍摄")
        assert ChecklistItem.objects.get(traveler__trip=visa_trip["trip"], document="passport").status == "required"
        address = visa_trip["wang"].emails.first().address
    connection.set_schema_to_public()
    assert len(mailbox) == 1 and mailbox[0]["To"] == address
    body = text_of(mailbox[0])
    assert "照片模糊，请重新拍摄" in body and f"/portal/trips/{visa_trip['trip'].pk}/documents/upload/" in body
    assert "护照" in subject_of(mailbox[0]) or "Passport" in subject_of(mailbox[0])
    # The customer sees the reason on the trip and a notice on the home page.
    client = portal_client(alpha, visa_trip["wang"])
    assert "照片模糊，请重新拍摄" in client.get(f"/portal/trips/{visa_trip['trip'].pk}/").content.decode()
    home = client.get("/portal/").content.decode()
    assert f"/portal/trips/{visa_trip['trip'].pk}/#documents" in home


def test_a_passport_expiring_within_six_months_of_the_return_warns_both_sides(alpha, visa_trip, page_client):
    wang, trip = visa_trip["wang"], visa_trip["trip"]
    with tenant_context(alpha):
        document_add(actor=None, customer=wang, kind="passport", issuing_country="CN", number="E55554444",
                     via=ChangeLog.Via.PAGE, expires_on=trip.return_on + timedelta(days=40))
    connection.set_schema_to_public()
    client = portal_client(alpha, wang)
    for url in (f"/portal/trips/{trip.pk}/", f"/portal/trips/{trip.pk}/documents/upload/"):
        html = client.get(url).content.decode()
        assert "warnbox" in html and ("six months" in html or "六个月" in html), url
    box = page_client("alpha", "sales").get(f"/trips/{trip.pk}/document-files/").content.decode()
    assert 'data-test="passport-warning"' in box and wang.name in box
    # A renewed passport lasting long enough ends the warning on both sides.
    with tenant_context(alpha):
        document_add(actor=None, customer=wang, kind="passport", issuing_country="CN", number="E66667777",
                     via=ChangeLog.Via.PAGE, expires_on=trip.return_on + timedelta(days=3650))
    connection.set_schema_to_public()
    assert "warnbox" not in client.get(f"/portal/trips/{trip.pk}/").content.decode()
    assert 'data-test="passport-warning"' not in page_client("alpha", "sales").get(
        f"/trips/{trip.pk}/document-files/").content.decode()


def test_portal_routes_refuse_another_customers_ids_another_agencys_host_and_no_session(alpha, visa_trip, settings):
    file = _uploaded(alpha, visa_trip)
    trip, li_trip = visa_trip["trip"], visa_trip["li_trip"]
    li = portal_client(alpha, visa_trip["li"])
    assert li.get(f"/portal/trips/{trip.pk}/documents/upload/").status_code == 404
    assert _upload(li, trip, visa_trip["wang"], jpeg()).status_code == 404
    assert li.get(f"/portal/trips/{trip.pk}/documents/{file.pk}/file/").status_code == 404
    assert li.get(f"/portal/trips/{li_trip.pk}/documents/{file.pk}/file/").status_code == 404  # own trip, not own file
    # Li uploading on their own trip but for Wang: Wang is not one of Li's people.
    response = _upload(li, li_trip, visa_trip["wang"], jpeg())
    assert response.status_code == 400 and 'data-field="person"' in response.content.decode()
    # Wang's portal cookie on bravo's host opens nothing there.
    wang = portal_client(alpha, visa_trip["wang"])
    away = Client(HTTP_HOST=host("bravo"))
    away.cookies = wang.cookies
    assert away.get(f"/portal/trips/{trip.pk}/documents/{file.pk}/file/").status_code in (302, 404)
    assert away.get(f"/portal/trips/{trip.pk}/documents/upload/").status_code in (302, 404)
    # No portal session: to the sign-in page.
    anonymous = Client(HTTP_HOST=host("alpha"))
    for url in (f"/portal/trips/{trip.pk}/documents/upload/", f"/portal/trips/{trip.pk}/documents/{file.pk}/file/"):
        response = anonymous.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/portal/sign-in/")
    assert len(_disk(settings, alpha)) == 1  # nothing more written by the refused tries
    with tenant_context(alpha):
        assert DocumentFileView.objects.filter(file_id=file.pk).count() == 0


def test_key_rotation_keeps_every_scan_readable(alpha, visa_trip, settings, django_capture_on_commit_callbacks):
    file = _uploaded(alpha, visa_trip, data=pdf(), kind="visa")
    old_keys = settings.DOCUMENT_KEYS
    new_master = Fernet.generate_key().decode()
    settings.DOCUMENT_KEYS = f"{new_master},{old_keys}"
    call_command("rotate_document_keys", stdout=io.StringIO())
    settings.DOCUMENT_KEYS = new_master  # the old master keys are gone: the re-wrapped data key still opens the file
    with tenant_context(alpha):
        file.refresh_from_db()
        assert services.file_open(file=file, customer=visa_trip["wang"]) == pdf()
        # A new data key: every file re-encrypted with it, the old file removed once committed.
        old_path = Path(settings.MEDIA_ROOT) / "alpha" / file.path
        with django_capture_on_commit_callbacks(execute=True):
            out = io.StringIO()
            call_command("rekey_document_scans", agency="alpha", stdout=out)
            assert "alpha: 1 document scans re-encrypted" in out.getvalue()
        file.refresh_from_db()
        assert not old_path.exists() and DataKey.objects.filter(retired_at__isnull=True).get() == file.key
        assert services.file_open(file=file, customer=visa_trip["wang"]) == pdf()
    connection.set_schema_to_public()


def test_the_trip_page_and_the_card_load_the_scans_box_for_roles_that_see_documents(alpha, visa_trip, page_client):
    trip, wang = visa_trip["trip"], visa_trip["wang"]
    sales, finance = page_client("alpha", "sales"), page_client("alpha", "finance")
    assert f'hx-get="/trips/{trip.pk}/document-files/"' in sales.get(f"/trips/{trip.pk}/").content.decode()
    assert f'hx-get="/customers/{wang.pk}/document-files/"' in sales.get(f"/customers/{wang.pk}/").content.decode()
    assert "document-files/" not in finance.get(f"/trips/{trip.pk}/").content.decode()  # finance sees the trip only
    # The card's box is empty until a scan exists; the review queue filters by owner.
    assert sales.get(f"/customers/{wang.pk}/document-files/").content.decode().strip() == ""
    file = _uploaded(alpha, visa_trip)
    assert f"/document-files/{file.pk}/file/" in sales.get(f"/customers/{wang.pk}/document-files/").content.decode()
    mine = page_client("alpha", "service").get("/documents/review/?mine=1").content.decode()
    assert f"/document-files/{file.pk}/review/" not in mine  # not the service agent's trip


def test_the_home_page_counts_the_documents_still_needed(alpha, visa_trip):
    client = portal_client(alpha, visa_trip["wang"])
    home = client.get("/portal/").content.decode()
    assert f"/portal/trips/{visa_trip['trip'].pk}/#documents" in home and ("still needed" in home or "还需要" in home)
    # Li, on a trip without a visa, is asked for nothing.
    assert "#documents" not in portal_client(alpha, visa_trip["li"]).get("/portal/").content.decode()


def test_erasing_the_customer_deletes_their_scans_and_files(alpha, visa_trip, settings, django_capture_on_commit_callbacks):
    from crm.retention.services import customer_erase

    from .conftest import staff

    _uploaded(alpha, visa_trip)
    assert len(_disk(settings, alpha)) == 1
    wang = visa_trip["wang"]
    with tenant_context(alpha):
        with django_capture_on_commit_callbacks(execute=True):
            customer_erase(actor=staff(alpha, "admin"), customer=wang, reason="request", confirm=str(wang.pk),
                           via="page")
        assert not DocumentFile.objects.filter(customer=wang).exists()
    connection.set_schema_to_public()
    assert _disk(settings, alpha) == []
