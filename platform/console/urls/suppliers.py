"""The operators' supplier and feed pages (namespace ``integrations``)."""
from django.urls import path

from ..views import suppliers as views

app_name = "integrations"
urlpatterns = [
    path("suppliers/", views.SupplierListView.as_view(), name="suppliers"),
    path("suppliers/new/", views.SupplierFormView.as_view(), name="supplier_create"),
    path("suppliers/<int:pk>/", views.SupplierFormView.as_view(), name="supplier_edit"),
    path("suppliers/<int:supplier_pk>/feeds/new/", views.FeedFormView.as_view(), name="feed_create"),
    path("feeds/<int:pk>/", views.FeedDetailView.as_view(), name="feed"),
    path("feeds/<int:pk>/edit/", views.FeedFormView.as_view(), name="feed_edit"),
    path("feeds/runs/<int:pk>/", views.RunDetailView.as_view(), name="run"),
]
