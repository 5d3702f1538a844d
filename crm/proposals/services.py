"""Proposals: sending a quote to the customer, and the customer accepting it (issue 21).

``proposal_send`` freezes the trip as the customer will read it (``snapshot_of``: no costs, margins or
suppliers' internals), supersedes the open version, and mails a portal invitation that opens the
proposal (``crm.portal.services.invitation_send``). ``proposal_accept`` records what the customer
accepted — the hash of what their page showed must equal the proposal's, and the trip must still be the
quote that was sent (a fresh snapshot hashes the same) — then wins the opportunity exactly as staff's
"won" does, writes the timeline and the owner's task, and queues the confirmation e-mail with the PDF.
"""
import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap
from caravan import formatting, texts
from caravan.money import CENT, parse_money
from caravan.tenancy import require_agency
from caravan.texts import Text
from crm.customers.models import Contact, Customer, Employment
from crm.customers.services import timeline_add
from crm.pipeline.models import Stage
from crm.pipeline.services import opportunity_move, stage_of, task_create
from crm.portal.models import SignInLink
from crm.portal.services import brand_name, invitation_send, portal_settings
from crm.trips.models import Trip
from crm.trips.services import agency_today, trip_confirm

from .models import Acceptance, Proposal

NAME_MAX = 200
AGENT_MAX = 400


# --- the snapshot ------------------------------------------------------------------------------------

def _lines(text) -> list[str]:
    if isinstance(text, (list, tuple)):
        return [str(line).strip() for line in text if str(line).strip()]
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _cents(amount) -> str:
    return str(Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP))


def snapshot_of(trip: Trip, *, included, excluded, terms: str, deposit: Decimal | None = None,
                deposit_percent: int | None = None, brand: dict | None = None) -> dict:
    """The trip as the customer is shown it now. Dates ISO, amounts strings of cents: the same content
    always gives the same canonical JSON. ``deposit`` is staff's; else ``deposit_percent`` of the total."""
    items = list(trip.items.order_by("starts_on", "id"))
    total = sum((item.sell for item in items), Decimal("0"))
    if deposit is None:
        percent = portal_settings().deposit_percent if deposit_percent is None else deposit_percent
        deposit_value = total * Decimal(percent) / 100
    else:
        percent, deposit_value = None, deposit
    if brand is None:
        row = portal_settings()
        brand = {"name": brand_name(row), "email": row.contact_email, "phone": row.contact_phone,
                 "hours": row.contact_hours}
    travelers = trip.travelers.select_related("customer").order_by("-is_lead", "id")
    return {
        "reference": trip.reference,
        "title": trip.title,
        "destination": trip.destination,
        "depart_on": trip.depart_on.isoformat() if trip.depart_on else None,
        "return_on": trip.return_on.isoformat() if trip.return_on else None,
        "travelers": [t.customer.name for t in travelers],
        "items": [{"kind": item.kind, "description": item.description,
                   "starts_on": item.starts_on.isoformat() if item.starts_on else None,
                   "ends_on": item.ends_on.isoformat() if item.ends_on else None,
                   "sell": _cents(item.sell)} for item in items],
        "total": _cents(total),
        "currency": trip.currency,
        "deposit": _cents(deposit_value),
        "deposit_percent": percent,
        "balance_due_on": trip.balance_due_on.isoformat() if trip.balance_due_on else None,
        "included": _lines(included),
        "excluded": _lines(excluded),
        "terms": (terms or "").strip(),
        "brand": brand,
    }


def content_hash(snapshot: dict) -> str:
    """SHA-256 of the snapshot's canonical JSON (keys sorted, no spaces, UTF-8)."""
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def fresh_hash(proposal: Proposal) -> str:
    """The hash the proposal would have if it were sent now with the same words, deposit rule and
    branding: different from ``proposal.content_hash`` exactly when the quote itself changed."""
    shown = proposal.snapshot
    deposit = Decimal(shown["deposit"]) if shown.get("deposit_percent") is None else None
    return content_hash(snapshot_of(proposal.trip, included=shown["included"], excluded=shown["excluded"],
                                    terms=shown["terms"], deposit=deposit, deposit_percent=shown.get("deposit_percent"),
                                    brand=shown["brand"]))


def quote_changed(proposal: Proposal | None) -> bool:
    """Staff's warning: the trip is still a quote and no longer what the latest open proposal shows."""
    return (proposal is not None and proposal.superseded_at is None and proposal.trip.status == Trip.Status.QUOTE
            and not accepted(proposal) and fresh_hash(proposal) != proposal.content_hash)


def expired(proposal: Proposal) -> bool:
    """Past its ``valid_until`` (a day of the agency's calendar; the last day still counts)."""
    return proposal.valid_until is not None and proposal.valid_until < agency_today()


