"""API routes for crm.campaigns, under /api/v1/."""
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("campaign-templates", api.TemplateViewSet, basename="campaign-template")
router.register("campaigns", api.CampaignViewSet, basename="campaign")
router.register("consents", api.ConsentViewSet, basename="consent")

urlpatterns = router.urls
