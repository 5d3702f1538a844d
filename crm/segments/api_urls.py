"""API routes for crm.segments, under /api/v1/."""
from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("segments", api.SegmentViewSet, basename="segment")

urlpatterns = [
    # Before the router, so "count" is never read as a segment id.
    re_path(r"^segments/count/?$", api.SegmentCountView.as_view(), name="segment_count"),
    *router.urls,
]
