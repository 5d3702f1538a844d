"""Reads for crm.trips: what pages, the API and reports show.

Money per trip (total, paid, due, paid/due/overdue) is computed in SQL with correlated subqueries,
so a list of any length costs one query and no join multiplies the sums.
"""
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import (Case, CharField, DecimalField, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value,
                              When)
from django.db.models.functions import Coalesce

from accounts.roles import Cap
from caravan.money import CENT
from crm.customers.models import Customer

from .models import ChecklistItem, ItineraryItem, Payment, Traveler, Trip
from .services import agency_today

S = Trip.Status
ZERO = Value(Decimal("0.00"), output_field=DecimalField(max_digits=14, decimal_places=2))


class PaymentState:
    PAID, DUE, OVERDUE = "paid", "due", "overdue"


def _sum(queryset, field: str = "amount"):
    return Coalesce(Subquery(queryset.order_by().values("trip").annotate(total=Sum(field)).values("total")[:1],
                             output_field=DecimalField(max_digits=14, decimal_places=2)), ZERO)


def with_money(queryset: QuerySet, *, today: date | None = None) -> QuerySet:
    """Annotate ``sell_total``, ``cost_total``, ``paid_total``, ``due_total`` and ``payment_state``
    (paid / due / overdue; empty for cancelled trips and trips with nothing to pay yet)."""
    today = today or agency_today()
    trip = OuterRef("pk")
    money_in = Payment.objects.filter(trip=trip, kind__in=[Payment.Kind.DEPOSIT, Payment.Kind.BALANCE])
    money_out = Payment.objects.filter(trip=trip, kind=Payment.Kind.REFUND)
    return queryset.annotate(
        sell_total=_sum(ItineraryItem.objects.filter(trip=trip), "sell"),
        cost_total=_sum(ItineraryItem.objects.filter(trip=trip), "cost"),
        paid_total=_sum(money_in) - _sum(money_out),
    ).annotate(due_total=F("sell_total") - F("paid_total")).annotate(payment_state=Case(
        When(status=S.CANCELLED, then=Value("")),
        When(sell_total=0, paid_total=0, then=Value("")),
        When(due_total__lte=0, then=Value(PaymentState.PAID)),
        When(balance_due_on__lt=today, then=Value(PaymentState.OVERDUE)),
        default=Value(PaymentState.DUE), output_field=CharField()))


def documents_outstanding() -> Exists:
    return Exists(ChecklistItem.objects.filter(traveler__trip=OuterRef("pk"), status=ChecklistItem.Status.REQUIRED))


def trip_list(*, filters: dict | None = None, today: date | None = None) -> QuerySet:
    """Trips with their money, filtered as the list page and the API allow:
    status, owner (id or "me" resolved by the caller), departing from/to, payment (paid/due/overdue),
    customer (as booker or traveler), documents=outstanding (visa trips still missing documents)."""
    filters = filters or {}
    qs = with_money(Trip.objects.select_related("customer", "owner"), today=today)
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("owner"):
        qs = qs.filter(owner_id=filters["owner"])
    if filters.get("depart_from"):
        qs = qs.filter(depart_on__gte=filters["depart_from"])
    if filters.get("depart_to"):
        qs = qs.filter(depart_on__lte=filters["depart_to"])
    if filters.get("payment"):
        qs = qs.filter(payment_state=filters["payment"])
    if filters.get("customer"):
        qs = qs.filter(Q(customer_id=filters["customer"])
                       | Q(pk__in=Traveler.objects.filter(customer_id=filters["customer"]).values("trip_id")))
    if filters.get("documents"):
        qs = qs.filter(documents_outstanding(), needs_visa=True).exclude(status=S.CANCELLED)
    return qs


def list_totals(queryset: QuerySet) -> dict:
    """Sums over a filtered list, in SQL."""
    totals = queryset.order_by().aggregate(sell=Sum("sell_total"), paid=Sum("paid_total"), due=Sum("due_total"))
    return {key: value or Decimal("0.00") for key, value in totals.items()}


def trip_money(trip: Trip, *, today: date | None = None) -> dict:
    """The money box of one trip: totals, margin and margin %, paid, due, state."""
    row = with_money(Trip.objects.filter(pk=trip.pk), today=today).values(
        "sell_total", "cost_total", "paid_total", "due_total", "payment_state").get()
    sell, cost = row["sell_total"], row["cost_total"]
    margin = (sell - cost).quantize(CENT)
    return {"sell": sell.quantize(CENT), "cost": cost.quantize(CENT), "margin": margin,
            "margin_pct": (margin * 100 / sell).quantize(CENT) if sell else None,
            "paid": row["paid_total"].quantize(CENT), "due": row["due_total"].quantize(CENT),
            "state": row["payment_state"], "currency": trip.currency}


def trip_detail(*, pk: int) -> Trip:
    return Trip.objects.select_related("customer", "owner", "opportunity__stage").get(pk=pk)


def trip_travelers(trip: Trip) -> list[Traveler]:
    return list(trip.travelers.select_related("customer", "company").prefetch_related("checklist__changed_by"))


def trip_payments(trip: Trip) -> list[Payment]:
    """Payments in order, each deposit/balance with what can still be refunded (``left``)."""
    payments = list(trip.payments.select_related("recorded_by", "refund_of"))
    refunded: dict[int, Decimal] = {}
    for payment in payments:
        if payment.refund_of_id:
            refunded[payment.refund_of_id] = refunded.get(payment.refund_of_id, 0) + payment.amount
    for payment in payments:
        payment.left = None if payment.refund_of_id else payment.amount - refunded.get(payment.pk, 0)
    return payments


def customer_trips(*, customer: Customer, limit: int | None = None) -> QuerySet:
    """The customer's trips, as the one who books and as a traveler, newest departure first."""
    qs = trip_list(filters={"customer": customer.pk}).order_by(F("depart_on").desc(nulls_first=True), "-id")
    return qs[:limit] if limit else qs


def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/trips/_card.html)."""
    if not (user.can(Cap.PIPELINE_WORK) or user.can(Cap.PAYMENTS_VIEW)):
        return {}
    return {"trips_of_customer": list(customer_trips(customer=customer, limit=20)),
            "trips_can_create": user.can(Cap.PIPELINE_WORK)}


def dashboard_context(*, user) -> dict:
    """What the dashboard shows of this area (template: frontend/trips/_dashboard.html): trips leaving
    in the next 14 days (mine; everyone's for managers) and, for finance, overdue balances."""
    context = {}
    today = agency_today()
    if user.can(Cap.PIPELINE_WORK):
        departing = trip_list(filters={"depart_from": today, "depart_to": today + timedelta(days=14)},
                              today=today).filter(status__in=[S.QUOTE, S.CONFIRMED]).order_by("depart_on", "id")
        if not user.can(Cap.PIPELINE_MANAGE):
            departing = departing.filter(owner=user)
        context["trips_departing"] = list(departing[:20])
        context["trips_departing_all"] = user.can(Cap.PIPELINE_MANAGE)
    if user.can(Cap.PAYMENTS_VIEW):
        overdue = trip_list(filters={"payment": PaymentState.OVERDUE}, today=today).order_by("balance_due_on", "id")
        context["trips_overdue"] = list(overdue[:20])
    if context:
        context["trips_today"] = today
    return context
