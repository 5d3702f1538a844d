"""API routes for crm.care, under /api/v1/."""
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("complaints", api.ComplaintViewSet, basename="complaint")
router.register("surveys", api.SurveyViewSet, basename="survey")

urlpatterns = router.urls
