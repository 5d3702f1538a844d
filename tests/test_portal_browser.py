"""The customer portal in Chromium, as customers use it: first on a phone (issue 21).

- ``test_portal_pages_fit_a_phone_in_both_languages``: the sign-in, code, home and trip pages at 390 px and
  1400 px, in Chinese and English, do not scroll sideways; the language switch works; screenshots go to
  ``$SCREENSHOT_DIR/portal`` (default /tmp/caravan-screenshots/portal) for a person to look at.
- ``test_journey_*``: the issue's "done when" journey (staff send a quote; the customer reads it in Chinese,
  accepts, pays the deposit through localstripe, uploads a passport scan, writes a message; staff see it all).

Rows are committed at alpha (the app server reads them); conftest removes them afterwards.
"""
import os
import uuid
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page
from tests.test_phone_layout import sideways, widest

pytestmark = BROWSER_TESTS

PHONE, DESKTOP = 390, 1400


def shots() -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or "/tmp/caravan-screenshots") / "portal"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def traveler(committed):  # noqa: F811
    """The demo portal traveler at alpha (crm.portal.demo) and a fresh sign-in link's token and code."""
    from crm.portal.demo import seed_portal
    from crm.trips.models import Trip
    from tenants.models import Agency

    from .portal_helpers import link_for

    with committed():
        agency = Agency.objects.get(slug="alpha")
        seed_portal(agency)
        with tenant_context(agency):
            from crm.customers.models import Customer

            customer = Customer.objects.get(emails__address="traveler@alpha.test")
            trip = Trip.objects.get(customer=customer, status=Trip.Status.CONFIRMED)
            tokens = [link_for(customer) for _ in range(4)]
    return {"customer": customer.pk, "trip": trip.pk, "tokens": tokens}


def fits(page, where: str) -> None:
    assert sideways(page) <= 0, f"{where} scrolls sideways: {widest(page)}"


def test_portal_pages_fit_a_phone_in_both_languages(app_server, traveler):  # noqa: F811
    from playwright.sync_api import expect

    folder = shots()
    for n, (width, language) in enumerate([(PHONE, "zh-hans"), (PHONE, "en"), (DESKTOP, "zh-hans"), (DESKTOP, "en")]):
        token, _code = traveler["tokens"][n]
        with chromium_page(locale="zh-CN" if language == "zh-hans" else "en-US") as page:
            page.set_viewport_size({"width": width, "height": 860})
            page.goto(app_server.url("alpha", "/portal/sign-in/"))
            if (page.locator("html").get_attribute("lang") or "") != language:
                page.locator("form.portal-lang button").click()
            expect(page.locator("html")).to_have_attribute("lang", language)
            fits(page, f"sign-in {width} {language}")
            page.screenshot(path=str(folder / f"sign-in-{language}-{width}.png"), full_page=True)
            page.goto(app_server.url("alpha", f"/portal/link/{token}/"))
            page.locator("main form button").click()
            expect(page).to_have_url(app_server.url("alpha", "/portal/"))
            confirmed = page.locator("a.portal-trip", has=page.locator(".status-confirmed"))
            expect(confirmed).to_have_count(1)
            fits(page, f"home {width} {language}")
            page.screenshot(path=str(folder / f"home-{language}-{width}.png"), full_page=True)
            confirmed.click()
            expect(page.locator("ol.portal-itinerary li")).to_have_count(4)
            fits(page, f"trip {width} {language}")
            page.screenshot(path=str(folder / f"trip-{language}-{width}.png"), full_page=True)


# --- the journey ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def portal_server(django_db_setup, django_db_blocker, tmp_path_factory, _smtp_server, stripe_server):
    """gunicorn on the committed test database, its e-mail to the session's SMTP mailbox, Stripe at localstripe."""
    from tests import servers

    _inbox, smtp_port = _smtp_server
    port = servers.free_port()
    with servers.gunicorn_server(
            port=port, log_dir=tmp_path_factory.mktemp("portal-server"),
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(smtp_port), EMAIL_USE_TLS="0", EMAIL_HOST_USER="", EMAIL_HOST_PASSWORD="",
            STRIPE_API_BASE=stripe_server, STRIPE_SECRET_KEY=servers.STRIPE_SECRET_KEY,
            STRIPE_WEBHOOK_SECRET=servers.STRIPE_WEBHOOK_SECRET, STRIPE_PUBLISHABLE_KEY="pk_test_caravan",
            CELERY_QUEUE=f"caravan-tests-portal-{port}") as server:
        yield server


