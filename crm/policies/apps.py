from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PoliciesConfig(AppConfig):
    """Corporate travel policies, policy checks and approvals (R-POL-1 … R-POL-3)."""

    name = "crm.policies"
    label = "policies"
    verbose_name = _("Travel policies")
