"""The signed-in customer's trips: the home page and one trip's page (the areas add their panels)."""
from django.utils import timezone
from django.views.generic import TemplateView

from crm.trips.models import Trip

from ..base import PortalPage
from ..panels import home_notices, trip_panels


class HomeView(PortalPage, TemplateView):
    template_name = "portal/home.html"

    def get_context_data(self, **kwargs):
        today = timezone.localdate()
        trips = list(self.trips().select_related("customer"))
        ahead = [t for t in trips if t.status != Trip.Status.CANCELLED and (t.return_on is None or t.return_on >= today)]
        past = [t for t in trips if t not in ahead]
        return {**super().get_context_data(**kwargs), "ahead": ahead, "past": past,
                "notices": home_notices(self, trips)}


class TripView(PortalPage, TemplateView):
    template_name = "portal/trip.html"

    def get_context_data(self, **kwargs):
        trip = self.trip(self.kwargs["pk"])
        items = list(trip.items.order_by("starts_on", "id"))
        travelers = list(trip.travelers.select_related("customer").order_by("-is_lead", "id"))
        return {**super().get_context_data(**kwargs), "trip": trip, "items": items, "travelers": travelers,
                "panels": trip_panels(self, trip)}
