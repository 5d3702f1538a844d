"""Trip writes: quotes, the order, travelers, itinerary, payments, document checklists (R-SALE-3 … 5).

A trip is the quote of an opportunity and, once won, the order itself: nothing is typed twice.
Status moves are checked against :data:`TRANSITIONS`; checklist items and the post-trip visa
cancellation have their own small tables. Money is ``Decimal`` in the trip's currency; a payment row
is never edited (a mistake is corrected with a refund), and payments lock the trip so two finance
colleagues cannot refund past the limit at the same moment.
"""
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap
from caravan import texts
from caravan.texts import Text
from caravan import formatting
from caravan.money import parse_money
from caravan.tenancy import require_agency
from crm.customers.models import Contact, Customer, Employment, TravelDocument
from crm.pipeline.models import Opportunity, Stage, Task
from crm.pipeline.services import IllegalTransition, opportunity_lock, opportunity_move, stage_of, task_create
from crm.customers.services import customer_live, timeline_add
from tenants.jobs import services as agency_jobs

from . import hooks
from .models import ChecklistItem, ItineraryItem, Payment, Traveler, Trip

S = Trip.Status
TRANSITIONS: dict[str, set[str]] = {
    S.QUOTE: {S.CONFIRMED, S.CANCELLED},
    S.CONFIRMED: {S.COMPLETED, S.CANCELLED},
    S.COMPLETED: set(),
    S.CANCELLED: set(),
}
EDITABLE = {S.QUOTE, S.CONFIRMED}  # itinerary and travelers change only while the trip is live

D = ChecklistItem.Status
CHECKLIST_TRANSITIONS: dict[str, set[str]] = {
    D.REQUIRED: {D.RECEIVED, D.WAIVED},
    D.RECEIVED: {D.RETURNED, D.REQUIRED},  # received → required undoes a wrong click
    D.RETURNED: set(),
    D.WAIVED: set(),
}
DEFAULT_DOCUMENTS = [ChecklistItem.Document.PASSPORT, ChecklistItem.Document.ID_CARD, ChecklistItem.Document.PHOTOS,
                     ChecklistItem.Document.ASSETS, ChecklistItem.Document.EMPLOYMENT]

V = Traveler.VisaCancellation
VISA_CANCELLATION_TRANSITIONS: dict[str, set[str]] = {V.AWAITING: {V.RECEIVED}, V.RECEIVED: {V.DONE}}

# The small structured form per kind of item; anything else stays out of ``details``.
DETAIL_FIELDS: dict[str, tuple[str, ...]] = {
    ItineraryItem.Kind.FLIGHT: ("carrier", "number", "from_airport", "to_airport"),
    ItineraryItem.Kind.HOTEL: ("room_type", "board"),
}
BALANCE_DAYS_BEFORE_DEPARTURE = 30


# --- helpers --------------------------------------------------------------------------------------

def agency_today() -> date:
    """Today in the agency's time zone (tasks and tests run without the request's time zone)."""
    from zoneinfo import ZoneInfo

    return timezone.now().astimezone(ZoneInfo(require_agency().time_zone)).date()


def money_display(amount: Decimal, currency: str) -> str:
    """The amount as people read it, in the active language (caravan.formatting)."""
    return formatting.money(amount, currency)


def _lock(trip: Trip) -> Trip:
    return Trip.objects.select_for_update().get(pk=trip.pk)


def _require_live(trip: Trip, field: str = "status") -> None:
    if trip.status not in EDITABLE:
        raise ValidationError({field: [_("This trip is %(status)s: it can no longer be changed.")
                                       % {"status": trip.get_status_display().lower()}]})


def check_transition(trip: Trip, to: str) -> None:
    if to not in TRANSITIONS:
        raise IllegalTransition(_("Unknown trip status."), field="status")
    if to not in TRANSITIONS[trip.status]:
        raise IllegalTransition(_("A trip cannot go from “%(from)s” to “%(to)s”.")
                                % {"from": trip.get_status_display(), "to": S(to).label}, field="status")


