"""API routes for crm.policies, under /api/v1/."""
from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("travel-policies", api.TravelPolicyViewSet, basename="travel-policy")
router.register("booking-checks", api.BookingCheckViewSet, basename="booking-check")
router.register("approvals", api.ApprovalViewSet, basename="approval")

urlpatterns = [
    re_path(r"^policy-check/?$", api.PolicyCheckView.as_view(), name="policy_check"),
    *router.urls,
]
