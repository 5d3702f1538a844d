"""Demo data (``seed_demo``): under `make run` Stripe is localstripe (``STRIPE_API_BASE``), and each demo agency's
own Stripe account is connected to it with test keys, so the demo traveler can pay a deposit in the portal with
the test card 4242 4242 4242 4242. Never against a real Stripe: without ``STRIPE_API_BASE`` nothing is done."""
from django.conf import settings
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.roles import Role

from . import selectors
from .services import account_connect


def seed_checkout(agency) -> dict:
    if not getattr(settings, "STRIPE_API_BASE", ""):
        return {"accounts": 0}
    with tenant_context(agency):
        admin = User.objects.filter(role=Role.ADMIN, is_active=True).order_by("id").first()
        if selectors.account() is not None or admin is None:
            return {"accounts": 0}
        account_connect(actor=admin, publishable_key=f"pk_test_demo_{agency.slug}",
                        secret_key=f"sk_test_demo_{agency.slug}", webhook_secret=f"whsec_demo_{agency.slug}",
                        methods=["card"])
    return {"accounts": 1}