def default_balance_due(depart_on: date | None) -> date | None:
    return depart_on - timedelta(days=BALANCE_DAYS_BEFORE_DEPARTURE) if depart_on else None


def _check_dates(depart_on, return_on) -> None:
    if depart_on and return_on and return_on < depart_on:
        raise ValidationError({"return_on": [_("The return cannot be before the departure.")]})


# --- trips: create, quote, order ------------------------------------------------------------------

def trip_create(*, actor: User | None, customer: Customer, title: str, destination: str = "",
                depart_on: date | None = None, return_on: date | None = None, owner: User | None = None,
                notes: str = "", balance_due_on: date | None = None, opportunity: Opportunity | None = None,
                status: str = S.QUOTE) -> Trip:
    """A new trip, a quote unless told otherwise. A person who books travels; a company's
    travelers are added one by one."""
    errors = {}
    if not (title or "").strip():
        errors["title"] = [_("Give the trip a title, e.g. Japan in April.")]
    if errors:
        raise ValidationError(errors)
    _check_dates(depart_on, return_on)
    now = timezone.now()
    with transaction.atomic():
        customer_live(customer)  # a merged-away record is refused, naming the survivor
        trip = Trip.objects.create(
            customer=customer, opportunity=opportunity, title=title.strip(), destination=(destination or "").strip(),
            depart_on=depart_on, return_on=return_on, status=status, currency=require_agency().currency,
            balance_due_on=balance_due_on or default_balance_due(depart_on), owner=owner, notes=(notes or "").strip(),
            created_by=actor, created_at=now, confirmed_at=now if status == S.CONFIRMED else None)
        if customer.kind == Customer.Kind.PERSON:
            Traveler.objects.create(trip=trip, customer=customer, is_lead=True)
    _after_trip_due(trip)
    return trip


def _after_trip_due(trip: Trip) -> None:
    """A confirmed trip already back before today: the after-trip job has work now (otherwise it
    finds the trip at the first midnight after its return, its next due time)."""
    if trip.status in (S.CONFIRMED, S.COMPLETED) and trip.return_on and trip.return_on < agency_today():
        agency_jobs.due("care.after_trip")


def _from_opportunity(actor, opportunity: Opportunity, status: str) -> Trip:
    _detach_cancelled(opportunity)
    return trip_create(actor=actor, customer=opportunity.customer, title=opportunity.title,
                       destination=opportunity.destination, depart_on=opportunity.depart_on,
                       return_on=opportunity.return_on, owner=opportunity.owner or actor, opportunity=opportunity,
                       status=status)


def _detach_cancelled(opportunity: Opportunity) -> None:
    """A lost-then-reopened opportunity keeps its cancelled quote on file, unlinked, so a new one can follow."""
    Trip.objects.filter(opportunity=opportunity, status=S.CANCELLED).update(opportunity=None)


@transaction.atomic
def quote_from_opportunity(*, actor: User | None, opportunity: Opportunity) -> Trip:
    """"Prepare quote": a trip in status quote with the opportunity's customer, title, destination,
    dates and owner. Moves an opportunity at an earlier open stage forward to “quoted”."""
    opportunity = opportunity_lock(opportunity.pk)  # then the second of two concurrent quotes sees the first
    if opportunity.stage.is_closed:
        raise ValidationError({"opportunity": [_("This opportunity is closed; reopen it before quoting.")]})
    existing = Trip.objects.filter(opportunity=opportunity).exclude(status=S.CANCELLED).first()
    if existing is not None:
        raise ValidationError({"opportunity": [_("This opportunity already has a quote: %(ref)s.")
                                               % {"ref": existing.reference}]})
    trip = _from_opportunity(actor, opportunity, S.QUOTE)
    quoted = Stage.objects.filter(kind=Stage.Kind.OPEN, code="quoted", is_active=True).order_by("position", "id").first()
    current = opportunity.stage
    if quoted and current.kind == Stage.Kind.OPEN and (current.position, current.pk) < (quoted.position, quoted.pk):
        opportunity_move(actor=actor, opportunity=opportunity, to=quoted)
    return trip


