"""API routes for crm.proposals, under /api/v1/."""
from django.urls import path

from . import api

urlpatterns = [
    path("trips/<int:pk>/proposals/", api.TripProposalsView.as_view(), name="trip_proposals"),
]
