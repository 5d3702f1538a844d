"""Agency pages for crm.tiers (see frontend/views/tiers.py)."""

urlpatterns = []
