"""Visit-plan jobs (R-TIER-4): thin; the services do the work and are idempotent."""

from caravan.tenancy.tasks import agency_job

from . import services


@agency_job("visits.generate_slots")
def generate_slots() -> dict:
    """Daily: every plan's visit slots for the next five weeks as tasks (made once each)."""
    return services.plans_sync()
