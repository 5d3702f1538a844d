from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    """Marketing consent and e-mail campaigns to segments (R-CAMP-2, R-CAMP-3)."""

    name = "crm.campaigns"
    label = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self):
        from crm.segments import filters

        from .consent import segment_filter

        filters.register(segment_filter())  # "may receive marketing e-mail", in segment definitions
