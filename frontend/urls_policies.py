"""Agency pages for crm.policies (see frontend/views/policies.py)."""

urlpatterns = []
