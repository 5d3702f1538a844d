"""Paying the deposit in the portal in Chromium on a phone (issue 21, crm.checkout): at 390 px, in Chinese, the
customer opens the trip, pays the deposit with localstripe's card field (a declined card first), lands on
"Payment received"; staff see the online payment on the trip page. Screenshots go to
``$SCREENSHOT_DIR/portal`` (default /tmp/caravan-screenshots/portal). Rows are committed at alpha (the app
server reads them); conftest removes them afterwards."""
import uuid
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in
from tests.test_portal_browser import fits, shots

pytestmark = BROWSER_TESTS

PHONE = 390


@pytest.fixture
def payer(committed, stripe_settings):  # noqa: F811
    from tenants.models import Agency

    from .portal_helpers import confirmed_trip, link_for, person
    from .test_portal_payments import connect

    with committed():
        agency = Agency.objects.get(slug="alpha")
        connect(agency)
        with tenant_context(agency):
            customer = person("王芳", f"pay.{uuid.uuid4().hex[:8]}@example.cn", language="zh-hans")
            trip = confirmed_trip(customer, title="京都红叶")
            token, _code = link_for(customer)
    return {"agency": agency, "trip": trip.pk, "token": token}


def _card(page, number: str) -> None:
    card = page.locator("#card-element")
    card.locator('input[placeholder="number"]').fill(number)
    card.locator('input[placeholder="exp_month"]').fill("12")
    card.locator('input[placeholder="exp_year"]').fill("31")
    card.locator('input[placeholder="cvc"]').fill("123")
    card.locator('input[placeholder="postal_code"]').fill("200000")


def test_the_customer_pays_the_deposit_on_a_phone(app_server, payer, committed):  # noqa: F811
    from playwright.sync_api import expect

    from crm.checkout.models import OnlinePayment
    from crm.trips.models import Payment

    folder, trip = shots(), payer["trip"]
    with chromium_page(locale="zh-CN") as page:
        page.set_viewport_size({"width": PHONE, "height": 860})
        page.goto(app_server.url("alpha", f"/portal/link/{payer['token']}/"))
        page.locator("main form button").click()
        expect(page).to_have_url(app_server.url("alpha", "/portal/"))
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        page.goto(app_server.url("alpha", f"/portal/trips/{trip}/"))
        panel = page.locator('[data-test="payments-panel"]')
        expect(panel.locator('[data-test="line-deposit"]')).to_be_visible()
        fits(page, "trip with payments")
        page.screenshot(path=str(folder / f"trip-payments-zh-hans-{PHONE}.png"), full_page=True)
        panel.locator('[data-test="pay-deposit"]').click()
        expect(page.locator('[data-test="pay-amount"]')).to_contain_text("900")
        _card(page, "4000000000000341")  # accepted by the card field, declined when charged
        fits(page, "pay page")
        page.screenshot(path=str(folder / f"pay-zh-hans-{PHONE}.png"), full_page=True)
        page.locator('[data-test="pay-submit"]').click()
        expect(page.locator('[data-test="pay-error"]')).not_to_be_empty()
        _card(page, "4242424242424242")
        page.locator('[data-test="pay-submit"]').click()
        expect(page.locator('[data-test="payment-succeeded"]')).to_be_visible()
        fits(page, "payment received")
        page.screenshot(path=str(folder / f"paid-zh-hans-{PHONE}.png"), full_page=True)
        page.goto(app_server.url("alpha", f"/portal/trips/{trip}/"))
        expect(page.locator('[data-test="pay-balance"]')).to_be_visible()

    with committed(), tenant_context(payer["agency"]):
        payment = Payment.objects.get(trip_id=trip)
        assert (payment.kind, payment.amount, payment.method) == ("deposit", Decimal("900.00"), "card")
        intent_id = OnlinePayment.objects.get(trip_id=trip, status="succeeded").intent_id

    with chromium_page() as page:
        page.set_viewport_size({"width": PHONE, "height": 860})
        sign_in(page, app_server, "alpha", "finance")
        page.goto(app_server.url("alpha", f"/trips/{trip}/"))
        expect(page.locator('[data-test="trip-online-payments"]')).to_contain_text(intent_id)
        fits(page, "staff trip page with online payments")


def test_the_admins_settings_page_fits_a_phone(app_server, payer, committed):  # noqa: F811
    from playwright.sync_api import expect

    from tests.servers import sign_ins_put_back

    with sign_ins_put_back(committed, "alpha", "admin@alpha.test"), chromium_page() as page:
        page.set_viewport_size({"width": PHONE, "height": 860})
        sign_in(page, app_server, "alpha", "admin")
        page.goto(app_server.url("alpha", "/settings/portal/"))
        page.locator('[data-test="checkout-settings-link"]').click()
        expect(page.locator('[data-test="checkout-connected"]')).to_contain_text("sk_test_")
        expect(page.locator('[data-test="checkout-webhook-url"]')).to_contain_text("/checkout/stripe/webhook/")
        fits(page, "online payments settings")
        page.screenshot(path=str(shots() / f"checkout-settings-en-{PHONE}.png"), full_page=True)
