"""API routes for crm.destinations, under /api/v1/destinations/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("destinations/articles", api.ArticleViewSet, basename="destination_article")
router.register("destinations/attachments", api.AttachmentViewSet, basename="destination_attachment")
router.register("destinations/imports", api.ArticleImportViewSet, basename="destination_import")

urlpatterns = [
    path("destinations/shared/", api.SharedListView.as_view(), name="destination_shared_list"),
    path("destinations/shared/<int:pk>/", api.SharedDetailView.as_view(), name="destination_shared"),
    path("destinations/shared/<int:pk>/copy/", api.SharedCopyView.as_view(), name="destination_shared_copy"),
    *router.urls,
]
