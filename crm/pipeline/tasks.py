"""Pipeline jobs: thin; the services do the work and are idempotent."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask
from tenants.jobs import services as agency_jobs

from . import services


@shared_task(base=AgencyTask, name="pipeline.send_task_reminders", autoretry_for=(OSError,), retry_backoff=True,
             max_retries=5)
def send_task_reminders() -> int:
    """The reminders that came due, each e-mailed once (queued when one is due)."""
    with agency_jobs.run("pipeline.send_task_reminders") as job:
        result = services.task_reminders_send()
        job.next_at = services.task_reminders_next_due()
    return result
