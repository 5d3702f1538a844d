"""Reading the access log: one filtered list for the agency-wide page, the customer's section and the API."""
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from accounts.roles import Cap

from .models import AccessEntry


def _start_of(day: date) -> datetime:
    """Midnight of ``day`` on the agency's clock (the active time zone)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def access_log(*, customer=None, user=None, what: str = "", via: str = "", date_from: date | None = None,
               date_to: date | None = None) -> QuerySet:
    """Entries newest first, narrowed by each filter given (``customer`` and ``user`` as rows or ids;
    dates inclusive, agency time)."""
    entries = AccessEntry.objects.select_related("user", "customer")
    if customer is not None:
        entries = entries.filter(customer=customer)
    if user is not None:
        entries = entries.filter(user=user)
    if what:
        entries = entries.filter(what=what)
    if via:
        entries = entries.filter(via=via)
    if date_from:
        entries = entries.filter(at__gte=_start_of(date_from))
    if date_to:
        entries = entries.filter(at__lt=_start_of(date_to + timedelta(days=1)))
    return entries.order_by("-at", "-id")


def card_context(*, customer, user) -> dict:
    """What the customer card's personal-data section needs (no query)."""
    return {"privacy_sees_log": user.can(Cap.ACCESS_LOG_VIEW),
            "privacy_can_export": user.can(Cap.PERSONAL_DATA_EXPORT)}
