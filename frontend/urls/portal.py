"""The staff side of the customer portal (the portal itself: frontend.portal.urls, under /portal/)."""
from django.urls import path

from ..views import portal

urlpatterns = [
    path("settings/portal/", portal.PortalSettingsView.as_view(), name="portal_settings"),
    path("customers/<int:pk>/portal-invite/", portal.CustomerInviteView.as_view(), name="customer_portal_invite"),
    path("trips/<int:pk>/portal-invite/", portal.TripInviteView.as_view(), name="trip_portal_invite"),
    path("customers/<int:pk>/portal/", portal.CustomerPortalView.as_view(), name="customer_portal"),
    path("trips/<int:pk>/portal/", portal.TripPortalView.as_view(), name="trip_portal"),
]