@transaction.atomic
def trip_follow_opportunity(*, actor: User | None, opportunity: Opportunity) -> None:
    """Receiver of ``crm.pipeline.hooks.opportunity_moved`` (connected in ``TripsConfig.ready``):
    the trip follows the opportunity into its new stage."""
    if opportunity.stage.kind == Stage.Kind.WON:
        trip_for_won_opportunity(actor=actor, opportunity=opportunity)
    elif opportunity.stage.kind == Stage.Kind.LOST:
        quote_cancel_for_lost_opportunity(actor=actor, opportunity=opportunity)


def trip_for_won_opportunity(*, actor: User | None, opportunity: Opportunity) -> Trip:
    """An opportunity was won: the quote becomes the confirmed order, or, with no quote yet, a trip
    is made from the opportunity."""
    trip = Trip.objects.select_for_update().filter(opportunity=opportunity).exclude(status=S.CANCELLED).first()
    if trip is None:
        return _from_opportunity(actor, opportunity, S.CONFIRMED)
    if trip.status == S.QUOTE:
        trip.status, trip.confirmed_at = S.CONFIRMED, timezone.now()
        trip.save(update_fields=["status", "confirmed_at"])
        _after_trip_due(trip)
    return trip


@transaction.atomic
def quote_cancel_for_lost_opportunity(*, actor: User | None, opportunity: Opportunity) -> None:
    """An opportunity was lost: its quote is cancelled."""
    trip = Trip.objects.select_for_update().filter(opportunity=opportunity, status=S.QUOTE).first()
    if trip is None:
        return
    reason = opportunity.get_lost_reason_display() if opportunity.lost_reason else ""
    if opportunity.lost_note:
        reason = f"{reason}: {opportunity.lost_note}" if reason else opportunity.lost_note
    _set_status(trip, S.CANCELLED, reason=reason)


# --- trips: status and fields ---------------------------------------------------------------------

def _set_status(trip: Trip, to: str, reason: str = "") -> Trip:
    check_transition(trip, to)
    now = timezone.now()
    trip.status = to
    fields = ["status"]
    if to == S.CONFIRMED:
        trip.confirmed_at = now
        fields.append("confirmed_at")
    elif to == S.CANCELLED:
        trip.cancelled_at, trip.cancel_reason = now, (reason or "").strip()[:300]
        fields += ["cancelled_at", "cancel_reason"]
    trip.save(update_fields=fields)
    _after_trip_due(trip)
    return trip


@transaction.atomic
def trip_confirm(*, actor: User | None, trip: Trip) -> Trip:
    """Quote → order. A trip whose opportunity is still open wins the opportunity, which confirms the trip."""
    trip = _lock(trip)
    check_transition(trip, S.CONFIRMED)
    opportunity = trip.opportunity
    if opportunity is not None and not opportunity.stage.is_closed:
        opportunity_move(actor=actor, opportunity=opportunity, to=stage_of(Stage.Kind.WON))
        trip.refresh_from_db()
        return trip
    return _set_status(trip, S.CONFIRMED)


@transaction.atomic
def trip_cancel(*, actor: User | None, trip: Trip, reason: str = "") -> Trip:
    trip = _lock(trip)
    if not (reason or "").strip():
        raise ValidationError({"reason": [_("Say why the trip is cancelled.")]})
    return _set_status(trip, S.CANCELLED, reason=reason)


def _complete_sql(condition: str) -> str:
    """The one completion rule, for one trip or all returned ones: the trip is completed, and on a
    visa trip every traveler owes the passport back for the visa cancellation."""
    trips, travelers = Trip._meta.db_table, Traveler._meta.db_table
    return f"""
        WITH done AS (
            UPDATE {trips} SET status = %s, completed_at = %s
            WHERE status = %s AND {condition}
            RETURNING id, needs_visa
        ), awaiting AS (
            UPDATE {travelers} SET visa_cancellation = %s
            WHERE visa_cancellation = '' AND trip_id IN (SELECT id FROM done WHERE needs_visa)
        )
        SELECT count(*) FROM done"""


