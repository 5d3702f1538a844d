from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CareConfig(AppConfig):
    """After the trip: follow-up, satisfaction surveys, complaints (R-CARE-1, R-CARE-2)."""

    name = "crm.care"
    label = "care"
    verbose_name = _("After-sales care")

    def ready(self):
        from crm.customers import screen_pop

        from . import screen_pop as care_screen_pop

        screen_pop.register(care_screen_pop.part())
