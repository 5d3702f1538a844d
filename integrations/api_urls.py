"""Inventory API routes, under /api/v1/ on agency hosts."""
from django.urls import path

from . import api

urlpatterns = [
    path("inventory/hotels/", api.HotelSearchView.as_view(), name="inventory_hotels"),
    path("inventory/flights/", api.FlightSearchView.as_view(), name="inventory_flights"),
    path("trips/<int:pk>/inventory/", api.TripInventoryView.as_view(), name="trip_inventory"),
]
