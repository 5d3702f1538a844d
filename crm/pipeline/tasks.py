"""Pipeline jobs: thin; the services do the work and are idempotent."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask

from . import services


@shared_task(base=AgencyTask, name="pipeline.send_task_reminders", autoretry_for=(OSError,), retry_backoff=True,
             max_retries=5)
def send_task_reminders() -> int:
    """Every five minutes: the reminders that came due, each e-mailed once."""
    return services.task_reminders_send()
