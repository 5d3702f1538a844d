"""Service-tier jobs (R-TIER-2, R-TIER-3): thin; the services do the work and are idempotent."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask, agency_job

from . import services


@agency_job("tiers.assign_nightly", next_due=services.assignment_next_due)
def assign_nightly() -> dict | None:
    """From 02:00 in the agency's time zone, once a day, assign every customer its tier."""
    return services.assignment_nightly()


@shared_task(base=AgencyTask, name="tiers.assign_now")
def assign_tiers_now() -> dict:
    """"Recompute now", asked for by an admin: the same assignment, at once, under the request's lease."""
    return services.recompute_run()


@agency_job("tiers.check_clocks", next_due=services.clocks_next_due, autoretry_for=(OSError,), retry_backoff=True,
            max_retries=5)
def check_clocks() -> dict:
    """Near-breaches and breaches of first-response targets, notified once (queued when one is due)."""
    return services.clocks_check()
