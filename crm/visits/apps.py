from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VisitsConfig(AppConfig):
    """Key-account visit plans and visit records (R-TIER-4)."""

    name = "crm.visits"
    label = "visits"
    verbose_name = _("Key-account visits")
