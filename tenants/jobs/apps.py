from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AgencyJobsConfig(AppConfig):
    name = "tenants.jobs"
    label = "agency_jobs"
    verbose_name = _("Agency jobs")
    default_auto_field = "django.db.models.BigAutoField"
