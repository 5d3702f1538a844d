"""Online payments' jobs: apply a webhook event from the agency's Stripe account (retried)."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask

from . import services


@shared_task(base=AgencyTask, name="checkout.process_event", bind=True, max_retries=8, default_retry_delay=30)
def process_event(self, event_id: str) -> str:
    """Retried with back-off while Stripe or the database is unreachable; the event stays stored."""
    try:
        return services.event_process(event_id)
    except Exception as exc:  # noqa: BLE001 — every failure is retried
        from .models import CheckoutEvent

        CheckoutEvent.objects.filter(event_id=event_id).update(last_error=repr(exc)[:300])
        raise self.retry(exc=exc, countdown=min(30 * 2 ** self.request.retries, 3600))
