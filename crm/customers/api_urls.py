"""Customer 360 API under /api/v1/ (agency hosts)."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

# SimpleRouter: the project's main router already serves the API index at /api/v1/.
router = SimpleRouter()
router.register("customers", api.CustomerViewSet, basename="customer")
router.register("documents", api.DocumentViewSet, basename="document")

urlpatterns = router.urls + [
    path("handover/", api.HandoverView.as_view(), name="customer_handover"),
    path("screen-pop/", api.ScreenPopView.as_view(), name="screen_pop"),
    path("screen-pop", api.ScreenPopNoSlashView.as_view()),
]
