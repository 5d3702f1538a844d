from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RetentionConfig(AppConfig):
    """Personal data erasure (GDPR Art. 17, PIPL Art. 47) and the agency's retention policy."""

    name = "crm.retention"
    label = "retention"
    verbose_name = _("Erasure and retention")
