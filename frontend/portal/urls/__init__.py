"""The portal's URLs (``/portal/`` on agency hosts, namespace ``portal``): one module per area."""
from django.urls import include, path

app_name = "portal"

urlpatterns = [
    path("", include("frontend.portal.urls.signin")),
    path("", include("frontend.portal.urls.trips")),
    path("", include("frontend.portal.urls.proposals")),
    path("", include("frontend.portal.urls.payments")),
    path("", include("frontend.portal.urls.documents")),
    path("", include("frontend.portal.urls.messages")),
    path("", include("frontend.portal.urls.profile")),
]
