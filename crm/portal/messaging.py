"""Messages between a customer and the agency in the portal (issue 21).

A conversation is one person's, about one trip (or in general: ``trip`` None). Messages are per person: a
fellow traveler on someone else's trip writes in a conversation of their own and never reads the buyer's;
staff see every conversation on the trip page and the card.

- ``message_from_customer``: the message, an inbound entry on the card's timeline (the customer's own
  words, channel "Customer portal"), the tier's request clock started as for an inbound request
  (``crm.tiers.services.clock_start``, key ``request:<contact id>``), and a task for the trip's owner (else
  the account manager) due when the clock says, else by 18:00 today.
- ``message_reply``: staff (``Cap.PIPELINE_WORK`` or ``Cap.COMPLAINTS_HANDLE``) answer; an outbound entry on
  the timeline, the customer's running clocks answered as an outbound message answers them
  (``crm.tiers.services.clocks_on_contact``), the conversation's tasks done, and an e-mail queued
  (``crm.portal.tasks.send_message_email``, sent once: ``emailed_at`` is claimed before sending).
"""
from datetime import datetime, time

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap
from caravan import texts
from caravan.clients import rate_hit
from caravan.tenancy import require_agency
from crm.customers.models import Contact, Customer
from crm.customers.services import contact_add, customer_live, timeline_add
from crm.pipeline.models import Task
from crm.pipeline.services import task_create
from crm.tiers import services as tiers
from crm.tiers.models import ServiceClock
from crm.trips.models import Trip

from . import selectors
from .models import Message
from .services import brand_name, portal_settings

BODY_MAX = 4000
PER_HOUR = (20, 60 * 60)  # messages a customer may send in an hour (caravan.clients.rate_hit)
DUE_HOUR = time(18, 0)
TASK_KEY = "portal-message:{pk}"


def can_reply(user: User) -> bool:
    return user.can(Cap.PIPELINE_WORK) or user.can(Cap.COMPLAINTS_HANDLE)


def _clean_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": [_("Write your message.")]})
    if len(body) > BODY_MAX:
        raise ValidationError({"body": [_("Please keep a message under 4,000 characters.")]})
    return body


def thread(customer: Customer, trip: Trip | None) -> QuerySet:
    """One person's conversation about ``trip`` (None: in general), oldest first."""
    return Message.objects.filter(customer=customer, trip=trip).select_related("staff")


def _owner(customer: Customer, trip: Trip | None) -> User | None:
    for candidate in (trip.owner if trip is not None else None, customer.owner):
        if candidate is not None and candidate.is_active:
            return candidate
    return None


def _due(clock: ServiceClock | None):
    if clock is not None:
        return clock.due_at
    agency = require_agency()
    with timezone.override(agency.time_zone):
        today = timezone.make_aware(datetime.combine(timezone.localdate(), DUE_HOUR))
    return max(today, timezone.now())


# --- the customer writes --------------------------------------------------------------------------

def message_from_customer(*, customer: Customer, trip: Trip | None, body: str) -> Message:
    """A message the signed-in customer wrote (the page has checked ``trip`` is one they see)."""
    body = _clean_body(body)
    if trip is not None and not selectors.visible_trips(customer).filter(pk=trip.pk).exists():
        raise ValidationError({"trip": [_("Choose one of your trips.")]})
    if rate_hit(f"portal-message:{customer.pk}", limit=PER_HOUR[0], window=PER_HOUR[1]):
        raise ValidationError({"body": [_("You have sent many messages in the last hour. Please wait a little, "
                                          "or call us.")]})
    with transaction.atomic():
        customer_live(customer)
        message = Message.objects.create(customer=customer, trip=trip, direction=Message.Direction.FROM_CUSTOMER,
                                         body=body)
        # The customer's own words on the timeline: not a system text.
        contact = timeline_add(actor=None, customer=customer, channel=Contact.Channel.PORTAL,
                               direction=Contact.Direction.INBOUND, summary=body, at=message.at)
        owner = _owner(customer, trip)
        # As an inbound request starts the tier's first-response clock (crm.tiers.services.clocks_on_contact).
        clock = tiers.clock_start(kind=ServiceClock.Kind.REQUEST, customer=contact.customer,
                                  key=f"request:{contact.pk}", started_at=contact.at, owner=owner, contact=contact)
        waiting = Task.objects.filter(customer=customer, trip=trip, key__startswith="portal-message:",
                                      done_at__isnull=True).exists()
        if not waiting:  # one open task per conversation: the reply closes it
            text = (texts.store("portal_message_trip", name=customer.name, trip=trip.title) if trip is not None
                    else texts.store("portal_message", name=customer.name))
            task_create(actor=None, title="", text=text, owner=owner, due_at=_due(clock), customer=customer, trip=trip,
                        notes=body[:1000], key=TASK_KEY.format(pk=message.pk))
    return message


