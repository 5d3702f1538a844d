from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    """Personal data: the access log (who saw which customer's data) and the per-customer export."""

    name = "crm.privacy"
    label = "privacy"
    verbose_name = _("Personal data")