def _complete(condition: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_complete_sql(condition), [S.COMPLETED, timezone.now(), S.CONFIRMED, *params, V.AWAITING])
        return cursor.fetchone()[0]


def trips_complete_returned(*, today: date) -> int:
    """Complete every confirmed trip that returned before ``today``, in one statement (the nightly
    after-trip job runs it over tens of thousands of trips). Running it again changes nothing."""
    return _complete("return_on < %s", [today])


@transaction.atomic
def trip_complete(*, actor: User | None, trip: Trip) -> Trip:
    trip = _lock(trip)
    check_transition(trip, S.COMPLETED)
    _complete("id = %s", [trip.pk])
    trip.refresh_from_db()
    return trip


@transaction.atomic
def trip_update(*, actor: User | None, trip: Trip, **fields) -> Trip:
    """Change the trip's own facts. Notes can always be written; the rest only while the trip is live."""
    allowed = {"title", "destination", "depart_on", "return_on", "owner", "notes", "balance_due_on", "needs_visa"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"trip_update does not set {sorted(unknown)}")
    trip = _lock(trip)
    if set(fields) - {"notes"}:
        _require_live(trip)
    if "title" in fields and not (fields["title"] or "").strip():
        raise ValidationError({"title": [_("Give the trip a title, e.g. Japan in April.")]})
    for name in ("title", "destination", "notes"):
        if name in fields:
            fields[name] = (fields[name] or "").strip()
    _check_dates(fields.get("depart_on", trip.depart_on), fields.get("return_on", trip.return_on))
    if "depart_on" in fields and "balance_due_on" not in fields and fields["depart_on"] != trip.depart_on \
            and trip.balance_due_on == default_balance_due(trip.depart_on):
        fields["balance_due_on"] = default_balance_due(fields["depart_on"])  # it followed the default: keep following
    for name, value in fields.items():
        setattr(trip, name, value)
    trip.save(update_fields=list(fields))
    if "return_on" in fields:
        _after_trip_due(trip)
    if trip.needs_visa:
        checklist_ensure(trip=trip)
    return trip


# --- travelers ------------------------------------------------------------------------------------

@transaction.atomic
def traveler_add(*, actor: User | None, trip: Trip, customer: Customer, company: Customer | None = None,
                 is_lead: bool = False) -> Traveler:
    """A person travels on the trip, once. On a company's trip (or with ``company``) they must be
    one of the company's people. On a visa trip they get the default document checklist."""
    trip = _lock(trip)
    _require_live(trip, "customer")
    if customer.kind != Customer.Kind.PERSON:
        raise ValidationError({"customer": [_("Travelers are people, not companies.")]})
    customer_live(customer)
    if company is None and trip.customer.kind == Customer.Kind.COMPANY:
        company = trip.customer
    if company is not None and not Employment.objects.filter(company=company, person=customer).exists():
        raise ValidationError({"customer": [_("%(person)s is not one of %(company)s's people; link them on the "
                                              "company's card first.") % {"person": customer.name,
                                                                          "company": company.name}]})
    if trip.travelers.filter(customer=customer).exists():
        raise ValidationError({"customer": [_("%(name)s already travels on this trip.") % {"name": customer.name}]})
    first = not trip.travelers.exists()
    if is_lead:
        trip.travelers.update(is_lead=False)
    try:
        with transaction.atomic():
            traveler = Traveler.objects.create(trip=trip, customer=customer, company=company, is_lead=is_lead or first)
    except IntegrityError:
        raise ValidationError({"customer": [_("%(name)s already travels on this trip.") % {"name": customer.name}]})
    if trip.needs_visa:
        checklist_ensure(trip=trip)
    return traveler


