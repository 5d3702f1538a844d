"""Service-tier jobs (R-TIER-2, R-TIER-3): thin; the services do the work and are idempotent."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask
from tenants.jobs import services as agency_jobs

from . import services


@shared_task(base=AgencyTask, name="tiers.assign_nightly")
def assign_nightly() -> dict | None:
    """Hourly check: from 02:00 in the agency's time zone, once a day, assign every customer its tier."""
    with agency_jobs.run("tiers.assign_nightly") as job:
        result = services.assignment_nightly()
        job.next_at = services.assignment_next_due()
    return result


@shared_task(base=AgencyTask, name="tiers.assign_now")
def assign_tiers_now() -> dict:
    """"Recompute now", asked for by an admin: the same assignment, at once."""
    return services.assignment_run()


@shared_task(base=AgencyTask, name="tiers.check_clocks", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def check_clocks() -> dict:
    """Near-breaches and breaches of first-response targets, notified once (queued when one is due)."""
    with agency_jobs.run("tiers.check_clocks") as job:
        result = services.clocks_check()
        job.next_at = services.clocks_next_due()
    return result
