"""Document scans: upload (portal or staff), open (fenced and logged), review (accept → checklist; reject →
e-mail). Pages, the portal and any future API call these; nothing writes ``DocumentFile`` elsewhere."""
import hashlib
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.roles import Cap
from caravan import texts
from caravan.tenancy import require_agency
from caravan.texts import Text
from crm.customers import hooks as customer_hooks
from crm.customers.models import ChangeLog, Contact, Customer, TravelDocument
from crm.customers.services import DuplicateCustomer, document_add, timeline_add
from crm.pipeline.models import Task
from crm.pipeline.services import task_create, task_done
from crm.portal.selectors import visible_people, visible_trips
from crm.portal.services import brand_name, portal_settings
from crm.trips.models import ChecklistItem, Trip
from crm.trips.services import checklist_item_set_status

from . import storage
from .models import DocumentFile, DocumentFileView

# The checklist document a scan of each kind stands for (a visa is what the checklist leads to: none).
CHECKLIST_OF = {DocumentFile.Kind.PASSPORT: ChecklistItem.Document.PASSPORT,
                DocumentFile.Kind.ID_CARD: ChecklistItem.Document.ID_CARD,
                DocumentFile.Kind.PHOTO: ChecklistItem.Document.PHOTOS,
                DocumentFile.Kind.OTHER: ChecklistItem.Document.OTHER}
# The scan kinds a checklist document is uploaded as (the portal's upload buttons).
KIND_FOR = {document: kind for kind, document in CHECKLIST_OF.items()}
# The travel-document kind a number typed with the scan is kept as.
TRAVEL_KIND = {DocumentFile.Kind.PASSPORT: TravelDocument.Kind.PASSPORT,
               DocumentFile.Kind.ID_CARD: TravelDocument.Kind.NATIONAL_ID,
               DocumentFile.Kind.VISA: TravelDocument.Kind.VISA}
REVIEW_WITHIN = timedelta(hours=24)


def max_bytes() -> int:
    return settings.PORTAL_UPLOAD_MAX_BYTES


def trip_people(trip: Trip) -> list[Customer]:
    """The people a trip's documents are for: its travelers, else its buyer when a person."""
    people = [t.customer for t in trip.travelers.select_related("customer").order_by("-is_lead", "id")]
    if not people and trip.customer.kind == Customer.Kind.PERSON:
        people = [trip.customer]
    return people


def _check_uploader(*, actor, uploader, person, trip):
    if (actor is None) == (uploader is None):
        raise ValueError("file_upload: give the staff actor or the portal uploader, not both")
    if actor is not None:
        if not (actor.can(Cap.DOCUMENTS_VIEW) and actor.can(Cap.CUSTOMERS_EDIT)):
            raise PermissionDenied
        return
    # A customer acts for the people the portal lets them see, on the trips they may see.
    if not visible_people(uploader).filter(pk=person.pk).exists():
        raise ValidationError({"person": [_("Choose one of the travelers you look after.")]})
    if trip is not None:
        if not visible_trips(uploader).filter(pk=trip.pk).exists():
            raise PermissionDenied
        if person.pk not in {p.pk for p in trip_people(trip)}:
            raise ValidationError({"person": [_("This person is not traveling on this trip.")]})


