"""API routes for crm.visits, under /api/v1/."""

urlpatterns = []
