"""Customer-value jobs (R-VAL-1, R-VAL-3): thin; the service does the work."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask
from tenants.jobs import services as agency_jobs

from . import services


@shared_task(base=AgencyTask, name="value.compute")
def compute() -> dict:
    """Nightly: every customer's RFM scores and lifetime value, and the agency's model fit."""
    with agency_jobs.run("value.compute"):
        return services.value_run()