def messages_read_by_customer(*, customer: Customer, trip: Trip | None) -> int:
    """The customer opened the conversation: the agency's messages in it are read."""
    return thread(customer, trip).filter(direction=Message.Direction.TO_CUSTOMER, read_at__isnull=True).update(
        read_at=timezone.now())


# --- staff answer ---------------------------------------------------------------------------------

def message_reply(*, actor: User, customer: Customer, trip: Trip | None, body: str) -> Message:
    """Staff answer a customer's conversation (also to start one)."""
    if not can_reply(actor):
        raise PermissionDenied
    body = _clean_body(body)
    if customer.kind != Customer.Kind.PERSON:
        raise ValidationError({"customer": [_("Write to a person.")]})
    if trip is not None and not selectors.visible_trips(customer).filter(pk=trip.pk).exists():
        raise ValidationError({"customer": [_("This person does not see this trip in the portal.")]})
    with transaction.atomic():
        customer_live(customer)
        message = Message.objects.create(customer=customer, trip=trip, direction=Message.Direction.TO_CUSTOMER,
                                         body=body, staff=actor)
        contact = contact_add(actor=actor, customer=customer, channel=Contact.Channel.PORTAL,
                              direction=Contact.Direction.OUTBOUND, summary=body, at=message.at)
        # As an outbound message from staff answers the customer's running clocks.
        ServiceClock.objects.filter(customer_id=customer.pk, responded_at__isnull=True,
                                    started_at__lte=contact.at).update(responded_at=contact.at, responded_by=actor)
        asked = thread(customer, trip).filter(direction=Message.Direction.FROM_CUSTOMER)
        Task.objects.filter(key__in=[TASK_KEY.format(pk=pk) for pk in asked.values_list("pk", flat=True)],
                            done_at__isnull=True).update(done_at=message.at, done_by=actor)
        asked.filter(read_at__isnull=True).update(read_at=message.at)
        from .tasks import send_message_email

        send_message_email.delay(message.pk)  # on commit (AgencyTask)
    return message


def messages_read_by_staff(*, actor: User, customer: Customer, trip: Trip | None) -> int:
    """Someone who may answer opened the conversation: the customer's messages in it are read."""
    if not can_reply(actor):
        return 0
    return thread(customer, trip).filter(direction=Message.Direction.FROM_CUSTOMER, read_at__isnull=True).update(
        read_at=timezone.now())


