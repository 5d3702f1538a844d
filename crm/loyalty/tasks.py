"""Care-automation jobs (R-CARE-3 … 5, R-CAMP-4): thin; the services do the work and are idempotent."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask, agency_job

from . import services

RETRY_SECONDS = 300


@agency_job("loyalty.greetings", next_due=services.daily_next_due)
def daily_care() -> dict:
    """Hourly check; once a day from the greeting hour (agency time): greetings, holiday suggestions,
    win-back cases, referral qualification. Greeting e-mails not sent yet are retried at every check."""
    return services.daily_run()


@shared_task(base=AgencyTask, name="loyalty.send_greetings", bind=True, max_retries=8)
def send_greetings(self, greeting_ids: list[int]) -> int:
    """Send a batch of greeting e-mails over one connection; those the server refused are retried later."""
    counts = services.greetings_send(ids=greeting_ids)
    if counts["failed"]:
        failed = list(services.pending_greetings().filter(pk__in=greeting_ids).values_list("id", flat=True))
        if failed:
            raise self.retry(args=[failed], countdown=RETRY_SECONDS)
    return counts["sent"]
