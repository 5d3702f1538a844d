"""Customer import and (large) export API under /api/v1/ (agency hosts)."""
from rest_framework.routers import SimpleRouter

from . import api_exports, api_imports

# SimpleRouter: the project's main router already serves the API index at /api/v1/.
router = SimpleRouter()
router.register("imports", api_imports.ImportJobViewSet, basename="customer_import")
router.register("customer-exports", api_exports.CustomerExportViewSet, basename="customer_export")

urlpatterns = router.urls
