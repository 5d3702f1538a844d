"""Personal-data API under /api/v1/ (agency hosts): the access log and a customer's data export."""
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("access-log", api.AccessLogViewSet, basename="access-log")
router.register("personal-data", api.CustomerDataViewSet, basename="personal-data")

urlpatterns = router.urls
