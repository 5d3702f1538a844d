"""API routes for crm.trips, under /api/v1/."""
from django.urls import path  # noqa: F401

urlpatterns = []
