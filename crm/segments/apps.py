from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentsConfig(AppConfig):
    """Customer segments for campaigns (R-CAMP-1): filters on profile, behaviour, preferences and value."""

    name = "crm.segments"
    label = "segments"
    verbose_name = _("Segments")
