"""Agency pages for crm.pipeline (see frontend/views/pipeline.py)."""
from django.urls import path  # noqa: F401

urlpatterns = []
