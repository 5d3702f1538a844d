"""Proposal jobs: thin; the services do the work and are idempotent."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask

from . import services


@shared_task(base=AgencyTask, name="proposals.send_confirmation", autoretry_for=(OSError,), retry_backoff=True,
             max_retries=8)
def send_confirmation(acceptance_id: int) -> bool:
    """The acceptance's confirmation e-mail with the accepted proposal's PDF; never twice (claimed first)."""
    return services.confirmation_send(acceptance_id=acceptance_id)
