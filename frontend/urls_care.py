"""Agency pages for crm.care (see frontend/views/care.py)."""
from django.urls import path  # noqa: F401

urlpatterns = []
