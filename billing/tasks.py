"""Billing jobs, on the platform side (public schema, ``PlatformTask``): apply a received Stripe
event, the hourly re-check that moves agencies whose trial or grace period ran out, and dunning mail."""
from celery import shared_task
from django.utils import timezone

from caravan.tenancy.tasks import PlatformTask

from . import services


@shared_task(base=PlatformTask, name="billing.process_event", bind=True, max_retries=8, default_retry_delay=30)
def process_event(self, event_id: str) -> str:
    """Retried with back-off while Stripe or the database is unreachable; the event stays stored
    (unprocessed) after the last attempt, and ``refresh_agencies`` catches the agency up anyway."""
    try:
        return services.event_process(event_id)
    except Exception as exc:  # noqa: BLE001 — every failure is retried, then left for the hourly job
        from .models import StripeEvent

        StripeEvent.objects.filter(event_id=event_id).update(last_error=repr(exc)[:300])
        raise self.retry(exc=exc, countdown=min(30 * 2 ** self.request.retries, 3600))


@shared_task(base=PlatformTask, name="billing.refresh_agencies")
def refresh_agencies() -> dict:
    """Every hour: time-based moves (trial over, grace period over), seat counts caught up with the
    staff, and a read of every subscription, so a lost webhook delays a change by an hour at most."""
    from tenants.models import Agency

    from .models import BillingAccount

    moved = 0
    for agency in Agency.objects.agencies().exclude(status=Agency.Status.CANCELLED):
        before = agency.status
        subscribed = BillingAccount.objects.unscoped().filter(agency=agency).exclude(stripe_subscription_id="")
        if subscribed.exists():
            services.seats_follow_staff(agency)
        if subscribed.exists() or agency.trial_ends_at and agency.trial_ends_at <= timezone.now():
            services.refresh(agency)
            agency.refresh_from_db(fields=["status"])
            moved += agency.status != before
    return {"moved": moved}


@shared_task(base=PlatformTask, name="billing.notify_admins", bind=True, max_retries=5, default_retry_delay=300)
def notify_admins(self, agency_id: int, status: str) -> int:
    """E-mail the agency's admins that a payment failed (past due) or that the agency is suspended."""
    from django.conf import settings
    from django_tenants.utils import tenant_context

    from accounts.models import User
    from accounts.roles import Role
    from caravan.mail import mail_each
    from tenants.models import Agency

    agency = Agency.objects.get(pk=agency_id)
    with tenant_context(agency):
        admins = list(User.objects.filter(role=Role.ADMIN, is_active=True))
        try:
            return mail_each(admins, template="billing/email/dunning", agency=agency, context={
                "status": status, "grace_days": settings.BILLING_GRACE_DAYS, "url": agency.url("/settings/billing/")})
        except OSError as exc:  # the mail server is away: try again later
            raise self.retry(exc=exc)
