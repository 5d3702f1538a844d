"""An agency's own supplier feeds, under its settings."""
from django.urls import path

from ..views import suppliers

app_name = "agency_feeds"
urlpatterns = [
    path("settings/suppliers/", suppliers.AgencyFeedListView.as_view(), name="list"),
    path("settings/suppliers/<int:supplier_pk>/connect/", suppliers.AgencyFeedFormView.as_view(), name="feed_create"),
    path("settings/suppliers/feeds/<int:pk>/", suppliers.AgencyFeedDetailView.as_view(), name="feed"),
    path("settings/suppliers/feeds/<int:pk>/edit/", suppliers.AgencyFeedFormView.as_view(), name="feed_edit"),
    path("settings/suppliers/runs/<int:pk>/", suppliers.AgencyRunDetailView.as_view(), name="run"),
]
