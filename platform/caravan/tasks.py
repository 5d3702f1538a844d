"""The watchdog of long jobs' leases (``caravan.leases``): platform jobs every minute, agency jobs
fanned out (``tenants.jobs``) to the agencies where a lease is due to run out."""
from celery import shared_task
from django_tenants.utils import get_public_schema_name, schema_context

from . import leases
from .tenancy.tasks import PlatformTask, agency_job


@shared_task(base=PlatformTask, name="caravan.leases_watchdog")
def platform_watchdog() -> dict:
    """Resume (or give up) agency exports and feed runs whose worker died."""
    with schema_context(get_public_schema_name()):
        return leases.watchdog(public=True)


@agency_job(leases.WATCHDOG, next_due=leases.next_due)
def agency_watchdog() -> dict:
    """Resume (or give up) this agency's imports, customer exports and tier recomputes whose worker died."""
    return leases.watchdog(public=False)