@transaction.atomic
def traveler_remove(*, actor: User | None, traveler: Traveler) -> None:
    trip = _lock(traveler.trip)
    _require_live(trip, "customer")
    was_lead = traveler.is_lead
    traveler.delete()
    if was_lead:
        following = trip.travelers.order_by("id").first()
        if following is not None:
            Traveler.objects.filter(pk=following.pk).update(is_lead=True)


@transaction.atomic
def traveler_set_lead(*, actor: User | None, traveler: Traveler) -> Traveler:
    trip = _lock(traveler.trip)
    trip.travelers.exclude(pk=traveler.pk).update(is_lead=False)
    Traveler.objects.filter(pk=traveler.pk).update(is_lead=True)
    traveler.is_lead = True
    return traveler


@transaction.atomic
def visa_cancellation_advance(*, actor: User | None, traveler: Traveler, to: str) -> Traveler:
    """After a visa trip: passport received from the traveler (sent to the consulate), then done."""
    traveler = Traveler.objects.select_for_update().get(pk=traveler.pk)
    if to not in VISA_CANCELLATION_TRANSITIONS.get(traveler.visa_cancellation, set()):
        raise IllegalTransition(_("The visa cancellation cannot go from “%(from)s” to “%(to)s”.")
                                % {"from": traveler.get_visa_cancellation_display(),
                                   "to": V(to).label if to in V.values else to}, field="visa_cancellation")
    traveler.visa_cancellation = to
    traveler.save(update_fields=["visa_cancellation"])
    return traveler


# --- itinerary ------------------------------------------------------------------------------------

def _clean_details(kind: str, details) -> dict:
    if details in (None, ""):
        return {}
    if not isinstance(details, dict) or len(details) > 20:
        raise ValidationError({"details": [_("Details are a few named values, e.g. a flight number.")]})
    cleaned = {}
    for key, value in details.items():
        if not isinstance(key, str) or not isinstance(value, (str, int)) or len(str(value)) > 100:
            raise ValidationError({"details": [_("Details are a few named values, e.g. a flight number.")]})
        if str(value).strip():
            cleaned[key.strip()[:40]] = str(value).strip()
    if kind == ItineraryItem.Kind.FLIGHT:
        for key in ("carrier", "from_airport", "to_airport"):
            if key in cleaned:
                cleaned[key] = cleaned[key].upper()
    return cleaned


def _clean_item(kind, fields: dict) -> dict:
    errors = {}
    if kind not in ItineraryItem.Kind.values:
        errors["kind"] = [_("Choose what kind of item this is.")]
    if "description" in fields and not (fields["description"] or "").strip():
        errors["description"] = [_("Describe the item, e.g. CA929 Shanghai–Tokyo.")]
    for name in ("cost", "sell"):
        if name in fields:
            try:
                fields[name] = parse_money(fields[name], field=name, allow_zero=True)
            except ValidationError as exc:
                errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    for name in ("description", "supplier", "confirmation"):
        if name in fields:
            fields[name] = (fields[name] or "").strip()
    if "details" in fields:
        fields["details"] = _clean_details(kind, fields["details"])
    _check_item_dates(fields.get("starts_on"), fields.get("ends_on"))
    return fields


def _check_item_dates(starts_on, ends_on) -> None:
    if starts_on and ends_on and ends_on < starts_on:
        raise ValidationError({"ends_on": [_("The end cannot be before the start.")]})


def _mark_visa(trip: Trip, kind: str) -> None:
    if kind == ItineraryItem.Kind.VISA and not trip.needs_visa:
        trip.needs_visa = True
        trip.save(update_fields=["needs_visa"])
        checklist_ensure(trip=trip)


@transaction.atomic
def item_add(*, actor: User | None, trip: Trip, kind: str, description: str, supplier: str = "",
             starts_on: date | None = None, ends_on: date | None = None, confirmation: str = "", cost=0, sell=0,
             details: dict | None = None) -> ItineraryItem:
    trip = _lock(trip)
    _require_live(trip, "kind")
    fields = _clean_item(kind, dict(description=description, supplier=supplier, starts_on=starts_on, ends_on=ends_on,
                                    confirmation=confirmation, cost=cost, sell=sell, details=details))
    item = ItineraryItem.objects.create(trip=trip, kind=kind, **fields)
    _mark_visa(trip, kind)
    return item