def message_email_send(*, message_id: int) -> bool:
    """E-mail the customer that the agency answered, with a link into the portal; once (``emailed_at`` is
    claimed first and released if the mail server refuses, so a retry sends it). False when already sent
    or when the customer has no address."""
    claimed_at = timezone.now()
    claimed = Message.objects.filter(pk=message_id, direction=Message.Direction.TO_CUSTOMER,
                                     emailed_at__isnull=True).update(emailed_at=claimed_at)
    if not claimed:
        return False
    message = Message.objects.select_related("customer", "trip", "staff").get(pk=message_id)
    address = message.customer.emails.values_list("address", flat=True).first()
    if not address:  # nowhere to write: the answer waits in the portal
        Message.objects.filter(pk=message_id, emailed_at=claimed_at).update(emailed_at=None)
        return False
    agency = require_agency()
    row = portal_settings()
    path = reverse("portal:trip", args=[message.trip_id]) if message.trip_id else reverse("portal:messages")
    try:
        with translation.override(message.customer.language or agency.language), timezone.override(agency.time_zone):
            context = {"message": message, "customer": message.customer, "trip": message.trip, "brand": brand_name(row),
                       "portal": row, "url": agency.url(path)}
            subject = render_to_string("portal/email/message_subject.txt", context).strip()
            text = render_to_string("portal/email/message.txt", context)
        EmailMultiAlternatives(subject, text, None, [address],
                               reply_to=[row.contact_email] if row.contact_email else None).send()
    except Exception:
        Message.objects.filter(pk=message_id, emailed_at=claimed_at).update(emailed_at=None)
        raise
    return True


# --- reading --------------------------------------------------------------------------------------

def conversations_of(customer: Customer) -> list[dict]:
    """The customer's conversations, newest first: trip (or None), last message, unread answers."""
    rows = (Message.objects.filter(customer=customer).values("trip").annotate(
        last=Max("at"), unread=Count("pk", filter=Q(direction=Message.Direction.TO_CUSTOMER, read_at__isnull=True)))
        .order_by("-last"))
    trips = {t.pk: t for t in Trip.objects.filter(pk__in=[r["trip"] for r in rows if r["trip"]])}
    return [{"trip": trips.get(r["trip"]), "last": r["last"], "unread": r["unread"]} for r in rows]


def unread_answers(customer: Customer) -> QuerySet:
    return Message.objects.filter(customer=customer, direction=Message.Direction.TO_CUSTOMER, read_at__isnull=True)


def trip_conversations(trip: Trip) -> list[tuple[Customer, list[Message]]]:
    """Staff: each person's conversation about the trip."""
    found: dict[int, tuple[Customer, list[Message]]] = {}
    for message in Message.objects.filter(trip=trip).select_related("customer", "staff"):
        found.setdefault(message.customer_id, (message.customer, []))[1].append(message)
    return list(found.values())


def customer_conversations(customer: Customer) -> list[tuple[Trip | None, list[Message]]]:
    """Staff: the person's conversations (by trip), newest first."""
    found: dict[int | None, tuple[Trip | None, list[Message]]] = {}
    for message in Message.objects.filter(customer=customer).select_related("trip", "staff"):
        found.setdefault(message.trip_id, (message.trip, []))[1].append(message)
    return sorted(found.values(), key=lambda pair: pair[1][-1].at, reverse=True)


def unread_for_staff(user: User) -> QuerySet:
    """Customers' messages nobody answered or opened yet, on the user's trips or customers."""
    return (Message.objects.filter(direction=Message.Direction.FROM_CUSTOMER, read_at__isnull=True)
            .filter(Q(trip__owner=user) | Q(trip__isnull=True, customer__owner=user)
                    | Q(trip__owner__isnull=True, customer__owner=user))
            .select_related("customer", "trip"))


def dashboard_context(*, user: User) -> dict:
    """What the dashboard shows (template: frontend/portal_messages/_dashboard.html): customers' portal messages
    nobody who may answer has opened yet — the user's own (their trips, else their customers), everyone's for
    those who see everyone's pipeline."""
    if not can_reply(user):
        return {}
    unread = (Message.objects.filter(direction=Message.Direction.FROM_CUSTOMER, read_at__isnull=True)
              .select_related("customer", "trip").order_by("at")
              if user.can(Cap.PIPELINE_MANAGE) else unread_for_staff(user).order_by("at"))
    return {"portal_unread": list(unread[:10]), "portal_unread_count": unread.count(),
            "portal_trip_links": user.can(Cap.PIPELINE_WORK)}
