"""Travel-policy writes (R-POL-1 … R-POL-3): versions, exchange rates, checks, approvals.

- A policy is never edited in place: ``policy_save`` adds a version (numbered under a row lock
  on the policy), and ``selectors.policy_in_force`` picks the version in force when a booking was
  made.
- ``policy_check`` judges an offer (page, API, bench) without writing anything;
  ``booking_check_record`` judges a trip item, stores the verdict as a ``BookingCheck`` (what the
  report counts) and, when the policy allows it, asks for an ``Approval``.
- The approver gets an e-mail with a signed link (salt names the agency's schema, like care's
  survey links); the e-mail is sent after an atomic claim, so a retried task never sends twice.
- A decision is an atomic claim too (``UPDATE … WHERE status = 'pending'``): a decided approval
  cannot be decided again, by any path.
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap
from caravan import texts
from caravan.texts import Text
from caravan import signing
from caravan import formatting
from caravan.money import parse_money
from caravan.tenancy import require_agency
from crm.customers.models import Contact, Customer, Email, Employment
from crm.pipeline.models import Task
from crm.pipeline.services import task_create
from crm.customers.services import timeline_add
from crm.trips.models import ItineraryItem, Trip
from crm.trips.models import Traveler as TripTraveler

from . import documents, engine, selectors
from .models import Approval, BookingCheck, ExchangeRate, PolicyVersion, TravelPolicy

APPROVAL_LINK_MAX_AGE = timedelta(days=14)
MAX_ALTERNATIVES = 50


# --- policies and versions ------------------------------------------------------------------------

def _currency(value, field: str = "currency") -> str:
    code = (value or "").strip().upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise ValidationError({field: [_("Use a three-letter currency code such as CNY.")]})
    return code


@transaction.atomic
def policy_save(*, actor: User | None, account: Customer, rules: dict, currency: str = "",
                travel_manager: Customer | None = None, effective_from: datetime | None = None,
                note: str = "") -> PolicyVersion:
    """Save the account's policy as a new version, in force from ``effective_from`` (default now).
    Earlier versions stay as they were: bookings made under them are still judged by them."""
    errors = {}
    if account is None or account.kind != Customer.Kind.COMPANY or account.merged_into_id:
        raise ValidationError({"account": [_("Travel policies are for corporate accounts.")]})
    try:
        rules = documents.clean_document(rules)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        currency = _currency(currency or require_agency().currency)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if travel_manager is not None and not Employment.objects.filter(
            company=account, person=travel_manager, active=True).exists():
        errors["travel_manager"] = [_("Choose someone who works at %(account)s.") % {"account": account.name}]
    if (isinstance(rules, dict) and "approvers" not in errors and "travel_manager" in (rules.get("approvers") or [])
            and travel_manager is None):
        errors["travel_manager"] = [_("The policy names the travel manager as approver: choose who that is.")]
    now = timezone.now()
    if effective_from is None:
        effective_from = now
    elif timezone.is_naive(effective_from):
        raise ValidationError({"effective_from": [_("Give the time with its time zone.")]})
    note = (note or "").strip()
    if len(note) > 500:
        errors["note"] = [_("Please keep the note under 500 characters.")]
    if errors:
        raise ValidationError(errors)
    policy, _created = TravelPolicy.objects.get_or_create(account=account)
    policy = TravelPolicy.objects.select_for_update().get(pk=policy.pk)  # numbers versions one at a time
    latest = policy.versions.order_by("-number").first()
    if latest and effective_from < latest.effective_from:
        raise ValidationError({"effective_from": [_("Version %(number)d is in force from %(when)s: a new version "
                                                    "cannot start before it.") % {
            "number": latest.number, "when": formatting.daytime(latest.effective_from)}]})
    return PolicyVersion.objects.create(
        policy=policy, number=(latest.number + 1) if latest else 1, effective_from=effective_from, rules=rules,
        currency=currency, travel_manager=travel_manager, note=note, created_by=actor, created_at=now)


# --- exchange rates -------------------------------------------------------------------------------

def exchange_rate_set(*, actor: User | None, currency: str, rate) -> ExchangeRate:
    """What one unit of ``currency`` is worth in the agency's currency."""
    errors = {}
    try:
        currency = _currency(currency)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    else:
        if currency == require_agency().currency:
            errors["currency"] = [_("This is the agency's own currency: its rate is always 1.")]
    try:
        rate = Decimal(str(rate).strip())
    except (InvalidOperation, TypeError):
        rate = None
    if rate is None or not rate.is_finite() or rate <= 0 or rate >= Decimal("1e10"):
        errors["rate"] = [_("Give a positive rate such as 7.1850.")]
    elif rate != rate.quantize(Decimal("1e-8")):
        errors["rate"] = [_("Use at most eight decimal places.")]
    if errors:
        raise ValidationError(errors)
    found, _created = ExchangeRate.objects.update_or_create(
        currency=currency, defaults={"rate": rate, "updated_at": timezone.now(), "updated_by": actor})
    return found


