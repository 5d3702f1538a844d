"""The staff side of online payments (crm.checkout); the portal's pay pages are frontend.portal.urls.payments."""
from django.urls import path

from ..views import checkout

urlpatterns = [
    path("settings/portal/payments/", checkout.CheckoutSettingsView.as_view(), name="checkout_settings"),
    path("trips/<int:pk>/online-payments/", checkout.TripOnlinePaymentsView.as_view(), name="trip_online_payments"),
]
