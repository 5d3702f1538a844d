from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TripsConfig(AppConfig):
    """Quotes that become trips: travelers, itinerary, payments, document checklists (R-SALE-3 … 5)."""

    name = "crm.trips"
    label = "trips"
    verbose_name = _("Trips")

    def ready(self):
        from crm.customers import screen_pop
        from crm.pipeline import hooks as pipeline_hooks

        from . import screen_pop as trips_screen_pop, services

        pipeline_hooks.opportunity_moved.connect(services.trip_follow_opportunity)
        screen_pop.register(trips_screen_pop.part())
