"""The portal's jobs: thin; the services do the work and are idempotent."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask

from . import messaging


@shared_task(base=AgencyTask, name="portal.send_message_email", autoretry_for=(OSError,), retry_backoff=True,
             max_retries=8)
def send_message_email(message_id: int) -> bool:
    """E-mail the customer that staff answered in the portal; never twice (``messaging.message_email_send``)."""
    return messaging.message_email_send(message_id=message_id)
