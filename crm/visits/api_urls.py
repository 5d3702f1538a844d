"""API routes for crm.visits, under /api/v1/."""
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("visit-plans", api.PlanViewSet, basename="visit-plan")
router.register("visits", api.VisitViewSet, basename="visit")

urlpatterns = router.urls
