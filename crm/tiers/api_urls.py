"""API routes for crm.tiers, under /api/v1/."""

urlpatterns = []
