"""Only the agency API, for the agency OpenAPI schema (pages are left out of it)."""
from django.urls import include, path

from .urls_tenant import api_v1

urlpatterns = [path("api/v1/", include((api_v1, "api"), namespace="api"))]
