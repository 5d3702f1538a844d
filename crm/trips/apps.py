from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TripsConfig(AppConfig):
    """Quotes that become trips: travelers, itinerary, payments, document checklists (R-SALE-3 … 5)."""

    name = "crm.trips"
    label = "trips"
    verbose_name = _("Trips")
