"""API routes for crm.retention, under /api/v1/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("erasures", api.ErasureViewSet, basename="erasure")
router.register("retention/runs", api.RunViewSet, basename="retention-run")

urlpatterns = [
    path("customers/<int:pk>/erase/", api.CustomerEraseView.as_view(), name="customer-erase"),
    path("retention/policy/", api.PolicyView.as_view(), name="retention-policy"),
    path("retention/preview/", api.PreviewView.as_view(), name="retention-preview"),
    *router.urls,
]
