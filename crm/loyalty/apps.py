from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    """Customer care automation: greetings, holiday suggestions, win-back, referrals (R-CARE-3 … 5, R-CAMP-4)."""

    name = "crm.loyalty"
    label = "loyalty"
    verbose_name = _("Customer care automation")