def accepted(proposal: Proposal) -> bool:
    try:
        return proposal.acceptance is not None
    except Acceptance.DoesNotExist:
        return False


# --- sending ------------------------------------------------------------------------------------------

def recipients(trip: Trip) -> list[Customer]:
    """Who a proposal may go to: the trip's customer, the bookers of a corporate customer, and the trip's
    travelers — the people among them with an e-mail address on their card, in that order."""
    bookers = [e.person for e in Employment.objects.filter(company_id=trip.customer_id, is_booker=True, active=True)
               .select_related("person").order_by("id")]
    people = [trip.customer] + bookers + [t.customer for t in
                                          trip.travelers.select_related("customer").order_by("-is_lead", "id")]
    seen, found = set(), []
    for person in people:
        if person.pk in seen or person.kind != Customer.Kind.PERSON or person.merged_into_id is not None:
            continue
        seen.add(person.pk)
        if person.emails.exists():
            found.append(person)
    return found


def _check_sendable(trip: Trip) -> None:
    if trip.status != Trip.Status.QUOTE:
        raise ValidationError({"trip": [_("Only a quote gets a proposal; this trip is %(status)s.")
                                        % {"status": trip.get_status_display().lower()}]})
    if trip.opportunity_id is not None and trip.opportunity.stage.is_closed:
        raise ValidationError({"trip": [_("The opportunity of this quote is closed.")]})


def proposal_send(*, actor: User, trip: Trip, included, excluded, terms: str, message: str = "",
                  deposit_amount=None, recipient: Customer | None = None, email: str = "",
                  valid_until=None) -> Proposal:
    """Send the quote as a new proposal version (``Cap.PIPELINE_WORK``), superseding the open one, and
    mail ``recipient`` (default: the first of :func:`recipients`) a portal invitation that opens it."""
    if not actor.can(Cap.PIPELINE_WORK):
        raise PermissionDenied
    with transaction.atomic():
        trip = Trip.objects.select_for_update(of=("self",)).select_related("opportunity__stage").get(pk=trip.pk)
        _check_sendable(trip)
        allowed = recipients(trip)
        if recipient is None:
            recipient = allowed[0] if allowed else None
        if recipient is None or recipient.pk not in {p.pk for p in allowed}:
            raise ValidationError({"recipient": [_("Send the proposal to the customer or a traveler of this trip who "
                                                   "has an e-mail address on their card.")]})
        if not trip.items.exists():
            raise ValidationError({"trip": [_("Add the quote's items before sending a proposal.")]})
        if valid_until is not None and valid_until < agency_today():
            raise ValidationError({"valid_until": [_("A proposal cannot be valid only until a day already past.")]})
        deposit = None
        if deposit_amount not in (None, ""):
            deposit = parse_money(deposit_amount, field="deposit_amount", allow_zero=True)
        snapshot = snapshot_of(trip, included=included, excluded=excluded, terms=terms, deposit=deposit)
        if deposit is not None and deposit > Decimal(snapshot["total"]):
            raise ValidationError({"deposit_amount": [_("The deposit cannot be more than the total.")]})
        now = timezone.now()
        Proposal.objects.filter(trip=trip, superseded_at__isnull=True).update(superseded_at=now)
        version = (Proposal.objects.filter(trip=trip).aggregate(n=Max("version"))["n"] or 0) + 1
        email = email or recipient.emails.values_list("address", flat=True).first()
        proposal = Proposal.objects.create(
            trip=trip, version=version, snapshot=snapshot, content_hash=content_hash(snapshot),
            message=(message or "").strip(), recipient=recipient, recipient_email=email, sent_by=actor, sent_at=now,
            valid_until=valid_until)
        timeline_add(actor=actor, customer=recipient, channel=Contact.Channel.PORTAL,
                     direction=Contact.Direction.OUTBOUND,
                     summary=Text("proposal_sent", version=version, trip=trip.title, email=email))
        # The invitation (mailed inside: a refused mail sends no proposal) opens the proposal, not the trip.
        link = invitation_send(actor=actor, customer=recipient, email=email, trip=trip, note=proposal.message)
        SignInLink.objects.filter(pk=link.pk).update(next_path=reverse("portal:proposal", args=[trip.pk]))
    return proposal


# --- accepting ----------------------------------------------------------------------------------------

