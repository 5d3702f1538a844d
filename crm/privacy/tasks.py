"""Personal-data jobs (agency schema)."""
from caravan.tenancy.tasks import agency_job

from . import services


@agency_job("privacy.prune_access_log", next_due=services.access_log_next_prune)
def prune_access_log() -> int:
    """Nightly: access log entries older than ACCESS_LOG_RETENTION_DAYS go (one DELETE)."""
    return services.access_log_prune()
