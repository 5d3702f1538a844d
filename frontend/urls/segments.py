"""Agency pages for crm.segments (see frontend/views/segments.py)."""
from django.urls import path

from ..views import segments

urlpatterns = [
    path("segments/", segments.SegmentListView.as_view(), name="segment_list"),
    path("segments/new/", segments.SegmentBuilderView.as_view(), name="segment_create"),
    path("segments/count/", segments.SegmentCountView.as_view(), name="segment_count_fragment"),
    path("segments/preview/", segments.SegmentPreviewView.as_view(), name="segment_preview_fragment"),
    path("segments/<int:pk>/", segments.SegmentDetailView.as_view(), name="segment_detail"),
    path("segments/<int:pk>/edit/", segments.SegmentBuilderView.as_view(), name="segment_edit"),
    path("segments/<int:pk>/delete/", segments.SegmentDeleteView.as_view(), name="segment_delete"),
    path("segments/<int:pk>/customers.csv", segments.SegmentExportView.as_view(), name="segment_export"),
]
