"""Customer import API under /api/v1/ (agency hosts)."""
from rest_framework.routers import SimpleRouter

from . import api_imports

# SimpleRouter: the project's main router already serves the API index at /api/v1/.
router = SimpleRouter()
router.register("imports", api_imports.ImportJobViewSet, basename="customer_import")

urlpatterns = router.urls
