"""Agency pages for crm.visits (see frontend/views/visits.py)."""

urlpatterns = []
