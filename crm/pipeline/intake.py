"""Leads from outside: the signed website webhook and the public enquiry form (R-SALE-1, R-INT-4).

Webhook contract (docs/integrations.md): ``POST /api/v1/webhooks/website/`` with a JSON event
``{"id", "type", "created", "data"}`` and the header ``X-Caravan-Signature: t=<unix>,v1=<hex>``
where ``v1 = HMAC-SHA256(secret, "<t>." + raw body)`` with the agency's own secret. A signature
older than ``caravan.signatures.TOLERANCE`` is refused (replays of a captured request), and an event id that was
accepted before is answered again without writing anything (senders retry).

The enquiry form: a honeypot field, a signed time stamp (a bot that posts at once, or a form
replayed a day later, is refused) and a per-address rate limit in the agency's cache.
"""
import time

from django.core.cache import cache
from django.db import connection, transaction
from django.utils.translation import gettext as _

from caravan import signing
from caravan.clients import client_address  # noqa: F401  (re-exported: the enquiry form's address)
from caravan.db.prepared import execute_prepared_all
from caravan.signatures import TOLERANCE, BadSignature, Verifier  # noqa: F401  (TOLERANCE, BadSignature: re-exported)
from crm.customers import rows, services as crm_services
from crm.customers.models import ChangeLog, Customer

from . import services
from .models import InboundEvent, Opportunity

FORM_MIN_SECONDS, FORM_MAX_AGE = 3, 24 * 3600
FORM_LIMIT, FORM_WINDOW = 5, 600  # submissions per client address per window (seconds)


def signature_check(*, header: str, body: bytes, secret: str | None, now: float | None = None) -> None:
    """Raise :class:`BadSignature` unless ``header`` signs ``body`` with ``secret`` recently."""
    if not secret:
        raise BadSignature("This agency has no webhook secret yet.")
    verifier = Verifier(header=header, secret=secret, now=now)
    verifier.update(body)
    verifier.check()


def event_handle(*, event_id: str, kind: str, data: dict) -> tuple[InboundEvent, bool]:
    """Apply a verified, validated event once. Returns (event, applied); ``applied`` is False for an
    event id seen before, in which case nothing is written.

    The event id is claimed first, ``INSERT … ON CONFLICT (event_id) DO NOTHING``: the same event
    delivered twice at the same moment waits for the first delivery's transaction and then finds its
    row. Everything after runs in this one transaction without savepoints of its own: any error rolls
    all of it back, the claim included."""
    with transaction.atomic(savepoint=False):
        ahead = crm_services.duplicates_ahead(phones=[data.get("phone", "")], emails=[data.get("email", "")])
        event, rules = _event_claim(event_id=event_id, kind=kind, ahead=ahead)
        if event is None:
            return InboundEvent.objects.get(event_id=event_id), False
        if kind == "member.signed_up":
            customer, _created = services.customer_for_contact(
                name=data["name"], phone=data.get("phone", ""), email=data.get("email", ""),
                source=Customer.Source.WEBSITE, via=ChangeLog.Via.API, language=data.get("language", ""), ahead=ahead)
            if data.get("member_id") and not customer.external_ref:
                crm_services.customer_update(actor=None, via=ChangeLog.Via.API, customer=customer,
                                             external_ref=data["member_id"])
            event.customer = customer
            _event_link(event)
        else:  # the opportunity's statement links the event (lead_take_in's ``event``)
            services.lead_take_in(
                source=Opportunity.Source.WEBSITE, name=data["name"], phone=data.get("phone", ""),
                email=data.get("email", ""), destination=data.get("destination", ""),
                depart_on=data.get("depart_on"), return_on=data.get("return_on"), adults=data.get("adults", 1),
                children=data.get("children", 0), budget=data.get("budget"), message=data.get("message", ""),
                language=data.get("language", ""), event=event, rules=rules, ahead=ahead)
        return event, True


def _event_claim(*, event_id: str, kind: str,
                 ahead: crm_services.DuplicatesAhead | None = None) -> tuple[InboundEvent | None, list | None]:
    """The new event's row, or None when this event id was accepted before; and for an enquiry, the
    active assignment rules its lead will need, read in the same round trip (statements in one
    message, each prepared once per connection: the claim's, then ``services.active_rules_sql``'s,
    then ``ahead``'s, whose ``matches`` it sets: the customer's duplicates, read after the claim)."""
    event = InboundEvent(event_id=event_id, kind=kind)
    insert, params = rows.insert_sql(event)
    claim = f"{insert} ON CONFLICT (event_id) DO NOTHING RETURNING id"
    enquiry = kind != "member.signed_up"
    statements = [(claim, params)]
    if enquiry:
        statements.append((services.active_rules_sql(), []))
    if ahead is not None:
        statements.append((ahead.sql, ahead.params))
    with connection.cursor() as cursor:
        execute_prepared_all(cursor, statements)
        row = cursor.fetchone()
        found = cursor.fetchall() if enquiry and cursor.nextset() else None
        duplicates = cursor.fetchall() if ahead is not None and cursor.nextset() else None
    if row is None:
        return None, None
    if ahead is not None:
        ahead.matches = crm_services.duplicates_read(duplicates)
    return rows.inserted(event, row[0]), (services.active_rules_read(found) if enquiry else None)


def _event_link(event: InboundEvent) -> None:
    """The customer and opportunity the event made, on its row."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {connection.ops.quote_name(InboundEvent._meta.db_table)} "
                       "SET customer_id = %s, opportunity_id = %s WHERE id = %s",
                       [event.customer_id, event.opportunity_id, event.pk])


# --- the enquiry form ------------------------------------------------------------------------------

def form_stamp() -> str:
    """Put in the form when it is shown; checked when it comes back."""
    return signing.dumps("pipeline.enquiry-form", time.time())


def form_spam_reason(*, stamp: str, honeypot: str, now: float | None = None) -> str | None:
    """Why this submission looks automated, or None."""
    if honeypot:
        return "honeypot"
    try:
        shown = float(signing.loads("pipeline.enquiry-form", stamp or "", max_age=FORM_MAX_AGE))
    except (signing.BadSignature, TypeError, ValueError):
        return "stamp"
    if (now or time.time()) - shown < FORM_MIN_SECONDS:
        return "too_fast"
    return None


def form_rate_limited(client_address: str) -> bool:
    """Count this submission; True once the address went over the limit in the window. The cache
    key carries the agency's schema (the cache's key function), so agencies never share counts."""
    key = f"pipeline:enquiry:{client_address}"
    cache.add(key, 0, FORM_WINDOW)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, FORM_WINDOW)
        count = 1
    return count > FORM_LIMIT


def form_unavailable_message() -> str:
    return _("Online enquiries are closed at the moment. Please call us.")
