"""API routes for crm.value, under /api/v1/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("value/customers", api.CustomerValueViewSet, basename="customer-value")
router.register("value/warnings", api.WarningViewSet, basename="value-warning")

urlpatterns = [
    path("value/summary/", api.SummaryView.as_view(), name="value_summary"),
    path("value/settings/", api.SettingsView.as_view(), name="value_settings"),
    path("value/recompute/", api.RecomputeView.as_view(), name="value_recompute"),
    *router.urls,
]
