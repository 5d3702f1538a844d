"""In a real browser: the agency admin subscribes with a card, changes the interval, and the seats
follow when a staff member is deactivated.

Chromium drives the gunicorn app server of tests/servers.py, whose Stripe is the session's
localstripe; the card form is localstripe's stand-in for Stripe.js (the same calls as the real one).
``billing_case`` makes a plan and afterwards puts alpha back on its trial, without the account.
"""
import uuid
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS


@pytest.fixture
def billing_case(committed, stripe_settings):
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from billing import services
    from billing.models import BillingAccount, Plan
    from tenants.models import Agency, AgencyEvent

    tag = uuid.uuid4().hex[:6]
    with committed():
        agency = Agency.objects.get(slug="alpha")
        status = agency.status
        plan = services.plan_sync(Plan.objects.create(code=f"browser-{tag}", name=f"Team {tag}",
                                                      seat_price_month=Decimal("150.00"),
                                                      seat_price_year=Decimal("1500.00")))
        events = set(AgencyEvent.objects.unscoped().filter(agency=agency).values_list("pk", flat=True))
        with tenant_context(agency):
            admin = User.objects.get(email="admin@alpha.test")
            last_login = admin.last_login
            sessions = set(Session.objects.values_list("session_key", flat=True))
            staff = User.objects.filter(is_active=True, is_operator=False).count()
            service = User.objects.get(email="service@alpha.test")
    yield {"plan": plan, "staff": staff}
    with committed():
        BillingAccount.objects.unscoped().filter(agency=agency).delete()
        Plan.objects.filter(pk=plan.pk).delete()
        AgencyEvent.objects.unscoped().filter(agency=agency).exclude(pk__in=events).delete()
        Agency.objects.filter(pk=agency.pk).update(status=status)
        with tenant_context(agency):
            User.objects.filter(pk=admin.pk).update(last_login=last_login)
            User.objects.filter(pk=service.pk).update(is_active=True)
            Session.objects.exclude(session_key__in=sessions).delete()


def test_the_admin_subscribes_with_a_card_and_changes_the_seats(app_server, billing_case, committed):
    from playwright.sync_api import expect

    plan, staff = billing_case["plan"], billing_case["staff"]
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")
        page.goto(app_server.url("alpha", "/settings/"))
        page.click('[data-test="billing"]')
        expect(page.locator('[data-test="agency-status"]')).to_have_text("Trial")
        page.select_option('select[name="plan"]', str(plan.pk))
        card = page.locator("#card-element")
        card.locator('input[placeholder="number"]').fill("4000000000000002")  # declined when attached
        card.locator('input[placeholder="exp_month"]').fill("12")
        card.locator('input[placeholder="exp_year"]').fill("31")
        card.locator('input[placeholder="cvc"]').fill("123")
        card.locator('input[placeholder="postal_code"]').fill("200000")
        page.click('[data-test="subscribe"]')
        expect(page.locator("#card-errors")).to_contain_text("declined")
        card.locator('input[placeholder="number"]').fill("4242424242424242")
        page.click('[data-test="subscribe"]')
        expect(page.locator('[data-test="agency-status"]')).to_have_text("Active")
        expect(page.locator('[data-test="seats"]')).to_contain_text(f"{staff} paid")
        expect(page.locator('[data-test="invoices"]')).to_contain_text("paid")
        page.select_option('select[name="interval"]', "year")
        page.click('[data-test="change"]')
        expect(page.locator('[data-test="billing-status"]')).to_contain_text("Yearly")
        # Seats follow staff: deactivating a member lowers the paid seats.
        page.goto(app_server.url("alpha", "/staff/"))
        page.click('a:has-text("Service of alpha")')
        page.uncheck('input[name="is_active"]')
        page.click('main button.primary')
        page.goto(app_server.url("alpha", "/settings/billing/"))
        expect(page.locator('[data-test="seats"]')).to_contain_text(f"{staff - 1} paid")
