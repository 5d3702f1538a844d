"""Agency pages for crm.trips (see frontend/views/trips.py)."""
from django.urls import path  # noqa: F401

urlpatterns = []
