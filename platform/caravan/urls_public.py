"""URL map for the platform domain: operator console and operator API."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from billing.webhooks import stripe_webhook
from console.api import OperatorAgencyViewSet
from console.views.signup import SignupView
from frontend.urls import auth_urlpatterns
from frontend.views.favicon import FaviconView
from integrations.webhooks import push as feed_push

from .urls_tenant import TokenView

router = DefaultRouter()
router.register("agencies", OperatorAgencyViewSet, basename="agency")

operator_api = [
    path("auth/token/", TokenView.as_view(), name="api_token"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
    path("billing/stripe/webhook/", stripe_webhook, name="stripe_webhook"),
    path("signup/", SignupView.as_view(), name="signup"),
    path("api/operator/", include((operator_api, "operator_api"), namespace="operator_api")),
    path("api/schema/", SpectacularAPIView.as_view(urlconf="caravan.urls_public_api"), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema", template_name="api/swagger_ui.html"), name="api_docs"),
    *auth_urlpatterns,
    path("integrations/push/<str:push_key>/", feed_push, name="feed_push"),
    path("", include("console.urls.suppliers")),
    path("", include("console.urls")),
]

# Under /api/, a path no route matches and a request Django refuses before any view answer the API's
# error body (pages: 404.html, 400.html).
handler404 = "caravan.api.errors.not_found"
handler400 = "caravan.api.errors.bad_request"