@pytest.fixture
def quote(committed, stripe_settings):  # noqa: F811
    """At alpha, connected to Stripe: a Chinese-speaking customer's enquiry, taken by sales, with a quote of four
    items for a visa trip — what a salesperson has ready to send."""
    from datetime import date, timedelta
    from decimal import Decimal

    from accounts.models import User
    from crm.pipeline import services as pipeline
    from crm.trips import services as trips
    from tenants.models import Agency

    from .portal_helpers import person
    from .test_portal_payments import connect

    tag = uuid.uuid4().hex[:8]
    with committed():
        agency = Agency.objects.get(slug="alpha")
        connect(agency)
        with tenant_context(agency):
            sales = User.objects.get(email="sales@alpha.test")
            customer = person("周雨桐", f"zhou.{tag}@example.cn", language="zh-hans", latin_surname="ZHOU",
                              latin_given="Yutong")
            depart = date.today() + timedelta(days=80)
            opportunity = pipeline.lead_intake(source="staff", customer=customer, destination="日本 京都",
                                               depart_on=depart, return_on=depart + timedelta(days=6), adults=1,
                                               owner=sales)
            trip = trips.quote_from_opportunity(actor=sales, opportunity=opportunity)
            trips.trip_update(actor=sales, trip=trip, title="京都红叶季六日游", needs_visa=True)
            for kind, description, sell in (("flight", "中国国际航空 CA927 上海—大阪", "5980"),
                                            ("hotel", "京都丽思卡尔顿 · 庭园景观房 5 晚", "11800"),
                                            ("tour", "岚山小火车与嵯峨野竹林一日游", "1600"),
                                            ("visa", "日本签证代办", "620")):
                trips.item_add(actor=sales, trip=trip, kind=kind, description=description, starts_on=depart,
                               ends_on=depart + timedelta(days=5), cost=str(Decimal(sell) * Decimal("0.8")), sell=sell)
            trips.checklist_ensure(trip=trip)
    return {"agency": agency, "customer": customer.pk, "email": f"zhou.{tag}@example.cn", "trip": trip.pk,
            "opportunity": opportunity.pk}


def _mail_to(mailbox, address: str, *, timeout: float = 15):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in list(mailbox) if address in (m["To"] or "")]
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"no e-mail to {address}")


