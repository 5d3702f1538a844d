"""Who may receive marketing e-mail (R-CAMP-2): the one place campaigns and care greetings ask.

A customer may be mailed when they opted in, have not unsubscribed since, their address has not
hard-bounced, they are not a merged-away record, and they have an e-mail address."""
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy

from crm.customers.models import Customer, Email
from crm.segments import filters as segment_filters

from .models import Consent


def emailable(customers: QuerySet | None = None) -> QuerySet:
    """``customers`` (default: all) narrowed to those who may receive marketing e-mail."""
    customers = Customer.objects.all() if customers is None else customers
    return customers.filter(merged_into__isnull=True, consent__email_opt_in=True, consent__unsubscribed_at__isnull=True,
                            consent__bounced_at__isnull=True).filter(
        Exists(Email.objects.filter(customer=OuterRef("pk"))))


def may_email(customer: Customer) -> bool:
    return emailable(Customer.objects.filter(pk=customer.pk)).exists()


def _emailable_narrow(customers: QuerySet, value: bool, today) -> QuerySet:
    if value:
        return emailable(customers)
    return customers.exclude(pk__in=emailable().values("pk"))


def segment_filter() -> segment_filters.Filter:
    """The segment filter ``emailable`` (docs/segments.md), added to the segments' by CampaignsConfig.ready()."""
    return segment_filters.Filter("emailable", "contact", gettext_lazy("May receive marketing e-mail"),
                                  segment_filters.yes_or_no, _emailable_narrow, segment_filters.yes_no)


@transaction.atomic
def consent_set(customer: Customer, *, opt_in: bool, source: str = Consent.Source.STAFF, at=None) -> Consent:
    """Record an opt-in (clears an earlier unsubscribe or bounce) or an opt-out."""
    at = at or timezone.now()
    consent, _ = Consent.objects.select_for_update().get_or_create(customer=customer)
    consent.email_opt_in, consent.updated_at, consent.source = opt_in, at, source
    if opt_in:
        consent.opted_in_at, consent.unsubscribed_at, consent.bounced_at, consent.bounce_reason = at, None, None, ""
    else:
        consent.unsubscribed_at = consent.unsubscribed_at or at
    consent.save()
    return consent


@transaction.atomic
def unsubscribe(customer: Customer, *, at=None) -> Consent:
    """The customer followed an unsubscribe link: no more marketing e-mail until they opt in again."""
    at = at or timezone.now()
    consent, _ = Consent.objects.select_for_update().get_or_create(customer=customer)
    if consent.unsubscribed_at is None:
        consent.unsubscribed_at, consent.updated_at = at, at
        consent.save(update_fields=["unsubscribed_at", "updated_at"])
    return consent


def bounced(customer: Customer, *, reason: str, at=None) -> Consent:
    """A hard bounce: the address is not mailed again until the customer opts in anew."""
    at = at or timezone.now()
    consent, _ = Consent.objects.get_or_create(customer=customer)
    Consent.objects.filter(pk=consent.pk).update(bounced_at=at, bounce_reason=reason[:300], updated_at=at)
    consent.refresh_from_db()
    return consent
