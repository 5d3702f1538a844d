from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = _("Agencies")

    def ready(self):
        from . import signals  # noqa: F401  (connects the host-cache invalidation)
