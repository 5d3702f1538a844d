"""API routes for crm.policies, under /api/v1/."""

urlpatterns = []
