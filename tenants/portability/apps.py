from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortabilityConfig(AppConfig):
    name = "tenants.portability"
    label = "portability"
    verbose_name = _("Export, restore and deletion of agencies")
