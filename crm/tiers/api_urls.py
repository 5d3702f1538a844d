"""API routes for crm.tiers, under /api/v1/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("service-tiers", api.ServiceTierViewSet, basename="service-tier")
router.register("customer-tiers", api.CustomerTierViewSet, basename="customer-tier")
router.register("service-clocks", api.ServiceClockViewSet, basename="service-clock")

urlpatterns = [path("tier-settings/", api.TierSettingsAPIView.as_view(), name="tier-settings"), *router.urls]
