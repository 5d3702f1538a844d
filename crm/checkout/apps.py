from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CheckoutConfig(AppConfig):
    """Online payments of a trip's deposit and balance through the agency's own Stripe account (issue 21):
    the account's keys (encrypted), the payment intents, the agency's webhook events; pages in
    ``frontend/portal/views/payments.py`` and ``frontend/views/checkout.py``."""

    name = "crm.checkout"
    label = "checkout"
    verbose_name = _("Online payments")

    def ready(self):
        from crm.trips.hooks import payment_refunded

        from . import services

        # A refund staff record on the trip page for an online payment is made at Stripe too.
        payment_refunded.connect(services.refund_at_stripe)
