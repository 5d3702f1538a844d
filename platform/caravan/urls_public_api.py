"""Only the operator API, for the operator OpenAPI schema."""
from django.urls import include, path

from .urls_public import operator_api

urlpatterns = [path("api/operator/", include((operator_api, "operator_api"), namespace="operator_api"))]
