"""API routes for crm.trips, under /api/v1/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("trips", api.TripViewSet, basename="trip")
router.register("trip-items", api.ItemViewSet, basename="trip-item")
router.register("travelers", api.TravelerViewSet, basename="traveler")
router.register("checklist-items", api.ChecklistItemViewSet, basename="checklist-item")

urlpatterns = router.urls + [
    path("opportunities/<int:pk>/quote/", api.OpportunityQuoteView.as_view(), name="opportunity_quote"),
]
