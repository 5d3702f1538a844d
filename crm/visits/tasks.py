"""Visit-plan jobs (R-TIER-4): thin; the services do the work and are idempotent."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask
from tenants.jobs import services as agency_jobs

from . import services


@shared_task(base=AgencyTask, name="visits.generate_slots")
def generate_slots() -> dict:
    """Daily: every plan's visit slots for the next five weeks as tasks (made once each)."""
    with agency_jobs.run("visits.generate_slots"):
        return services.plans_sync()