def exchange_rate_delete(*, actor: User | None, currency: str) -> None:
    ExchangeRate.objects.filter(currency=(currency or "").upper()).delete()


def make_fx(table: dict[str, Decimal]):
    """``fx(source, target)`` for the engine: through the agency's currency. Missing → LookupError."""
    def fx(source: str, target: str) -> Decimal:
        return table[source] / table[target]
    return fx


# --- offers from input ----------------------------------------------------------------------------

def _when(value, field: str, errors: dict, *, required: bool = True) -> datetime | None:
    if value in (None, ""):
        if required:
            errors[field] = [_("Give the date and time.")]
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        moment = parse_datetime(str(value).strip()) if isinstance(value, str) else None
        if moment is None:
            errors[field] = [_("Give the date and time, e.g. 2026-12-10 09:00.")]
            return None
    if timezone.is_naive(moment):  # read in the agency's time zone
        moment = timezone.make_aware(moment, _agency_zone())
    return moment


def _agency_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo(require_agency().time_zone)


def _day(value, field: str, errors: dict) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    day = parse_date(str(value).strip()) if isinstance(value, str) and value.strip() else None
    if day is None:
        errors[field] = [_("Give a date, e.g. 2026-12-10.")]
    return day


def _amount(value, field: str, errors: dict) -> Decimal | None:
    if value in (None, ""):
        errors[field] = [_("Give an amount such as 1800.00.")]
        return None
    try:
        return parse_money(value, field=field, allow_zero=True)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        return None


def _count(value, field: str, errors: dict, *, low: int, high: int, default=None) -> int | None:
    if value in (None, ""):
        if default is None:
            errors[field] = [_("This field is required.")]
        return default
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        errors[field] = [_("Enter a whole number from %(low)d to %(high)d.") % {"low": low, "high": high}]
        return None
    return number


def _text(value, field: str, errors: dict, *, required: bool = True, limit: int = 100) -> str:
    text = str(value or "").strip()
    if required and not text:
        errors[field] = [_("This field is required.")]
    elif len(text) > limit:
        errors[field] = [_("Keep it under %(n)d characters.") % {"n": limit}]
    return text


