"""Issue 20, "smaller things": the favicon, a flight's route shown origin → destination, a card error's reason."""
import pytest
from django.contrib.staticfiles import finders

from tests.test_billing_browser import billing_case  # noqa: F401  (fixture)

from tests.test_browser import BROWSER_TESTS


@pytest.mark.django_db
@pytest.mark.parametrize("slug,role", [("alpha", None), ("alpha", "sales"), (None, None)])
def test_favicon_is_linked_and_favicon_ico_is_not_a_404(page_client, slug, role):
    """Agency host (anonymous and signed in) and the platform domain: /favicon.ico leads to the icon."""
    client = page_client(slug, role)
    answer = client.get("/favicon.ico")
    assert answer.status_code == 302 and answer["Location"].startswith("/static/favicon"), answer
    assert finders.find("favicon.svg")
    page = client.get("/accounts/login/", follow=True)
    assert page.status_code == 200
    assert b'rel="icon" href="/static/favicon' in page.content


@pytest.mark.django_db
def test_a_flight_item_shows_origin_then_destination(page_client, alpha):
    """Stored in jsonb, the keys come back shortest first (to_airport before from_airport): the trip page
    and the quote still read "PVG → KIX", not "KIX · PVG"."""
    from django_tenants.utils import tenant_context

    from crm.customers import services as customers
    from crm.trips import services as trips
    from crm.trips.models import ItineraryItem

    with tenant_context(alpha):
        buyer = customers.customer_create(actor=None, via="api", name="周航", phones=[])
        trip = trips.trip_create(actor=None, customer=buyer, title="Osaka", destination="Osaka")
        item = trips.item_add(actor=None, trip=trip, kind="flight", description="Shanghai to Osaka", sell="2000",
                              details={"carrier": "mu", "number": "515", "from_airport": "pvg", "to_airport": "kix"})
        assert ItineraryItem.objects.get(pk=item.pk).details_shown == ["MU 515", "PVG → KIX"]
    client = page_client("alpha", "admin")
    for url in (f"/trips/{trip.pk}/", f"/trips/{trip.pk}/quote/"):
        page = client.get(url).content.decode()
        assert "MU 515 · PVG → KIX" in page, url
        assert "KIX · PVG" not in page, url
    assert 'rel="icon" href="/static/favicon' in page  # the printable quote, standalone, links it too


def test_a_declined_card_reads_its_reason_in_the_readers_language():
    """The server's refusal names the reason for Stripe's code in the reader's language, not Stripe's English."""
    import stripe
    from django.utils import translation

    from billing.services import _card_refusal, card_error_reasons

    with translation.override("en"):
        declined = stripe.CardError("Your card was declined.", None, "card_declined")
        assert _card_refusal(declined).message_dict == {"payment_method": ["The card was declined by its bank."]}
        odd = stripe.CardError("Something odd.", None, "odd_code",
                               json_body={"error": {"message": "Something odd.", "code": "odd_code"}})
        assert _card_refusal(odd).message_dict["payment_method"] == ["The card was declined: Something odd."]
        assert "expiry date" in card_error_reasons()[""]


@pytest.mark.django_db
def test_the_card_form_gets_the_reasons_in_the_pages_language(page_client, stripe_settings):
    page = page_client("alpha", "admin").get("/settings/billing/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<script id="card-reasons" type="application/json">' in page
    assert "The card was declined by its bank." in page and 'data-locale="en"' in page


@BROWSER_TESTS[0]
@BROWSER_TESTS[1]
@BROWSER_TESTS[2]
def test_a_card_the_stripe_server_refuses_shows_what_to_check_not_bad_request(app_server, billing_case):
    """localstripe refuses a short card number with a bare "Bad request": the form names what to check."""
    from playwright.sync_api import expect

    from tests.test_browser import chromium_page, sign_in

    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")
        page.goto(app_server.url("alpha", "/settings/billing/"))
        page.select_option('select[name="plan"]', str(billing_case["plan"].pk))
        card = page.locator("#card-element")
        card.locator('input[placeholder="number"]').fill("4242")
        card.locator('input[placeholder="exp_month"]').fill("12")
        card.locator('input[placeholder="exp_year"]').fill("31")
        card.locator('input[placeholder="cvc"]').fill("123")
        card.locator('input[placeholder="postal_code"]').fill("200000")
        page.click('[data-test="subscribe"]')
        expect(page.locator("#card-errors")).to_contain_text("check the number, expiry date")
        expect(page.locator("#card-errors")).not_to_contain_text("Bad request")


def test_every_standalone_template_links_the_favicon():
    """base.html links the favicon; a template with a <head> of its own (the printable quote, the error pages
    answered without base.html) must too, or its tab shows no icon (issue 20)."""
    import re
    from pathlib import Path

    from django.template import engines

    heads = re.compile(r"<head[\s>]")
    folders = {Path(d) for engine in engines.all() for d in engine.engine.dirs}
    folders |= {Path(d) for engine in engines.all() for loader in engine.engine.template_loaders
                for d in getattr(loader, "get_dirs", lambda: [])()}
    ours = [folder for folder in folders if "site-packages" not in folder.parts]  # not Django's or DRF's own
    # PDFs' templates (crm.proposals.pdf) have a <head> too, but no tab to show an icon in (and fetch only data:).
    standalone = {path for folder in ours for path in folder.rglob("*.html")
                  if heads.search(path.read_text()) and path.parent.name != "pdf"}
    assert {p.name for p in standalone} >= {"base.html", "quote.html", "500.html", "database_unavailable.html"}
    missing = [str(p) for p in standalone
               if """<link rel="icon" href="{% static 'favicon.svg' %}" type="image/svg+xml">""" not in p.read_text()]
    assert missing == []


def test_the_error_pages_answer_with_the_favicon():
    from django.template.loader import render_to_string

    for name in ("500.html", "errors/database_unavailable.html"):
        assert 'rel="icon" href="/static/favicon' in render_to_string(name, {"message": "x"}), name
