from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TiersConfig(AppConfig):
    """Service tiers, their nightly assignment and service-level clocks (R-TIER-1 … R-TIER-3)."""

    name = "crm.tiers"
    label = "tiers"
    verbose_name = _("Service levels")
