"""Pipeline jobs: thin; the services do the work and are idempotent."""

from caravan.tenancy.tasks import agency_job

from . import services


@agency_job("pipeline.send_task_reminders", next_due=services.task_reminders_next_due, autoretry_for=(OSError,),
            retry_backoff=True, max_retries=5)
def send_task_reminders() -> int:
    """The reminders that came due, each e-mailed once (queued when one is due)."""
    return services.task_reminders_send()