@transaction.atomic
def item_update(*, actor: User | None, item: ItineraryItem, **fields) -> ItineraryItem:
    allowed = {"kind", "description", "supplier", "starts_on", "ends_on", "confirmation", "cost", "sell", "details"}
    if set(fields) - allowed:
        raise ValueError(f"item_update does not set {sorted(set(fields) - allowed)}")
    trip = _lock(item.trip)
    _require_live(trip, "kind")
    kind = fields.get("kind", item.kind)
    fields = _clean_item(kind, fields)
    _check_item_dates(fields.get("starts_on", item.starts_on), fields.get("ends_on", item.ends_on))
    for name, value in fields.items():
        setattr(item, name, value)
    item.save(update_fields=list(fields))
    _mark_visa(trip, kind)
    return item


@transaction.atomic
def item_remove(*, actor: User | None, item: ItineraryItem) -> None:
    trip = _lock(item.trip)
    _require_live(trip, "kind")
    item.delete()


# --- payments -------------------------------------------------------------------------------------

def _paid(trip: Trip) -> Decimal:
    rows = dict(trip.payments.values_list("kind").annotate(total=Sum("amount")).order_by())
    return (rows.get(Payment.Kind.DEPOSIT, 0) + rows.get(Payment.Kind.BALANCE, 0)
            - rows.get(Payment.Kind.REFUND, 0)) or Decimal("0.00")


def refundable(payment: Payment) -> Decimal:
    """What is left to refund of a deposit or balance payment."""
    refunded = payment.refunds.aggregate(total=Sum("amount"))["total"] or 0
    return payment.amount - refunded


@transaction.atomic
def payment_record(*, actor: User | None, trip: Trip, kind: str, amount, method: str, received_on: date,
                   reference: str = "", note: str = "", refund_of: Payment | None = None) -> Payment:
    """Record money in (deposit, balance) or out (a refund of a named payment). The trip is locked,
    so two refunds recorded at once cannot pass what was paid."""
    if actor is not None and not actor.can(Cap.PAYMENTS_RECORD):
        raise PermissionDenied
    errors = {}
    if kind not in Payment.Kind.values:
        errors["kind"] = [_("Choose deposit, balance or refund.")]
    if method not in Payment.Method.values:
        errors["method"] = [_("Choose how the money was paid.")]
    if received_on is None:
        errors["received_on"] = [_("Give the date the money moved.")]
    try:
        amount = parse_money(amount, field="amount")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    trip = _lock(trip)
    if kind == Payment.Kind.REFUND:
        _check_refund(trip, refund_of, amount)
    else:
        if refund_of is not None:
            raise ValidationError({"refund_of": [_("Only a refund names the payment it refunds.")]})
        if trip.status == S.CANCELLED:
            raise ValidationError({"kind": [_("This trip is cancelled: record refunds only.")]})
        total = trip.items.aggregate(total=Sum("sell"))["total"] or Decimal("0.00")
        paid = _paid(trip)
        if paid + amount > total:
            raise ValidationError({"amount": [
                _("This would overpay the trip: the total is %(total)s, %(paid)s is paid, so at most %(left)s is due.")
                % {"total": money_display(total, trip.currency), "paid": money_display(paid, trip.currency),
                   "left": money_display(max(total - paid, Decimal("0.00")), trip.currency)}]})
    payment = Payment.objects.create(trip=trip, kind=kind, amount=amount, currency=trip.currency, method=method,
                                     received_on=received_on, reference=(reference or "").strip(),
                                     note=(note or "").strip(), refund_of=refund_of, recorded_by=actor)
    if kind == Payment.Kind.REFUND:
        hooks.payment_refunded(actor=actor, refund=payment)
    summary = Text("payment_recorded", kind=payment.kind, amount=money_display(amount, trip.currency),
                   ref=trip.reference, title=trip.title, method=payment.method)
    timeline_add(actor=actor, customer=trip.customer, channel=Contact.Channel.TRIP,
                 direction=Contact.Direction.INTERNAL, summary=summary)
    if kind == Payment.Kind.DEPOSIT:
        _deposit_paid(actor, trip)
    return payment