def check_bytes(data: bytes) -> str:
    """The sniffed content type of an upload, or a field error (``file``): empty, too big, not a scan."""
    if not data:
        raise ValidationError({"file": [_("Choose a photo or a PDF of the document.")]})
    if len(data) > max_bytes():
        raise ValidationError({"file": [_("The file is larger than %(mb)s MB. Take a photo at a lower resolution, or "
                                          "scan it as a smaller PDF.") % {"mb": max_bytes() // (1024 * 1024)}]})
    content_type = storage.sniff(data)
    if content_type is None:
        raise ValidationError({"file": [_("This is not a photo or a PDF we can take: upload a JPEG, PNG, HEIC, WebP "
                                          "or PDF file.")]})
    return content_type


def file_upload(*, actor: User | None = None, uploader: Customer | None = None, person: Customer, kind: str,
                data: bytes, trip: Trip | None = None, number: str = "", expires_on=None,
                issuing_country: str = "") -> DocumentFile:
    """Store a scan of ``person``'s document, encrypted, for review. From the portal (``uploader``, the
    signed-in customer, who must act for ``person``) or from staff (``actor``). For a passport, ID card or
    visa a typed ``number`` (and ``expires_on``) is kept as the card's travel document (``document_add``,
    via the portal). The file is written first, then the rows in one transaction; on any error the file goes."""
    _check_uploader(actor=actor, uploader=uploader, person=person, trip=trip)
    if kind not in DocumentFile.Kind.values:
        raise ValidationError({"kind": [_("Choose the kind of document.")]})
    content_type = check_bytes(data)
    number = (number or "").strip()
    if number and kind not in TRAVEL_KIND:
        number = ""
    if expires_on and not number and kind in TRAVEL_KIND:
        raise ValidationError({"number": [_("Type the document number too, or leave the expiry date empty.")]})
    key = storage.current_key()
    name = uuid.uuid4().hex
    stored = storage.write(name, data, key)
    try:
        with transaction.atomic():
            travel_document = None
            if number:
                travel_document = _travel_document(actor=actor, person=person, kind=kind, number=number,
                                                   expires_on=expires_on, issuing_country=issuing_country)
            file = DocumentFile.objects.create(
                customer=person, trip=trip, kind=kind, travel_document=travel_document, storage_name=name, key=key,
                content_type=content_type, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                uploaded_by_customer=uploader, uploaded_by=actor)
            if actor is not None:
                _accept(actor=actor, file=file)
            else:
                _tell_staff(file)
    except BaseException:
        storage.delete(stored)
        raise
    return file


def _travel_document(*, actor, person, kind, number, expires_on, issuing_country) -> TravelDocument:
    via = ChangeLog.Via.PAGE if actor is not None else ChangeLog.Via.PORTAL
    try:
        return document_add(actor=actor, customer=person, kind=TRAVEL_KIND[kind], number=number, via=via,
                            issuing_country=(issuing_country or "CN"), expires_on=expires_on)
    except DuplicateCustomer as duplicate:
        mine = [c for c, _reason in duplicate.matches if c.pk == person.pk]
        if mine:  # the same number already on this person's card: the scan backs that row
            from crm.customers import crypto

            number_hash = crypto.lookup_hash(
                f"{TRAVEL_KIND[kind]}:{(issuing_country or 'CN').upper()}:{crypto.normalise_number(number)}")
            found = TravelDocument.objects.filter(customer=person, number_hash=number_hash).first()
            if found is not None:
                return found
        raise ValidationError({"number": [_("This document number is already on file. Upload the scan without the "
                                            "number, or ask your travel consultant.")]})


def _tell_staff(file: DocumentFile) -> None:
    """After a portal upload: the timeline entry and the owner's task to verify it (one per file)."""
    person, trip = file.customer, file.trip
    timeline_add(actor=None, customer=person, channel=Contact.Channel.PORTAL, direction=Contact.Direction.INBOUND,
                 summary=Text("document_uploaded", kind=file.kind, name=person.name))
    owner = (trip.owner if trip is not None and trip.owner_id else None) or person.owner
    if owner is None and file.uploaded_by_customer_id:
        owner = file.uploaded_by_customer.owner
    task_create(actor=None, title="", text=texts.store("document_to_verify", kind=file.kind, name=person.name),
                owner=owner, due_at=timezone.now() + REVIEW_WITHIN, customer=person, trip=trip,
                key=f"document-file:{file.pk}")


def file_open(*, file: DocumentFile, actor: User | None = None, customer: Customer | None = None,
              via: str = customer_hooks.SeenVia.PAGE) -> bytes:
    """The plaintext of a scan, each view recorded. Staff need ``Cap.DOCUMENTS_REVEAL`` (and it goes into the
    access log like a reveal); a customer in the portal sees the scans of the people they act for."""
    if (actor is None) == (customer is None):
        raise ValueError("file_open: give the staff actor or the portal customer")
    if actor is not None:
        if not actor.can(Cap.DOCUMENTS_REVEAL):
            raise PermissionDenied
        DocumentFileView.objects.create(file=file, user=actor, via=via)
        customer_hooks.customer_data_seen(user=actor, customer_id=file.customer_id,
                                          what=customer_hooks.Seen.DOCUMENT_FILE, via=via,
                                          detail=f"{file.kind} #{file.pk}")
    else:
        if not visible_people(customer).filter(pk=file.customer_id).exists():
            raise PermissionDenied
        DocumentFileView.objects.create(file=file, customer=customer, via="portal")
    data = storage.read(file)
    if hashlib.sha256(data).hexdigest() != file.sha256:
        raise ValueError(f"document file {file.pk}: the decrypted bytes do not match their checksum")
    return data


@transaction.atomic
def file_review(*, actor: User, file: DocumentFile, accept: bool, reason: str = "") -> DocumentFile:
    """Staff accept a scan (the trip's checklist item for that traveler and document becomes received) or
    reject it with a reason (the customer is e-mailed the reason and asked for a new upload)."""
    if not actor.can(Cap.DOCUMENTS_REVEAL):
        raise PermissionDenied
    file = DocumentFile.objects.select_for_update(of=("self",)).select_related("customer", "trip").get(pk=file.pk)
    if file.status != DocumentFile.Status.PENDING:
        raise ValidationError({"status": [_("This document was already reviewed.")]})
    reason = (reason or "").strip()
    if accept:
        _accept(actor=actor, file=file)
    else:
        if not reason:
            raise ValidationError({"reason": [_("Say why, so the customer knows what to send instead.")]})
        file.status, file.reason = DocumentFile.Status.REJECTED, reason[:300]
        file.reviewed_by, file.reviewed_at = actor, timezone.now()
        file.save(update_fields=["status", "reason", "reviewed_by", "reviewed_at"])
        timeline_add(actor=actor, customer=file.customer, channel=Contact.Channel.PORTAL,
                     direction=Contact.Direction.OUTBOUND,
                     summary=Text("document_rejected", kind=file.kind, name=file.customer.name, reason=file.reason))
        transaction.on_commit(lambda: _mail_rejection(file))
    task = Task.objects.filter(key=f"document-file:{file.pk}", done_at__isnull=True).first()
    if task is not None:
        task_done(actor=actor, task=task)
    return file


def _accept(*, actor: User, file: DocumentFile) -> None:
    file.status, file.reason = DocumentFile.Status.ACCEPTED, ""
    file.reviewed_by, file.reviewed_at = actor, timezone.now()
    file.save(update_fields=["status", "reason", "reviewed_by", "reviewed_at"])
    document = CHECKLIST_OF.get(file.kind)
    if file.trip_id is None or document is None:
        return
    items = ChecklistItem.objects.filter(traveler__trip_id=file.trip_id, traveler__customer_id=file.customer_id,
                                         document=document, status=ChecklistItem.Status.REQUIRED)
    for item in items:
        checklist_item_set_status(actor=actor, item=item, status=ChecklistItem.Status.RECEIVED)


def _mail_rejection(file: DocumentFile) -> None:
    """The reason, and the link to upload again, to the one who uploaded it (else the person)."""
    recipient = file.uploaded_by_customer or file.customer
    address = recipient.emails.values_list("address", flat=True).first()
    if not address:
        return
    agency, row = require_agency(), portal_settings()
    url = (agency.url(reverse("portal:document_upload", args=[file.trip_id])) + f"?person={file.customer_id}"
           f"&kind={file.kind}") if file.trip_id else agency.url(reverse("portal:home"))
    with translation.override(recipient.language or agency.language), timezone.override(agency.time_zone):
        context = {"recipient": recipient, "file": file, "person": file.customer, "trip": file.trip, "url": url,
                   "brand": brand_name(row), "portal": row, "kind": file.get_kind_display()}
        subject = render_to_string("portal/documents/email/rejected_subject.txt", context).strip()
        body = render_to_string("portal/documents/email/rejected.txt", context)
    EmailMultiAlternatives(subject, body, None, [address],
                           reply_to=[row.contact_email] if row.contact_email else None).send()
