"""The customer portal in Chromium, as customers use it: first on a phone (issue 21).

- ``test_portal_pages_fit_a_phone_in_both_languages``: the sign-in, code, home and trip pages at 390 px and
  1400 px, in Chinese and English, do not scroll sideways; the language switch works; screenshots go to
  ``$SCREENSHOT_DIR/portal`` (default /tmp/caravan-screenshots/portal) for a person to look at.
- ``test_journey_*``: the issue's "done when" journey (staff send a quote; the customer reads it in Chinese,
  accepts, pays the deposit through localstripe, uploads a passport scan, writes a message; staff see it all).

Rows are committed at alpha (the app server reads them); conftest removes them afterwards.
"""
import os
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from tests.servers import app_server, committed  # noqa: F401  (fixtures)
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
