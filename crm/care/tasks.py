"""Care jobs (R-CARE-1, R-CARE-2): thin; the services do the work and are idempotent."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask, agency_job

from . import services

RETRY_SECONDS = 300


@agency_job("care.after_trip", next_due=services.after_trip_next_due)
def after_trip() -> dict:
    """After the agency's midnight: after-trip call tasks and surveys for trips that came back, then the survey e-mails."""
    return services.after_trip_run()


@shared_task(base=AgencyTask, name="care.send_surveys", bind=True, max_retries=8)
def send_surveys(self, survey_ids: list[int]) -> int:
    """Send a batch of survey e-mails; those the mail server refused are retried later, alone."""
    sent, failed = services.surveys_send(survey_ids=survey_ids)
    if failed:
        raise self.retry(args=[failed], countdown=RETRY_SECONDS)
    return sent


@shared_task(base=AgencyTask, name="care.send_survey", autoretry_for=(OSError,), retry_backoff=True, max_retries=8)
def send_survey(survey_id: int) -> bool:
    """Send one survey e-mail (e.g. when staff ask for it again); never twice."""
    return services.survey_send(survey_id=survey_id)


@agency_job("care.escalate_complaints", next_due=services.complaints_next_due, autoretry_for=(OSError,),
            retry_backoff=True, max_retries=5)
def escalate_complaints() -> int:
    """Complaints past their deadline go to the managers, once (queued when one is due)."""
    return services.complaints_escalate()
