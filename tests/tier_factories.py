"""Test data for the tier tests (no tests here). Rows are written inside ``tenant_context``."""
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from crm.tiers import services
from crm.tiers.models import ServiceTier
from crm.trips.models import ItineraryItem, Trip



def tier(name: str, **fields) -> ServiceTier:
    """A tier ranked below the existing ones; criteria and service as given."""
    return services.tier_save(actor=None, name=name, **fields)


def ladder() -> dict[str, ServiceTier]:
    """Gold (≥ 100,000 a year), Silver (≥ 20,000 a year or 3 trips… here: ≥ 20,000), Standard (everyone)."""
    return {
        "gold": tier("Gold", color="#c9a227", min_spend_12m=Decimal("100000"), dedicated_manager=True,
                     lead_response_hours=2, request_response_hours=4, complaint_response_hours=1),
        "silver": tier("Silver", color="#9ca3af", min_spend_12m=Decimal("20000"), lead_response_hours=8,
                       request_response_hours=24, complaint_response_hours=4),
        "standard": tier("Standard", color="#64748b", lead_response_hours=24, request_response_hours=48,
                         complaint_response_hours=24),
    }


def booking(buyer, amount, *, days_ago: int = 10, status: str = Trip.Status.CONFIRMED, at=None, lines: int = 1,
            confirmed: bool = True) -> Trip:
    """A trip of ``buyer`` confirmed ``days_ago`` (or ``at``), with ``lines`` items summing to ``amount``."""
    moment = at or timezone.now() - timedelta(days=days_ago)
    made = Trip.objects.create(customer=buyer, title="Booking", currency="CNY", status=status,
                               confirmed_at=moment if confirmed else None, created_at=moment)
    amount = Decimal(str(amount))
    share = (amount / lines).quantize(Decimal("0.01"))
    for n in range(lines):
        sell = share if n < lines - 1 else amount - share * (lines - 1)
        ItineraryItem.objects.create(trip=made, kind=ItineraryItem.Kind.OTHER, description=f"Line {n + 1}",
                                     cost=sell / 2, sell=sell)
    return made
