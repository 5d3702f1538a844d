"""Reads for online payments: a trip's payment schedule (what is due, what is paid) and the agency's account."""
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from importlib import import_module

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Sum

from crm.portal.services import portal_settings
from crm.trips.models import ItineraryItem, Payment, Trip

from .models import OnlinePayment, StripeAccount

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Line:
    """One line of a trip's schedule. ``amount``: what this line asks for in all; ``to_pay``: what is left
    to pay of it now (0 when paid); ``payable``: the customer may pay it online now."""

    kind: str  # OnlinePayment.Kind
    amount: Decimal
    to_pay: Decimal
    due_on: date | None
    paid: bool
    payable: bool

    @property
    def label(self):
        return OnlinePayment.Kind(self.kind).label


def account() -> StripeAccount | None:
    """The agency's connected Stripe account, or None."""
    return StripeAccount.objects.filter(pk=1).first()


def total_of(trip: Trip) -> Decimal:
    return trip.items.aggregate(total=Sum("sell"))["total"] or ZERO


def paid_of(trip: Trip) -> Decimal:
    """Deposits and balances received, less refunds (as ``crm.trips`` counts them)."""
    rows = dict(trip.payments.values_list("kind").annotate(total=Sum("amount")).order_by())
    return (rows.get(Payment.Kind.DEPOSIT, ZERO) + rows.get(Payment.Kind.BALANCE, ZERO)
            - rows.get(Payment.Kind.REFUND, ZERO))


def _proposal_deposit(trip: Trip) -> Decimal | None:
    """The deposit of the trip's latest proposal when the customer accepted it (``crm.proposals``, read through
    the functions it exposes: ``accepted_deposit(trip)`` if it has one, else ``latest`` and ``shown``); None
    when there is no such app or no accepted latest version (a changed quote needs a new acceptance)."""
    try:
        proposals = import_module("crm.proposals.selectors")
    except ImportError:
        return None
    if hasattr(proposals, "accepted_deposit"):
        amount = proposals.accepted_deposit(trip)
    else:
        proposal = proposals.latest(trip) if hasattr(proposals, "latest") else None
        try:
            accepted = proposal is not None and proposal.acceptance is not None
        except ObjectDoesNotExist:
            accepted = False
        amount = proposals.shown(proposal)["deposit"] if accepted else None
    return Decimal(amount).quantize(CENT) if amount is not None else None


def deposit_of(trip: Trip, total: Decimal) -> Decimal:
    amount = _proposal_deposit(trip)
    if amount is None:
        percent = Decimal(portal_settings().deposit_percent)
        amount = (total * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return min(amount, total)


def schedule(trip: Trip) -> list[Line]:
    """The deposit (``PortalSettings.deposit_percent`` of the total, or the accepted proposal's) and the
    balance (the total less what is paid, due ``trip.balance_due_on``). The deposit is payable until paid,
    the balance once the deposit is; nothing is payable on a cancelled trip or one without a price."""
    total = total_of(trip)
    if total <= 0:
        return []
    return _lines(trip, total, paid_of(trip), deposit_of(trip, total))


def schedules(trips) -> dict[int, list[Line]]:
    """``schedule`` of many trips in four statements, whatever their number (the portal's home page)."""
    trips = list(trips)
    ids = [trip.pk for trip in trips]
    totals = dict(ItineraryItem.objects.filter(trip_id__in=ids).values_list("trip_id").annotate(total=Sum("sell"))
                  .order_by())
    paid = {}
    for trip_id, kind, amount in (Payment.objects.filter(trip_id__in=ids).values_list("trip_id", "kind")
                                  .annotate(total=Sum("amount")).order_by()):
        paid[trip_id] = paid.get(trip_id, ZERO) + (-amount if kind == Payment.Kind.REFUND else amount)
    try:
        accepted = import_module("crm.proposals.selectors").accepted_deposits(ids)
    except ImportError:
        accepted = {}
    percent = Decimal(portal_settings().deposit_percent)
    found = {}
    for trip in trips:
        total = totals.get(trip.pk) or ZERO
        if total <= 0:
            found[trip.pk] = []
            continue
        deposit = accepted.get(trip.pk)
        deposit = (total * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP) if deposit is None \
            else deposit.quantize(CENT)
        found[trip.pk] = _lines(trip, total, paid.get(trip.pk, ZERO), min(deposit, total))
    return found


def _lines(trip: Trip, total: Decimal, paid: Decimal, deposit: Decimal) -> list[Line]:
    open_trip = trip.status != Trip.Status.CANCELLED
    lines = []
    deposit_left = max(deposit - paid, ZERO)
    if deposit > 0:
        lines.append(Line(OnlinePayment.Kind.DEPOSIT, deposit, deposit_left, None, deposit_left == 0,
                          open_trip and deposit_left > 0))
    balance = total - max(paid, deposit)
    balance_left = max(total - paid, ZERO)
    lines.append(Line(OnlinePayment.Kind.BALANCE, max(balance, ZERO), balance_left if deposit_left == 0 else balance,
                      trip.balance_due_on, balance_left == 0, open_trip and deposit_left == 0 and balance_left > 0))
    return lines


def line_of(trip: Trip, kind: str) -> Line | None:
    return next((line for line in schedule(trip) if line.kind == kind), None)


def online_payments(trip: Trip):
    return OnlinePayment.objects.filter(trip=trip).select_related("customer", "payment").order_by("-created_at")
