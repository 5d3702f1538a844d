"""Reads of document scans: a trip's or a customer's files, the review queue, the passport warnings and what
a portal customer still owes for a trip."""
from django.db.models import QuerySet

from crm.customers.models import Customer, TravelDocument
from crm.customers.services import document_expiry
from crm.trips.models import ChecklistItem, Trip

from .models import DocumentFile
from .services import KIND_FOR, trip_people


def files_for_trip(trip: Trip) -> QuerySet:
    return DocumentFile.objects.filter(trip=trip).select_related("customer", "reviewed_by")


def files_for_customer(customer: Customer) -> QuerySet:
    return DocumentFile.objects.filter(customer=customer).select_related("trip", "reviewed_by")


def review_queue(*, owner=None) -> QuerySet:
    """Scans waiting for review, newest first; with ``owner``, those of trips (else customers) they own."""
    files = (DocumentFile.objects.filter(status=DocumentFile.Status.PENDING)
             .select_related("customer", "trip", "trip__owner", "uploaded_by_customer").order_by("-uploaded_at", "-id"))
    if owner is not None:
        from django.db.models import Q

        files = files.filter(Q(trip__owner=owner) | Q(trip__isnull=True, customer__owner=owner))
    return files


def passport_warnings(trip: Trip, people: list[Customer] | None = None) -> list[dict]:
    """The travelers whose passport expires within six months of the trip's return (or has no passport on
    file expiring after it): ``{"person", "document", "state": "expired" | "expiring"}``. Only the passport
    that lasts longest counts, so a renewed passport ends the warning."""
    on = trip.return_on or trip.depart_on
    if on is None:
        return []
    people = trip_people(trip) if people is None else people
    passports = {}
    for document in TravelDocument.objects.filter(customer__in=people, kind=TravelDocument.Kind.PASSPORT,
                                                  expires_on__isnull=False).order_by("expires_on"):
        passports[document.customer_id] = document  # the one lasting longest wins
    warnings = []
    for person in people:
        document = passports.get(person.pk)
        state = document_expiry(document, on=on) if document is not None else ""
        if state:
            warnings.append({"person": person, "document": document, "state": state})
    return warnings


def needed_for(trip: Trip, people: list[Customer]) -> list[dict]:
    """For each person: the trip's visa checklist items and the latest scan of each kind uploaded for this trip,
    ``{"person", "items": [{"item", "kind", "file"}], "files": [...]}``."""
    ids = [p.pk for p in people]
    items = (ChecklistItem.objects.filter(traveler__trip=trip, traveler__customer_id__in=ids)
             .exclude(status=ChecklistItem.Status.WAIVED).select_related("traveler").order_by("id"))
    files = list(DocumentFile.objects.filter(trip=trip, customer_id__in=ids).order_by("-uploaded_at", "-id"))
    latest = {}
    for file in files:
        latest.setdefault((file.customer_id, file.kind), file)
    rows = []
    for person in people:
        lines = []
        for item in items:
            if item.traveler.customer_id != person.pk:
                continue
            kind = KIND_FOR.get(item.document, DocumentFile.Kind.OTHER)
            lines.append({"item": item, "kind": kind, "file": latest.get((person.pk, kind))})
        rows.append({"person": person, "items": lines, "files": [f for f in files if f.customer_id == person.pk]})
    return rows


def still_needed(trip: Trip, people: list[Customer]) -> tuple[int, int]:
    """(checklist items still required with no scan waiting or accepted, scans whose latest was rejected)."""
    missing = rejected = 0
    for row in needed_for(trip, people):
        for line in row["items"]:
            file = line["file"]
            if line["item"].status != ChecklistItem.Status.REQUIRED:
                continue
            if file is None:
                missing += 1
            elif file.status == DocumentFile.Status.REJECTED:
                rejected += 1
    return missing, rejected
