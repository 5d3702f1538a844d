from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ValueConfig(AppConfig):
    """Customer value: RFM scores, historical and predicted lifetime value (R-VAL-1, R-VAL-3)."""

    name = "crm.value"
    label = "value"
    verbose_name = _("Customer value")
