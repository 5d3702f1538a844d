from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelineConfig(AppConfig):
    """Leads and opportunities, stages, assignment, follow-up tasks (R-SALE-1, 2, 6; R-INT-4)."""

    name = "crm.pipeline"
    label = "pipeline"
    verbose_name = _("Pipeline")