def flight_offer(data: dict, *, prefix: str, currency: str) -> engine.FlightOffer:
    """A flight offer from form or JSON data; errors are keyed ``<prefix>.<field>``."""
    if not isinstance(data, dict):
        raise ValidationError({prefix: [_("Describe the offer.")]})
    errors: dict = {}
    p = f"{prefix}."
    numbers = data.get("flight_numbers") or data.get("flight_number") or ""
    if isinstance(numbers, str):
        numbers = [n for n in numbers.replace(",", "/").replace(" ", "/").split("/") if n]
    if not isinstance(numbers, (list, tuple)) or not all(isinstance(n, str) for n in numbers) or len(numbers) > 6:
        errors[p + "flight_numbers"] = [_("Give the flight numbers, e.g. CA1501/CA1502.")]
        numbers = []
    numbers = tuple(n.strip().upper() for n in numbers)
    carrier = _text(data.get("carrier") or (numbers[0][:2] if numbers else ""), p + "carrier", errors, limit=3).upper()
    departure = _when(data.get("departure"), p + "departure", errors)
    arrival = _when(data.get("arrival"), p + "arrival", errors, required=False)
    duration = _count(data.get("duration_minutes"), p + "duration_minutes", errors, low=1, high=48 * 60, default=0)
    if not duration and departure and arrival:
        duration = int((arrival - departure).total_seconds() // 60)
        if duration <= 0:
            errors[p + "arrival"] = [_("The arrival must come after the departure.")]
    elif not duration and p + "duration_minutes" not in errors:
        errors[p + "duration_minutes"] = [_("Give the flight time in minutes, or the arrival.")]
    if departure and duration and not arrival:
        arrival = departure + timedelta(minutes=duration)
    stops = _count(data.get("stops"), p + "stops", errors, low=0, high=5, default=0)
    cabin = data.get("cabin") or ""
    if cabin not in engine.CABINS:
        errors[p + "cabin"] = [_("Choose a cabin.")]
    fare = _amount(data.get("fare", data.get("price")), p + "fare", errors)
    try:
        offer_currency = _currency(data.get("currency") or currency, p + "currency")
    except ValidationError as exc:
        errors.update(exc.message_dict)
        offer_currency = currency
    distance = _count(data.get("distance_km"), p + "distance_km", errors, low=1, high=25000, default=-1)
    origin = _text(data.get("origin"), p + "origin", errors, required=False, limit=40).upper()
    destination = _text(data.get("destination"), p + "destination", errors, required=False, limit=40).upper()
    if errors:
        raise ValidationError(errors)
    return engine.FlightOffer(carrier, numbers, origin, destination, departure, arrival, duration, stops, cabin,
                              fare, offer_currency, None if distance == -1 else distance)


def hotel_offer(data: dict, *, prefix: str, currency: str) -> engine.HotelOffer:
    """A hotel offer from form or JSON data; errors are keyed ``<prefix>.<field>``."""
    if not isinstance(data, dict):
        raise ValidationError({prefix: [_("Describe the offer.")]})
    errors: dict = {}
    p = f"{prefix}."
    chain = _text(data.get("chain"), p + "chain", errors, required=False, limit=60)
    name = _text(data.get("property_name") or data.get("name"), p + "property_name", errors, limit=120)
    city = _text(data.get("city"), p + "city", errors, limit=60)
    country = _text(data.get("country"), p + "country", errors, required=False, limit=3).upper()
    nights = _count(data.get("nights"), p + "nights", errors, low=1, high=365, default=1)
    rate = _amount(data.get("nightly_rate", data.get("price")), p + "nightly_rate", errors)
    check_in = _day(data.get("check_in"), p + "check_in", errors) if data.get("check_in") else None
    try:
        offer_currency = _currency(data.get("currency") or currency, p + "currency")
    except ValidationError as exc:
        errors.update(exc.message_dict)
        offer_currency = currency
    if errors:
        raise ValidationError(errors)
    return engine.HotelOffer(chain, name, city, nights, rate, offer_currency, check_in or timezone.localdate(),
                             country)


# --- checks ---------------------------------------------------------------------------------------

@dataclass
class CheckOutcome:
    """A verdict with what it was judged by: the version, the traveler's grade and department."""
    verdict: engine.Verdict
    version: PolicyVersion
    kind: str
    offer: engine.FlightOffer | engine.HotelOffer
    grade: str
    department: str
    traveler: Customer | None
    booked_at: datetime
    price: Decimal | None  # the offer in the policy currency (a hotel: the stay)
    cheapest_price: Decimal | None

    @property
    def results(self) -> list[dict]:
        return [{"rule": r.rule, "passed": r.passed, "code": r.code, "params": r.params} for r in self.verdict.results]


def _traveler_profile(account: Customer, traveler: Customer | None, employment, grade: str,
                      department: str) -> tuple[str, str]:
    """Grade and department: as given, else from the traveler's (active) employment at the account."""
    if traveler is None:
        return (grade or "").strip().upper(), (department or "").strip()
    if employment is None or not employment[2]:
        raise ValidationError({"traveler": [_("%(name)s does not work at %(account)s.") % {
            "name": traveler.name, "account": account.name}]})
    return (grade or employment[0] or "").strip().upper(), (department or employment[1] or "").strip()


def policy_check(*, account: Customer, kind: str, offer: dict, alternatives=(), traveler: Customer | None = None,
                 grade: str = "", department: str = "", requested_departure=None,
                 booked_at=None, context: selectors.CheckContext | None = None) -> CheckOutcome:
    """Judge one flight or hotel offer for a traveler of ``account`` against the version in force
    at ``booked_at`` (default now). Writes nothing. ``offer`` and ``alternatives`` are dicts (see
    ``flight_offer`` / ``hotel_offer``); field errors are keyed ``offer.fare``, ``alternatives.2.cabin``…
    ``context``: what ``selectors.check_context`` read for this account, traveler and time, when the
    caller judges many offers at once (read once, not per offer)."""
    errors: dict = {}
    if account is None or account.kind != Customer.Kind.COMPANY:
        raise ValidationError({"account": [_("Choose a corporate account.")]})
    if kind not in BookingCheck.Kind.values:
        raise ValidationError({"kind": [_("Choose flight or hotel.")]})
    booked = _when(booked_at, "booked_at", errors, required=False) or timezone.now()
    requested = _when(requested_departure, "requested_departure", errors, required=False)
    if errors:
        raise ValidationError(errors)
    if context is None:
        context = selectors.check_context(account=account, traveler=traveler, at=booked)  # one round trip
    if context is None:
        raise ValidationError({"account": [_("%(account)s has no travel policy in force at that time.") % {
            "account": account.name}]})
    version = context.version
    grade, department = _traveler_profile(account, traveler, context.employment, grade, department)
    if grade:
        try:
            engine.grade_rank(grade)
        except ValueError:
            errors["grade"] = [_("“%(grade)s” is not a job grade: use e.g. P3, M1, D2, E1 or VP1.") % {"grade": grade}]
    parse = flight_offer if kind == BookingCheck.Kind.FLIGHT else hotel_offer
    try:
        judged = parse(offer, prefix="offer", currency=version.currency)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    alternatives = list(alternatives or [])
    if len(alternatives) > MAX_ALTERNATIVES:
        errors["alternatives"] = [_("Give at most %(n)d alternatives.") % {"n": MAX_ALTERNATIVES}]
        alternatives = []
    others = []
    for i, data in enumerate(alternatives):
        try:
            others.append(parse(data, prefix=f"alternatives.{i}", currency=version.currency))
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    policy = documents.to_policy(version.rules, version=version.number, currency=version.currency)
    table = {**context.rates, require_agency().currency: Decimal(1)}
    fx = make_fx(table)
    who = engine.Traveler(grade, department)
    if kind == BookingCheck.Kind.FLIGHT:
        verdict = engine.check_flight(policy, who, judged, alternatives=others, booked_at=booked,
                                      requested_departure=requested, fx=fx)
    else:
        verdict = engine.check_hotel(policy, who, judged, alternatives=others, booked_at=booked, fx=fx)
    return CheckOutcome(verdict=verdict, version=version, kind=kind, offer=judged, grade=grade, department=department,
                        traveler=traveler, booked_at=booked, price=_total(judged, judged, policy.currency, table),
                        cheapest_price=_total(verdict.cheapest_compliant, judged, policy.currency, table))


def _total(offer, judged, currency: str, table: dict) -> Decimal | None:
    """An offer's price in ``currency``; for hotels the stay (nights of the judged offer)."""
    if offer is None:
        return None
    try:
        rate = Decimal(1) if offer.currency == currency else table[offer.currency] / table[currency]
    except (KeyError, ArithmeticError):
        return None
    price = engine.money(offer.price * rate)
    return engine.money(price * judged.nights) if isinstance(offer, engine.HotelOffer) else price


def _offer_json(offer) -> dict:
    if isinstance(offer, engine.FlightOffer):
        return {"carrier": offer.carrier, "flight_numbers": list(offer.flight_numbers), "origin": offer.origin,
                "destination": offer.destination, "departure": offer.departure.isoformat(),
                "arrival": offer.arrival.isoformat(), "duration_minutes": offer.duration_minutes,
                "stops": offer.stops, "cabin": offer.cabin, "fare": str(offer.fare), "currency": offer.currency,
                "distance_km": offer.distance_km}
    return {"chain": offer.chain, "property_name": offer.property_name, "city": offer.city, "country": offer.country,
            "nights": offer.nights, "nightly_rate": str(offer.nightly_rate), "currency": offer.currency,
            "check_in": offer.check_in.isoformat()}


def trip_account(trip: Trip, traveler: Customer) -> Customer | None:
    """The corporate account a traveler travels for on a trip: as recorded on the trip, else the
    trip's buyer when a company, else the traveler's only active employer."""
    row = TripTraveler.objects.filter(trip=trip, customer=traveler).select_related("company").first()
    if row and row.company_id:
        return row.company
    if trip.customer.kind == Customer.Kind.COMPANY:
        return trip.customer
    employers = list(Customer.objects.filter(staff_links__person=traveler, staff_links__active=True,
                                             travel_policy__isnull=False)[:2])
    return employers[0] if len(employers) == 1 else None


@transaction.atomic
def booking_check_record(*, actor: User | None, item: ItineraryItem, traveler: Customer, offer: dict,
                         alternatives=(), requested_departure=None, booked_at=None) -> BookingCheck:
    """Judge a trip's flight or hotel item for one of its travelers, record the verdict and, out of
    policy, ask the approver (or, when the policy forbids it, record it as blocked). Returns the
    check; ``check.approval`` exists when an approval was asked for."""
    trip = item.trip
    if item.kind not in BookingCheck.Kind.values:
        raise ValidationError({"item": [_("Only flights and hotels are checked against a travel policy.")]})
    if traveler is None or not TripTraveler.objects.filter(trip=trip, customer=traveler).exists():
        raise ValidationError({"traveler": [_("Choose one of the trip's travelers.")]})
    account = trip_account(trip, traveler)
    if account is None:
        raise ValidationError({"traveler": [_("%(name)s does not travel for a corporate account with a travel "
                                              "policy on this trip.") % {"name": traveler.name}]})
    outcome = policy_check(account=account, kind=item.kind, offer=offer, alternatives=alternatives,
                           traveler=traveler, requested_departure=requested_departure, booked_at=booked_at)
    if outcome.price is None:
        raise ValidationError({"offer.currency": [_("No exchange rate for %(currency)s: an admin adds it on the "
                                                    "exchange rates page.") % {"currency": outcome.offer.currency}]})
    verdict = outcome.verdict
    BookingCheck.objects.filter(item=item, traveler=traveler, is_current=True).update(is_current=False)
    check = BookingCheck.objects.create(
        trip=trip, item=item, account=account, traveler=traveler, grade=outcome.grade, department=outcome.department,
        version=outcome.version, kind=item.kind, compliant=verdict.compliant, forbidden=verdict.forbidden,
        failed_codes=[r.code for r in verdict.failed], price=outcome.price, cheapest_price=outcome.cheapest_price,
        missed_saving=verdict.missed_saving, currency=verdict.currency, offer=_offer_json(outcome.offer),
        results=outcome.results, booked_at=outcome.booked_at, checked_by=actor)
    agency = require_agency()
    with translation.override(agency.language):
        kind = ("policy_check_in" if verdict.compliant else "policy_check_forbidden" if verdict.forbidden
                else "policy_check_approval")
        _timeline(trip, traveler, actor, Text(kind, item=item.description, name=traveler.name,
                                              version=outcome.version.number))
    if verdict.needs_approval:
        _approval_request(check=check, version=outcome.version, actor=actor)
    return check


def _timeline(trip: Trip, traveler: Customer, actor: User | None, summary: "str | Text") -> None:
    for customer in {trip.customer, traveler}:
        timeline_add(actor=actor, customer=customer, channel=Contact.Channel.TRIP, direction=Contact.Direction.INTERNAL,
                     summary=summary)


# --- approvals ------------------------------------------------------------------------------------

def _first_email(person: Customer | None) -> str:
    if person is None:
        return ""
    return Email.objects.filter(customer=person).order_by("id").values_list("address", flat=True).first() or ""


def approver_for(*, check: BookingCheck, version: PolicyVersion) -> tuple[str, Customer | None, str]:
    """(kind, person, e-mail) of who approves, in the policy's order: the first with an e-mail
    address, else the first found (staff then decide in the app)."""
    kinds = (version.rules.get("approvers") or ["traveler_manager"])
    found = []
    for kind in kinds:
        if kind == Approval.Approver.TRAVELER_MANAGER:
            person = (Employment.objects.filter(company=check.account, person=check.traveler)
                      .select_related("reports_to").first())
            person = person.reports_to if person else None
        else:
            person = version.travel_manager
        if person is not None:
            email = _first_email(person)
            if email:
                return kind, person, email
            found.append((kind, person, ""))
    return found[0] if found else (kinds[0], None, "")


def _approval_request(*, check: BookingCheck, version: PolicyVersion, actor: User | None) -> Approval:
    kind, person, email = approver_for(check=check, version=version)
    approval = Approval.objects.create(booking_check=check, trip=check.trip, account=check.account,
                                       traveler=check.traveler, approver_kind=kind, approver=person,
                                       approver_email=email, requested_by=actor)
    if email:
        from .tasks import send_approval_request

        send_approval_request.delay(approval.pk)
    return approval


def approval_token(approval: Approval) -> str:
    return signing.dumps("policies.approval", approval.pk)


def approval_url(approval: Approval) -> str:
    return require_agency().url(reverse("approval_answer", args=[approval_token(approval)]))


class InvalidApprovalLink(Exception):
    """Tampered with, expired, from another agency, or its approval is gone."""


def approval_from_token(token: str) -> Approval:
    try:
        approval_id = signing.loads("policies.approval", token, max_age=APPROVAL_LINK_MAX_AGE)
        return selectors.approval_queryset().get(pk=int(approval_id))
    except (signing.BadSignature, ValueError, TypeError, Approval.DoesNotExist) as exc:
        raise InvalidApprovalLink(str(exc)) from exc


def approval_email_send(*, approval_id: int) -> bool:
    """E-mail the approver the signed link, once: claimed first; a failed send releases the claim
    (and raises, so the task retries). False if already sent, decided, or without an address."""
    claimed_at = timezone.now()
    claimed = (Approval.objects.filter(pk=approval_id, email_sent_at__isnull=True, status=Approval.Status.PENDING)
               .exclude(approver_email="").update(email_sent_at=claimed_at))
    if not claimed:
        return False
    approval = selectors.approval_queryset().get(pk=approval_id)
    agency = require_agency()
    language = (approval.approver.language if approval.approver else "") or agency.language
    try:
        with translation.override(language):
            context = {"approval": approval, "check": approval.booking_check, "agency": agency,
                       "url": approval_url(approval), "days": APPROVAL_LINK_MAX_AGE.days,
                       "reasons": selectors.failed_reasons(approval.booking_check)}
            subject = render_to_string("policies/email/approval_subject.txt", context).strip()
            body = render_to_string("policies/email/approval.txt", context)
        send_mail(subject, body, None, [approval.approver_email])
    except Exception:
        Approval.objects.filter(pk=approval_id, email_sent_at=claimed_at).update(email_sent_at=None)
        raise
    return True


class AlreadyDecided(ValidationError):
    def __init__(self, approval: Approval):
        super().__init__(_("This approval was already decided (%(status)s).") % {
            "status": approval.get_status_display().lower()}, code="already_decided")


def can_decide(user: User, approval: Approval) -> bool:
    """Staff who manage policies may record a decision, but not on an approval they asked for."""
    return user.can(Cap.POLICIES_MANAGE) and approval.requested_by_id != user.pk


def approval_decide(*, approval: Approval, decision: str, comment: str = "", actor: User | None = None,
                    by_link: bool = False) -> Approval:
    """Approve or reject, once. In the app ``actor`` decides (policy managers, never the requester);
    through the e-mailed link (``by_link``) the approver person does."""
    if not by_link and (actor is None or not can_decide(actor, approval)):
        raise PermissionDenied(_("Only a policy manager other than the requester can decide this approval."))
    errors = {}
    if decision not in (Approval.Status.APPROVED, Approval.Status.REJECTED):
        errors["decision"] = [_("Approve or reject.")]
    comment = (comment or "").strip()
    if decision == Approval.Status.REJECTED and not comment:
        errors["comment"] = [_("Say why it is rejected.")]
    if len(comment) > 2000:
        errors["comment"] = [_("Please keep the comment under 2,000 characters.")]
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    with transaction.atomic():
        claimed = Approval.objects.filter(pk=approval.pk, status=Approval.Status.PENDING).update(
            status=decision, comment=comment, decided_at=now,
            decided_by=None if by_link else actor, decided_by_person=approval.approver if by_link else None,
            decided_via=Approval.Via.EMAIL if by_link else Approval.Via.APP)
        approval = selectors.approval_queryset().get(pk=approval.pk)
        if not claimed:
            raise AlreadyDecided(approval)
        agency = require_agency()
        with translation.override(agency.language):
            trip, check = approval.trip, approval.booking_check
            values = {"item": check.item.description if check.item else trip.title, "name": approval.traveler.name,
                      "status": approval.get_status_display().lower()}
            # Decided by a link with no approver's name: "the approver", in the reader's language too.
            entry = Text("approval_decided_note", item=values["item"], name=values["name"], status=approval.status,
                         who=str(approval.decider or ""), comment=comment or "")
            summary = str(entry)
            _timeline(trip, approval.traveler, None if by_link else actor, entry)
            task_create(actor=None, title=_("Approval %(status)s: %(item)s for %(name)s") % values,
                        owner=trip.owner, due_at=now, kind=Task.Kind.APPROVAL, customer=trip.customer, trip=trip,
                        notes=summary, note=(entry.kind, entry.params), key=f"approval-decided:{approval.pk}",
                        text=texts.store("approval_decided", status=approval.status, item=values["item"],
                                         name=values["name"]))
    return approval
