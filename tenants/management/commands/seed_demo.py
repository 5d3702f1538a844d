"""Demo data for `make run`: an operator and two agencies with staff in every role, customers, an open
pipeline, trips, surveys and complaints, and supplier inventory to search from trips. Idempotent."""
from django.core.management import BaseCommand
from django_tenants.utils import schema_context, tenant_context

from accounts.mfa.demo import demo_totp_key_b32, ensure_demo_device
from accounts.models import User
from accounts.roles import Role
from crm.campaigns.demo import seed_campaigns
from crm.customers.demo import seed_customers
from crm.destinations.demo import seed_destinations, seed_shared
from crm.care.demo_journeys import seed_journeys
from crm.loyalty.demo import seed_loyalty
from crm.checkout.demo import seed_checkout
from crm.portal.demo import seed_portal
from crm.proposals.demo import seed_proposals
from crm.customers.models import Customer
from crm.pipeline.models import Opportunity
from crm.tiers.demo import seed_tiers
from crm.tiers.models import ServiceTier
from crm.policies.demo import seed_policies
from crm.segments.demo import seed_segments
from crm.value.demo import seed_value
from crm.visits.demo import seed_visits
from tenants.models import Agency
from tenants.services import agency_onboard, platform_ensure

DEMO_AGENCIES = [
    # slug, name, plan, language, staff (role, name, e-mail local part)
    ("sunrise", "旭日国际旅行社 Sunrise Travel", Agency.Plan.PROFESSIONAL, "zh-hans", [
        (Role.ADMIN, "王芳", "admin"), (Role.MANAGER, "李强", "manager"), (Role.SALES, "张伟", "sales"),
        (Role.CALL_CENTER, "刘洋", "callcenter"), (Role.SERVICE, "陈静", "service"), (Role.FINANCE, "赵敏", "finance"),
    ]),
    ("lotus", "莲花商旅 Lotus Corporate Travel", Agency.Plan.ENTERPRISE, "en", [
        (Role.ADMIN, "Grace Lin", "admin"), (Role.MANAGER, "Daniel Wu", "manager"), (Role.SALES, "Emily Zhou", "sales"),
        (Role.CALL_CENTER, "Kevin Huang", "callcenter"), (Role.SERVICE, "Sophie Xu", "service"),
        (Role.FINANCE, "Michael Sun", "finance"),
    ]),
]
OPERATOR_EMAIL = "operator@caravan.localhost"
DEMO_CUSTOMERS = {"sunrise": {"people": 3000, "companies": 40}, "lotus": {"people": 2000, "companies": 60, "foreign_share": 0.1}}


def seed_trade_history(agency, **sizes) -> dict:
    """The demo trade history (crm.value.demo), then what is computed from it: customer value (seed_value
    does it) and service tiers, which the tiers step before it assigned when nobody had bought anything yet
    (every demo customer was "Standard" until someone pressed "Recompute"). Counts; trips 0: seeded before."""
    from crm.tiers import services as tiers

    counts = seed_value(agency, **sizes)
    if counts["trips"]:
        with tenant_context(agency):
            counts["tiers"] = tiers.assignment_run()
    return counts


def ensure_demo_staff(staff, *, slug: str, language: str, password: str) -> list[User]:
    """In the current agency's schema: one log-in per demo role, ``<local>@<slug>.test``, that signs
    in with ``password`` (the one `make run` prints); admins also get the demo authenticator device.
    A demo user without a password (never set, or left empty by earlier seeding, which Django counts
    as usable) gets it; one whose password was changed keeps it."""
    users = []
    for role, full_name, local in staff:
        email = f"{local}@{slug}.test"
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email, password, full_name=full_name, role=role, language=language)
        elif not user.password or not user.has_usable_password():
            user.set_password(password)
            user.save(update_fields=["password"])
        if role == Role.ADMIN:
            ensure_demo_device(user, password)
        users.append(user)
    return users


