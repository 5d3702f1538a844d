"""URL map for agency hosts (<slug>.<PLATFORM_DOMAIN>)."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from accounts import api as accounts_api
from accounts.api import TokenView  # noqa: F401  (password → named token; urls_public uses it too)
from frontend.urls import auth_urlpatterns
from frontend.urls import urlpatterns as page_urlpatterns
from frontend.views.favicon import FaviconView

router = DefaultRouter()
router.register("staff", accounts_api.StaffViewSet, basename="staff")
router.register("tokens", accounts_api.ApiTokenViewSet, basename="token")

api_v1 = [
    path("auth/token/", TokenView.as_view(), name="api_token"),
    path("me/", accounts_api.MeView.as_view(), name="api_me"),
    path("agency/", accounts_api.AgencySettingsView.as_view(), name="api_agency"),
    path("", include("crm.customers.api_urls")),
    path("", include("crm.customers.api_import_urls")),
    path("", include("crm.pipeline.api_urls")),
    path("", include("crm.trips.api_urls")),
    path("", include("crm.proposals.api_urls")),
    path("", include("crm.care.api_urls")),
    path("", include("crm.policies.api_urls")),
    path("", include("crm.tiers.api_urls")),
    path("", include("crm.visits.api_urls")),
    path("", include("crm.campaigns.api_urls")),
    path("", include("crm.loyalty.api_urls")),
    path("", include("crm.retention.api_urls")),
    path("", include("crm.segments.api_urls")),
    path("", include("crm.value.api_urls")),
    path("", include("crm.privacy.api_urls")),
    path("", include("crm.destinations.api_urls")),
    path("", include("integrations.api_urls")),
    path("", include(router.urls)),
]

urlpatterns = [
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
    path("", include("crm.checkout.urls")),  # the agency's own Stripe webhook (issue 21)
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(urlconf="caravan.urls_tenant_api"), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema", template_name="api/swagger_ui.html"), name="api_docs"),
    *auth_urlpatterns,
    *page_urlpatterns,
]

# Under /api/, a path no route matches and a request Django refuses before any view answer the API's
# error body (pages: 404.html, 400.html).
handler404 = "caravan.api.errors.not_found"
handler400 = "caravan.api.errors.bad_request"