def _check_refund(trip: Trip, refund_of: Payment | None, amount: Decimal) -> None:
    if refund_of is None:
        raise ValidationError({"refund_of": [_("Choose the payment this refund pays back.")]})
    if refund_of.trip_id != trip.pk:
        raise ValidationError({"refund_of": [_("That payment belongs to another trip.")]})
    if refund_of.kind == Payment.Kind.REFUND:
        raise ValidationError({"refund_of": [_("A refund cannot itself be refunded; record a new payment instead.")]})
    left = refundable(refund_of)
    if amount > left:
        raise ValidationError({"amount": [_("At most %(left)s of this payment can still be refunded.")
                                          % {"left": money_display(left, trip.currency)}]})


def _deposit_paid(actor: User | None, trip: Trip) -> None:
    """A deposit moves an open opportunity to “deposit paid”, and the owner calls the customer today."""
    opportunity = trip.opportunity
    if opportunity is not None and opportunity.stage.kind == Stage.Kind.OPEN:
        opportunity_move(actor=actor, opportunity=opportunity, to=stage_of(Stage.Kind.DEPOSIT))
    owner = trip.owner or (opportunity.owner if opportunity else None)
    task_create(actor=actor, title=_("Deposit received for %(ref)s: call %(name)s today")
                % {"ref": trip.reference, "name": trip.customer.name},
                owner=owner, due_at=timezone.now(), kind=Task.Kind.DEPOSIT_CALL, customer=trip.customer,
                opportunity=opportunity, trip=trip, key=f"deposit-call:{trip.pk}",
                text=texts.store("deposit_received", ref=trip.reference, name=trip.customer.name))


# --- document checklist ---------------------------------------------------------------------------

def checklist_ensure(*, trip: Trip) -> int:
    """Give each traveler of a visa trip without a checklist the default documents."""
    bare = trip.travelers.filter(checklist__isnull=True)
    items = [ChecklistItem(traveler=traveler, document=document) for traveler in bare for document in DEFAULT_DOCUMENTS]
    ChecklistItem.objects.bulk_create(items)
    return len(items)


@transaction.atomic
def checklist_item_add(*, actor: User | None, traveler: Traveler, document: str, label: str = "",
                       note: str = "") -> ChecklistItem:
    _require_live(_lock(traveler.trip), "document")
    if document not in ChecklistItem.Document.values:
        raise ValidationError({"document": [_("Choose a document.")]})
    if document == ChecklistItem.Document.OTHER and not (label or "").strip():
        raise ValidationError({"label": [_("Say which document.")]})
    return ChecklistItem.objects.create(traveler=traveler, document=document, label=(label or "").strip(),
                                        note=(note or "").strip(), changed_by=actor)


@transaction.atomic
def checklist_item_remove(*, actor: User | None, item: ChecklistItem) -> None:
    _require_live(_lock(item.traveler.trip), "document")
    item.delete()


@transaction.atomic
def checklist_item_set_status(*, actor: User | None, item: ChecklistItem, status: str, note: str | None = None
                              ) -> ChecklistItem:
    item = ChecklistItem.objects.select_for_update().get(pk=item.pk)
    if status not in CHECKLIST_TRANSITIONS.get(item.status, set()):
        raise IllegalTransition(_("A document cannot go from “%(from)s” to “%(to)s”.")
                                % {"from": item.get_status_display(),
                                   "to": D(status).label if status in D.values else status}, field="status")
    now = timezone.now()
    if status == D.RECEIVED:
        item.received_at = now
    elif status == D.RETURNED:
        item.returned_at = now
    elif status == D.REQUIRED:
        item.received_at = None
    item.status, item.changed_by = status, actor
    if note is not None:
        item.note = note.strip()[:300]
    item.save(update_fields=["status", "received_at", "returned_at", "changed_by", "note"])
    return item


