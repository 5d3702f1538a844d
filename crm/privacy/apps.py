from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    """Personal data: the access log (who saw which customer's data) and the per-customer export."""

    name = "crm.privacy"
    label = "privacy"
    verbose_name = _("Personal data")

    def ready(self):
        from crm.customers.hooks import customer_data_seen

        from .services import access_record

        # The customers core announces every access to a customer's data; this logs it (one INSERT).
        customer_data_seen.connect(access_record)
