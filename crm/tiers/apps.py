from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TiersConfig(AppConfig):
    """Service tiers, their nightly assignment and service-level clocks (R-TIER-1 … R-TIER-3)."""

    name = "crm.tiers"
    label = "tiers"
    verbose_name = _("Service levels")

    def ready(self):
        """Clocks start and stop on the other apps' hooks; the tier shows in the screen pop."""
        from crm.care import hooks as care_hooks
        from crm.customers import hooks as customers_hooks, screen_pop
        from crm.pipeline import hooks as pipeline_hooks

        from . import screen_pop as tiers_screen_pop, services

        customers_hooks.contact_added.connect(services.clocks_on_contact)
        pipeline_hooks.lead_received.connect(services.lead_clock_start)
        pipeline_hooks.opportunity_moved.connect(services.lead_clock_stop)
        care_hooks.complaint_logged.connect(services.complaint_clock_start)
        care_hooks.complaint_status_set.connect(services.complaint_clock_stop)
        screen_pop.register(tiers_screen_pop.part())