# --- the checklist from a destination's visa notes --------------------------------------------------

DEFAULT_NATIONALITY = "CN"


def traveler_nationalities(trip: Trip) -> dict[int, str]:
    """{traveler id: nationality}: the issuing country of the traveler's passport (the one that expires
    last), else :data:`DEFAULT_NATIONALITY`."""
    travelers = list(trip.travelers.values_list("pk", "customer_id"))
    passports = (TravelDocument.objects.filter(customer_id__in=[c for _t, c in travelers],
                                               kind=TravelDocument.Kind.PASSPORT)
                 .order_by("customer_id", F("expires_on").asc(nulls_first=True), "id")
                 .values_list("customer_id", "issuing_country"))
    country = {customer: issuing.upper() for customer, issuing in passports if issuing}  # the last one wins
    return {pk: country.get(customer, DEFAULT_NATIONALITY) for pk, customer in travelers}


@transaction.atomic
def checklist_from_visa_notes(*, actor: User | None, trip: Trip, article_title: str,
                              note_for: Callable[[str], Any]) -> dict:
    """Each traveler's checklist from the destination article's visa note for their nationality
    (:func:`traveler_nationalities`): the note's ``documents`` the traveler does not have yet become
    checklist items, each with a note naming the article and the date the note was checked.

    The knowledge base sits above trips (crm.destinations imports crm.trips), so the caller passes
    the article's title and ``note_for(nationality) -> note | None``; a note has ``documents`` (checklist
    document kinds), ``checked_on`` (date or None) and ``is_stale``. The trip becomes a visa trip.
    Returns {"added": n, "travelers": [{"traveler", "nationality", "found", "added", "stale"}],
    "missing": [nationalities without a note], "stale": any note used is stale}.
    """
    trip = _lock(trip)
    _require_live(trip, "document")
    nationalities = traveler_nationalities(trip)
    if not nationalities:
        raise ValidationError({"document": [_("Add travelers first.")]})
    notes: dict[str, Any] = {}
    rows, added_total, missing = [], 0, []
    travelers = {t.pk: t for t in trip.travelers.select_related("customer")}
    for traveler_id, nationality in nationalities.items():
        if nationality not in notes:
            notes[nationality] = note_for(nationality)
        note = notes[nationality]
        traveler = travelers[traveler_id]
        if note is None:
            missing.append(nationality)
            rows.append({"traveler": traveler, "nationality": nationality, "found": False, "added": 0, "stale": False})
            continue
        if note.checked_on:
            source = _("From the visa notes of “%(article)s” (%(nationality)s), checked on %(date)s.") % {
                "article": article_title, "nationality": nationality, "date": formatting.day(note.checked_on)}
        else:
            source = _("From the visa notes of “%(article)s” (%(nationality)s), never checked.") % {
                "article": article_title, "nationality": nationality}
        have = set(ChecklistItem.objects.filter(traveler_id=traveler_id).values_list("document", flat=True))
        wanted = [d for d in dict.fromkeys(note.documents or []) if d in ChecklistItem.Document.values and d not in have]
        ChecklistItem.objects.bulk_create([ChecklistItem(traveler_id=traveler_id, document=document,
                                                         note=source[:300], changed_by=actor) for document in wanted])
        added_total += len(wanted)
        rows.append({"traveler": traveler, "nationality": nationality, "found": True, "added": len(wanted),
                     "stale": bool(note.is_stale)})
    if not trip.needs_visa:
        trip.needs_visa = True
        trip.save(update_fields=["needs_visa"])
        checklist_ensure(trip=trip)  # a traveler without a note gets the default documents, as on any visa trip
    return {"added": added_total, "travelers": rows, "missing": sorted(set(missing)),
            "stale": any(row["stale"] for row in rows)}