class Command(BaseCommand):
    help = "Create the demo operator and demo agencies (sunrise, lotus) with staff in every role."

    def add_arguments(self, parser):
        parser.add_argument("--password", required=True, help="Password for every demo log-in.")

    def handle(self, *args, password, **options):
        platform_ensure()
        with schema_context("public"):
            if not User.objects.filter(email=OPERATOR_EMAIL).exists():
                User.objects.create_superuser(OPERATOR_EMAIL, password, full_name="Platform Operator")
            ensure_demo_device(User.objects.get(email=OPERATOR_EMAIL), password)
        # Operators and admins sign in with a second step: their demo devices share one key (README).
        self.stdout.write(f"Authenticator key of the demo admins and the operator: {demo_totp_key_b32(password)}")
        from billing import services as billing
        from billing.demo import seed_plans

        self.stdout.write("Plans: " + ", ".join(seed_plans()))
        for slug, name, plan, language, staff in DEMO_AGENCIES:
            agency = Agency.objects.filter(slug=slug).first()
            if agency is None:
                agency = agency_onboard(name=name, slug=slug, plan=plan, language=language,
                                        admin_email=f"admin@{slug}.test", admin_name=staff[0][1], actor="seed_demo").agency
                self.stdout.write(f"Created demo agency {slug}")
                # Demo agencies stay usable after the 14-day trial; Billing still shows how to subscribe.
                billing.set_comped(agency=agency, comped=True, actor="seed_demo", note="demo agency")
            with tenant_context(agency):
                ensure_demo_staff(staff, slug=slug, language=language, password=password)
                if not Customer.objects.exists():  # first run only: re-running keeps what was changed
                    seed_customers(agency, **DEMO_CUSTOMERS[slug])
                    self.stdout.write(f"Created demo customers for {slug}")
                if not Opportunity.objects.exists():
                    counts = seed_journeys(agency)
                    self.stdout.write(f"Created demo pipeline, trips and care for {slug}: "
                                      + ", ".join(f"{v} {k}" for k, v in counts.items()))
                if not ServiceTier.objects.exists():
                    seed_tiers(agency)
                    self.stdout.write(f"Created demo service tiers for {slug}")
                counts = seed_visits(agency)
                if counts["plans"]:
                    self.stdout.write(f"Created demo visit plans for {slug}: {counts['plans']} plans, "
                                      f"{counts['visits']} visits")
                counts = seed_policies(agency)
                if counts["policies"]:
                    self.stdout.write(f"Created demo travel policies for {slug}: "
                                      + ", ".join(f"{v} {k}" for k, v in counts.items()))
                counts = seed_trade_history(agency)
                if counts["trips"]:
                    self.stdout.write(f"Created demo trade history for {slug}: {counts['trips']} trips; customer value "
                                      f"computed for {counts['customers']} customers; service tiers assigned to "
                                      f"{counts['tiers']['customers']} customers")
                counts = seed_loyalty(agency)
                if counts["referrals"]:
                    self.stdout.write(f"Created demo care automation for {slug}: "
                                      + ", ".join(f"{v} {k}" for k, v in counts.items()))
                counts = seed_segments(agency)
                if counts["segments"]:
                    self.stdout.write(f"Created demo segments for {slug}: {counts['segments']}")
                counts = seed_campaigns(agency)
                if counts["campaigns"]:
                    self.stdout.write(f"Created demo campaigns for {slug}: "
                                      + ", ".join(f"{v} {k}" for k, v in counts.items()))
                counts = seed_destinations(agency)
                if counts["articles"]:
                    self.stdout.write(f"Created demo destination articles for {slug}: {counts['articles']}")
                counts = seed_portal(agency)
                if counts["travelers"]:
                    self.stdout.write(f"Created the demo portal traveler traveler@{slug}.test with {counts['trips']} trips")
                if seed_proposals(agency)["proposals"]:
                    self.stdout.write(f"Sent the demo traveler of {slug} a proposal")
                if seed_checkout(agency)["accounts"]:
                    self.stdout.write(f"Connected {slug}'s own Stripe account to localstripe (test card 4242 4242 4242 4242)")
        with schema_context("public"):
            counts = seed_shared(User.objects.get(email=OPERATOR_EMAIL))
        if counts["shared"]:
            self.stdout.write(f"Created the demo shared destination base: {counts['shared']} articles")
        from integrations.demo import seed_inventory

        counts = seed_inventory(own_rates_for=Agency.objects.filter(slug="lotus").first())
        if counts:
            self.stdout.write("Created demo supplier inventory: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