def proposal_accept(*, customer: Customer, proposal: Proposal, typed_name: str, agreed: bool, shown_hash: str,
                    address: str | None = None, user_agent: str = "") -> Acceptance:
    """The customer accepts the proposal their page showed (``shown_hash``). Refused, with field errors:
    not ticked, no name typed, a superseded or already accepted proposal, a page that showed other content,
    or a quote that changed since it was sent. Wins the opportunity as staff's "won" does (no opportunity:
    the trip is confirmed), with ``actor=None``."""
    from . import tasks  # the task module imports these services

    with transaction.atomic():
        proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
        trip = Trip.objects.select_for_update(of=("self",)).select_related("opportunity__stage").get(pk=proposal.trip_id)
        proposal.trip = trip
        typed_name = " ".join((typed_name or "").split())[:NAME_MAX]
        errors = {}
        if Acceptance.objects.filter(proposal=proposal).exists():
            raise ValidationError({"proposal": [_("This proposal was already accepted.")]})
        if not agreed:
            errors["agreed"] = [_("Tick the box to accept the terms.")]
        if not typed_name:
            errors["typed_name"] = [_("Type your full name to accept.")]
        if proposal.superseded_at is not None:
            errors["proposal"] = [_("Your travel consultant sent a newer version of this proposal: read that one.")]
        elif expired(proposal):
            errors["proposal"] = [_("This proposal was valid until %(day)s: ask your travel consultant for a new one.")
                                  % {"day": formatting.day(proposal.valid_until)}]
        elif shown_hash != proposal.content_hash:
            errors["proposal"] = [_("The proposal changed while you were reading it: read it again.")]
        elif trip.status != Trip.Status.QUOTE or (trip.opportunity_id and trip.opportunity.stage.is_closed):
            errors["proposal"] = [_("This quote can no longer be accepted.")]
        elif fresh_hash(proposal) != proposal.content_hash:
            errors["proposal"] = [_("Your travel consultant changed the quote after sending this proposal; they will "
                                    "send you the new version.")]
        if errors:
            raise ValidationError(errors)
        acceptance = Acceptance.objects.create(
            proposal=proposal, customer=customer, typed_name=typed_name, agreed=True, at=timezone.now(),
            address=address or None, user_agent=(user_agent or "")[:AGENT_MAX], content_hash=shown_hash)
        if trip.opportunity_id is not None:  # exactly staff's "won": the trip follows (pipeline hook)
            opportunity_move(actor=None, opportunity=trip.opportunity, to=stage_of(Stage.Kind.WON))
        else:
            trip_confirm(actor=None, trip=trip)
        timeline_add(actor=None, customer=customer, channel=Contact.Channel.PORTAL,
                     direction=Contact.Direction.INBOUND,
                     summary=Text("proposal_accepted", version=proposal.version, trip=trip.title, name=typed_name))
        task_create(actor=None, title="", text=texts.store("proposal_accepted_task", trip=trip.title),
                    owner=trip.owner, due_at=timezone.now(), customer=trip.customer, trip=trip,
                    opportunity=trip.opportunity, key=f"proposal-accepted:{acceptance.pk}")
        tasks.send_confirmation.delay(acceptance.pk)  # an AgencyTask: queued on commit
    return acceptance


def confirmation_send(*, acceptance_id: int) -> bool:
    """Mail the customer who accepted the confirmation with the accepted proposal's PDF, once: the row is
    claimed (``confirmation_sent_at``) before sending, and released when the mail server refused it."""
    from . import pdf

    claimed = Acceptance.objects.filter(pk=acceptance_id, confirmation_sent_at__isnull=True).update(
        confirmation_sent_at=timezone.now())
    if not claimed:
        return False
    acceptance = Acceptance.objects.select_related("proposal__trip", "customer").get(pk=acceptance_id)
    proposal, customer = acceptance.proposal, acceptance.customer
    address = proposal.recipient_email if proposal.recipient_id == customer.pk else ""
    address = address or customer.emails.values_list("address", flat=True).first()
    if not address:
        return False
    agency = require_agency()
    row = portal_settings()
    try:
        with translation.override(customer.language or agency.language), timezone.override(agency.time_zone):
            context = {"customer": customer, "acceptance": acceptance, "proposal": proposal,
                       "brand": proposal.snapshot["brand"]["name"], "title": proposal.snapshot["title"],
                       "url": agency.url(reverse("portal:proposal", args=[proposal.trip_id]))}
            subject = render_to_string("proposals/email/accepted_subject.txt", context).strip()
            body = render_to_string("proposals/email/accepted.txt", context)
            document = pdf.proposal_pdf(proposal)
            filename = f"{proposal.snapshot['reference']}-v{proposal.version}.pdf"
        message = EmailMessage(subject, body, None, [address],
                               reply_to=[row.contact_email] if row.contact_email else None)
        message.attach(filename, document, "application/pdf")
        message.send()
    except Exception:
        Acceptance.objects.filter(pk=acceptance_id).update(confirmation_sent_at=None)  # the retry sends it
        raise
    return True
