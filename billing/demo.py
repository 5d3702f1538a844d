"""Demo plans for `make run`: the three plans the onboarding form offers, kept in step with the
configured Stripe (localstripe under `make run`)."""
from decimal import Decimal

from django.conf import settings
from django.db import connection

from .models import Plan

PLANS = [
    # code, name, per seat per month, per seat per year, seat limit, customers, campaign e-mails/month, feeds
    ("starter", "Starter", "99.00", "990.00", 5, 5_000, 5_000, 1),
    ("professional", "Professional", "199.00", "1990.00", 50, 100_000, 50_000, 5),
    ("enterprise", "Enterprise", "299.00", "2990.00", None, None, None, None),
]


def seed_plans() -> list[str]:
    """Create the demo plans that are missing and sync every plan with Stripe when it is configured."""
    from . import services

    connection.set_schema_to_public()
    done = []
    for code, name, month, year, seats, customers, emails, feeds in PLANS:
        plan, created = Plan.objects.get_or_create(code=code, defaults={
            "name": name, "seat_price_month": Decimal(month), "seat_price_year": Decimal(year), "max_seats": seats,
            "max_customers": customers, "campaign_emails_month": emails, "supplier_feeds": feeds})
        if settings.STRIPE_SECRET_KEY:
            services.plan_sync(plan)
        done.append(f"{code}{' (new)' if created else ''}")
    return done
