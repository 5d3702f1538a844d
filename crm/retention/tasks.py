"""The retention policy's periodic job (fanned out by ``caravan.fan_out``, due times in ``tenants.jobs``)."""
from caravan.tenancy.tasks import agency_job

from . import services
from .models import RetentionRun


@agency_job("retention.run", next_due=services.retention_next_due)
def run_retention() -> dict:
    """Delete the travel documents that are due and anonymise inactive customers (if the agency chose
    so); the report is a ``RetentionRun``."""
    run = services.retention_run(trigger=RetentionRun.Trigger.SCHEDULE)
    return {"documents": run.documents_deleted, "customers": run.customers_anonymised, "remaining": run.remaining}
