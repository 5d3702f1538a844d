"""Reads for proposals: which trips a customer may see at all, and a proposal as the pages show it."""
from datetime import date
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, QuerySet

from crm.customers.models import Customer
from crm.portal.selectors import booked_companies
from crm.trips.models import ItineraryItem, Trip

from .models import Proposal


def shown_q() -> Q:
    """A ``Q`` on ``Trip``: the customer may see this trip — it is past the quote, or a proposal of it was
    sent (a quote staff are still drafting shows nowhere in the portal)."""
    return ~Q(status=Trip.Status.QUOTE) | Q(Exists(Proposal.objects.filter(trip=OuterRef("pk"))))


def latest(trip: Trip) -> Proposal | None:
    """The trip's latest sent version, with its acceptance if any."""
    return (Proposal.objects.filter(trip=trip).select_related("acceptance", "acceptance__customer", "sent_by")
            .order_by("-version").first())


def accepted_deposits(trip_ids) -> dict:
    """``{trip id: deposit}`` of the trips whose latest version was accepted (the payment schedules of many trips
    at once: the portal's home page). The latest version is the open one: sending supersedes the others."""
    rows = (Proposal.objects.filter(trip_id__in=trip_ids, superseded_at__isnull=True, acceptance__isnull=False)
            .values_list("trip_id", "snapshot__deposit"))
    return {trip_id: Decimal(deposit) for trip_id, deposit in rows}


def versions(trip: Trip) -> QuerySet:
    return (Proposal.objects.filter(trip=trip)
            .select_related("acceptance", "acceptance__customer", "sent_by", "recipient").order_by("-version"))


def waiting(trips: QuerySet) -> QuerySet:
    """Open, unaccepted proposals of quotes among ``trips``: what the customer still has to read."""
    return (Proposal.objects.filter(trip__in=trips, trip__status=Trip.Status.QUOTE, superseded_at__isnull=True,
                                    acceptance__isnull=True).select_related("trip").order_by("-sent_at"))


def may_accept(customer: Customer, proposal: Proposal) -> bool:
    """Who may accept for the trip: its buyer, the person it was sent to, or a booker of the buying account
    (a fellow traveler reads it, and does not sign for whoever pays)."""
    trip = proposal.trip
    return (trip.customer_id == customer.pk or proposal.recipient_id == customer.pk
            or booked_companies(customer).filter(company_id=trip.customer_id).exists())


def _day(value):
    return date.fromisoformat(value) if value else None


def shown(proposal: Proposal) -> dict:
    """The snapshot as templates read it: dates as dates, amounts as ``Decimal``, kinds' labels, the balance."""
    snap = proposal.snapshot
    kinds = dict(ItineraryItem.Kind.choices)
    total, deposit = Decimal(snap["total"]), Decimal(snap["deposit"])
    items = [{**item, "kind_label": kinds.get(item["kind"], item["kind"]), "sell": Decimal(item["sell"]),
              "starts_on": _day(item["starts_on"]), "ends_on": _day(item["ends_on"])} for item in snap["items"]]
    return {**snap, "items": items, "total": total, "deposit": deposit, "balance": total - deposit,
            "depart_on": _day(snap["depart_on"]), "return_on": _day(snap["return_on"]),
            "balance_due_on": _day(snap["balance_due_on"])}
