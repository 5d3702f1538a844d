"""Per-agency API rate limit following the plan (``Plan.api_requests_per_minute``).

A fixed one-minute window counted in Redis through the cache, whose key function carries the
agency's schema: every API request on an agency host counts against that agency, whoever sends it.
Over the limit DRF answers 429 with ``Retry-After`` (the seconds left in the window) and the API's
error body. The platform domain (operators) is not limited here.
"""
import time

from django.conf import settings
from django.db.models import Case, Q, Subquery, When
from rest_framework.throttling import BaseThrottle

from caravan.clients import rate_hit
from caravan.tenancy import current_agency

from .models import BillingAccount, Plan

WINDOW = 60
# Each agency's limit as this process last read it: schema -> (read at, limit). Read again after a
# window, so a plan change applies within a minute, as it did when this was a Redis entry (one round
# trip on every API request, for a number that changes once in months).
_limits: dict[str, tuple[float, int]] = {}


def agency_rate_limit(agency) -> int:
    """Requests per minute for ``agency``: its plan's, else API_RATE_PER_MINUTE (0: unlimited)."""
    now = time.monotonic()
    read_at, limit = _limits.get(agency.schema_name, (None, 0))
    if read_at is None or now - read_at >= WINDOW:
        limit = _plan_rate(agency) or settings.API_RATE_PER_MINUTE
        _limits[agency.schema_name] = (now, limit)
    return limit


def forget_rate_limits() -> None:
    """Read every agency's limit afresh at its next request (tests that change a plan or the setting)."""
    _limits.clear()


def _plan_rate(agency) -> int | None:
    """The plan's rate in one read-only query (as ``services.plan_of``: the subscription's plan, else
    the one the agency was onboarded on). Billing's tables are in public, which every search_path has."""
    subscribed = BillingAccount.objects.unscoped().filter(agency_id=agency.pk).values("plan_id")[:1]
    return (Plan.objects.filter(Q(pk=Subquery(subscribed)) | Q(code=agency.plan))
            .order_by(Case(When(pk=Subquery(subscribed), then=0), default=1))
            .values_list("api_requests_per_minute", flat=True).first())


class AgencyPlanThrottle(BaseThrottle):
    def allow_request(self, request, view):
        self._wait = None
        agency = current_agency()
        if agency is None:
            return True
        limit = agency_rate_limit(agency)
        if not limit:
            return True
        wait = rate_hit("api-rate", limit=limit, window=WINDOW)
        if wait:
            self._wait = wait
            return False
        return True

    def wait(self):
        return self._wait
