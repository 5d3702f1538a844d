"""Machine endpoints of online payments, on agency hosts (included by ``caravan.urls_tenant``)."""
from django.urls import path

from . import webhooks

urlpatterns = [
    path("checkout/stripe/webhook/", webhooks.stripe_webhook, name="checkout_stripe_webhook"),
]
