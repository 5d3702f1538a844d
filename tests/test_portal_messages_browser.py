"""Portal messages, My details and "Something went wrong?" in Chromium on a phone (issue 21): at 390 px, in
Chinese and English, the customer writes about the trip, sees the conversation, opens Messages, My details
and the problem form without the page scrolling sideways; staff see the message on the trip page's box.
Screenshots go to ``$SCREENSHOT_DIR/portal`` (default /tmp/caravan-screenshots/portal)."""
import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in
from tests.test_portal_browser import fits, shots, traveler  # noqa: F401  (fixture)

pytestmark = BROWSER_TESTS

PHONE = 390


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_messages_and_my_details_fit_a_phone(app_server, traveler, language):  # noqa: F811
    from playwright.sync_api import expect

    folder, trip = shots(), traveler["trip"]
    token, _code = traveler["tokens"][0]
    words = f"Can we add a day in Nara? ({language}) 奈良可以多待一天吗？"
    with chromium_page(locale="zh-CN" if language == "zh-hans" else "en-US") as page:
        page.set_viewport_size({"width": PHONE, "height": 860})
        page.goto(app_server.url("alpha", f"/portal/link/{token}/"))
        page.locator("main form button").click()
        expect(page).to_have_url(app_server.url("alpha", "/portal/"))
        if (page.locator("html").get_attribute("lang") or "") != language:
            page.locator("form.portal-lang button").click()
        expect(page.locator("html")).to_have_attribute("lang", language)
        page.goto(app_server.url("alpha", f"/portal/trips/{trip}/"))
        panel = page.locator('[data-test="portal-messages"]')
        panel.locator("textarea").fill(words)
        panel.locator("button").click()
        expect(page.locator('[data-test="portal-thread"] .portal-msg.mine').last).to_contain_text("Nara")
        fits(page, f"trip with messages {language}")
        page.screenshot(path=str(folder / f"trip-messages-{language}-{PHONE}.png"), full_page=True)
        for path, name in (("/portal/messages/", "messages"), ("/portal/me/", "me"),
                           (f"/portal/trips/{trip}/complaint/", "complaint")):
            page.goto(app_server.url("alpha", path))
            expect(page.locator("main h1")).to_be_visible()
            fits(page, f"{name} {language}")
            page.screenshot(path=str(folder / f"{name}-{language}-{PHONE}.png"), full_page=True)
        page.goto(app_server.url("alpha", "/portal/me/"))
        prefs = page.locator('[data-test="portal-preferences"]')
        prefs.locator("select[name=preferences-seat]").select_option("aisle")
        prefs.locator("button").click()
        expect(page.locator("select[name=preferences-seat]")).to_have_value("aisle")

    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "sales")
        page.goto(app_server.url("alpha", f"/trips/{trip}/"))
        expect(page.locator('[data-test="trip-portal-messages"]')).to_contain_text("Nara")


@pytest.fixture(autouse=True)
def _no_leftover_limits(traveler):  # noqa: F811
    """The app server counts the traveler's messages in Redis; ids of committed rows come back in a new test
    database, so start from nothing."""
    import time

    from django.core.cache import cache

    from crm.portal import messaging
    from tenants.models import Agency

    with tenant_context(Agency.objects.get(slug="alpha")):
        window = messaging.PER_HOUR[1]
        cache.delete(f"rate:portal-message:{traveler['customer']}:{int(time.time()) // window * window}")
