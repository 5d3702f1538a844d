"""Customer-value jobs (R-VAL-1, R-VAL-3): thin; the service does the work."""

from caravan.tenancy.tasks import agency_job

from . import services


@agency_job("value.compute")
def compute() -> dict:
    """Nightly: every customer's RFM scores and lifetime value, and the agency's model fit."""
    return services.value_run()
