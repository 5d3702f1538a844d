from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ValueConfig(AppConfig):
    """Customer value: RFM scores, historical and predicted lifetime value (R-VAL-1, R-VAL-3)."""

    name = "crm.value"
    label = "value"
    verbose_name = _("Customer value")

    def ready(self):
        from crm.customers import list_filters

        from .selectors import customer_list_filters

        for f in customer_list_filters():  # segment, quadrant and rfm on the customer list
            list_filters.register(f)