def test_journey_staff_send_a_quote_and_the_customer_does_the_rest_on_a_phone(portal_server, quote, mailbox,  # noqa: F811
                                                                           committed, tmp_path):
    """Staff send a quote; the customer opens the link, reads the proposal in Chinese, accepts, pays the deposit
    through localstripe, uploads a passport scan, writes a message; staff see the acceptance, the payment, a
    same-day task, the document to verify and the message on the card (issue 21, "Done when")."""
    import io

    from PIL import Image
    from playwright.sync_api import expect

    from tests.test_browser import sign_in
    from tests.test_portal_payments_browser import _card

    from .portal_helpers import link_and_code

    server, trip, folder = portal_server, quote["trip"], shots()
    # 1. Sales send the proposal from the trip page.
    with chromium_page() as page:
        page.set_viewport_size({"width": DESKTOP, "height": 900})
        sign_in(page, server, "alpha", "sales")
        page.goto(server.url("alpha", f"/trips/{trip}/"))
        send = page.locator('form[data-test="proposal-send"]')
        expect(send).to_be_visible()
        send.locator("textarea[name=message]").fill("周女士您好，京都红叶季方案请查收。")
        send.locator("button[type=submit]").click()
        expect(page.locator('[data-test="proposal-versions"]')).to_contain_text("1")
    token, _code = link_and_code(_mail_to(mailbox, quote["email"]))

    scan = tmp_path / "passport.jpg"
    out = io.BytesIO()
    Image.new("RGB", (640, 440), (30, 60, 140)).save(out, "JPEG")
    scan.write_bytes(out.getvalue())
    # 2. The customer, on a phone, in Chinese.
    with chromium_page(locale="zh-CN") as page:
        page.set_viewport_size({"width": PHONE, "height": 860})
        page.goto(server.url("alpha", f"/portal/link/{token}/"))
        page.locator("main form button").click()
        expect(page).to_have_url(server.url("alpha", f"/portal/trips/{trip}/proposal/"))  # the link opens the proposal
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        expect(page.locator("h1")).to_contain_text("京都红叶季六日游")
        expect(page.locator('[data-test="proposal-items"]')).to_contain_text("京都丽思卡尔顿")
        expect(page.locator('[data-test="proposal-accept"]')).to_contain_text("接受")
        fits(page, "proposal 390 zh")
        page.screenshot(path=str(folder / "journey-1-proposal-zh-390.png"), full_page=True)
        page.fill("input[name=typed_name]", "周雨桐")
        page.check("input[name=agreed]")
        page.locator('[data-test="proposal-accept-button"]').click()
        expect(page.locator('[data-test="proposal-accepted"]')).to_contain_text("周雨桐")

        page.goto(server.url("alpha", f"/portal/trips/{trip}/"))
        page.locator('[data-test="payments-panel"] [data-test="pay-deposit"]').click()
        expect(page.locator('[data-test="pay-amount"]')).to_contain_text("6,000.00")  # 30 % of 20,000.00
        _card(page, "4242424242424242")
        page.locator('[data-test="pay-submit"]').click()
        expect(page.locator('[data-test="payment-succeeded"]')).to_be_visible()
        page.screenshot(path=str(folder / "journey-2-paid-zh-390.png"), full_page=True)

        page.goto(server.url("alpha", f"/portal/trips/{trip}/documents/upload/"))
        page.select_option("select[name=kind]", "passport")
        page.locator("input[type=file][name=file]").set_input_files(str(scan))
        page.fill("input[name=number]", "E 1234 5678")
        page.locator("form.portal-upload button[type=submit]").click()
        expect(page.locator("section.portal-docs .doc-pending").first).to_be_visible()

        messages = page.locator('[data-test="portal-messages"]')
        messages.locator("textarea[name=body]").fill("请问签证需要准备哪些材料？照片要几张？")
        messages.locator("button").click()
        expect(page.locator('[data-test="portal-messages"]')).to_contain_text("照片要几张")
        fits(page, "trip 390 zh after the journey")
        page.screenshot(path=str(folder / "journey-3-trip-zh-390.png"), full_page=True)

    # 3. Staff see all of it: on the trip and on the customer's card.
    with chromium_page() as page:
        page.set_viewport_size({"width": DESKTOP, "height": 900})
        sign_in(page, server, "alpha", "sales")
        page.goto(server.url("alpha", f"/trips/{trip}/"))
        expect(page.locator('[data-test="status"]')).to_have_text("Confirmed")
        expect(page.locator('[data-test="proposal-versions"]')).to_contain_text("Accepted by 周雨桐")
        expect(page.locator('[data-test="trip-online-payments"]')).to_contain_text("6,000.00")
        expect(page.locator('[data-test="trip-portal-messages"]')).to_contain_text("照片要几张")
        page.screenshot(path=str(folder / "journey-4-staff-trip-1400.png"), full_page=True)
        page.goto(server.url("alpha", f"/customers/{quote['customer']}/"))
        expect(page.locator('[data-test="document-files"] [data-test="document-file"]')).to_have_count(1)
        expect(page.locator('[data-test="document-files"]')).to_contain_text("Waiting for review")
        expect(page.locator('[data-test="document-files"] [data-test="document-accept"]')).to_be_visible()
        expect(page.locator('[data-test="customer-portal-messages"]')).to_contain_text("照片要几张")
        tasks = page.locator('[data-test="card-tasks"]')
        expect(tasks).to_contain_text("Deposit received")
        expect(tasks).to_contain_text("Document to verify")
        page.screenshot(path=str(folder / "journey-5-staff-card-1400.png"), full_page=True)

    from crm.pipeline.models import Opportunity, Task
    from crm.trips.models import Payment

    with committed(), tenant_context(quote["agency"]):
        assert Opportunity.objects.get(pk=quote["opportunity"]).stage.kind == "won"
        payment = Payment.objects.get(trip_id=trip)
        assert (payment.kind, payment.amount, payment.method) == ("deposit", 6000, "card")
        from django.utils import timezone

        due_today = Task.objects.filter(trip_id=trip, done_at__isnull=True, due_at__date__lte=timezone.localdate())
        assert due_today.filter(kind="deposit_call").exists()
