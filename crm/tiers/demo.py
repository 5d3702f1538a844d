"""Demo service tiers for ``seed_demo``: Platinum, Gold, Silver and Standard, then the assignment."""
from decimal import Decimal

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django_tenants.utils import tenant_context

from . import services
from .models import ServiceTier

# Thresholds in CNY; other currencies are scaled by a rough factor so the demo looks plausible.
_SCALE = {"CNY": Decimal(1), "HKD": Decimal("1.1"), "USD": Decimal("0.14"), "EUR": Decimal("0.13"),
          "GBP": Decimal("0.11"), "JPY": Decimal(20), "SGD": Decimal("0.19")}


def _tiers(currency: str) -> list[dict]:
    scale = _SCALE.get(currency, Decimal(1))

    def money(amount: int) -> Decimal:
        return (Decimal(amount) * scale).quantize(Decimal(1))

    return [
        {"name": _("Platinum"), "color": "#334155", "min_spend_12m": money(500000), "dedicated_manager": True,
         "lead_response_hours": 1, "request_response_hours": 2, "complaint_response_hours": 1,
         "visit_cadence": ServiceTier.Cadence.WEEKLY, "outreach_days": 14,
         "perks": _("Airport VIP lounge, free date changes, 24/7 hotline")},
        {"name": _("Gold"), "color": "#b8860b", "min_spend_12m": money(150000), "dedicated_manager": True,
         "lead_response_hours": 4, "request_response_hours": 8, "complaint_response_hours": 4,
         "visit_cadence": ServiceTier.Cadence.MONTHLY, "outreach_days": 30, "perks": _("Free seat selection")},
        {"name": _("Silver"), "color": "#6b7280", "min_spend_12m": money(30000), "min_trips_12m": 2,
         "lead_response_hours": 8, "request_response_hours": 24, "complaint_response_hours": 8,
         "visit_cadence": ServiceTier.Cadence.QUARTERLY, "outreach_days": 90},
        {"name": _("Standard"), "color": "#0f766e", "lead_response_hours": 24, "request_response_hours": 48,
         "complaint_response_hours": 24},
    ]


def seed_tiers(agency) -> dict:
    """Add the four demo tiers (in the agency's language and currency) if the agency has none,
    then assign every customer its tier. Returns the assignment's counts."""
    with tenant_context(agency), translation.override(agency.language):
        if not ServiceTier.objects.exists():
            with transaction.atomic():
                for fields in _tiers(agency.currency):
                    services.tier_save(actor=None, **fields)
        return services.assignment_run()
