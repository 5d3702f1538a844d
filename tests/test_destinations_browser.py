"""In a real browser, as sales, at 1400 px and on a phone (390 px), in English and in Chinese: a trip links the
article of its destination and back; the customer card's Destinations panel opens the article; "Start checklist
from visa notes" fills the travelers' document checklists and warns about a stale note. Screenshots go to
``$SCREENSHOT_DIR`` (else /tmp/caravan-screenshots).

Chromium drives the gunicorn app server (tests/servers.py), so the data is committed: the fixture makes the
article, the customer and the trip, and removes them (and puts sales' language and sessions back) afterwards.
"""
import os
import re
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS
WIDTHS = (1400, 390)


@pytest.fixture
def journey(committed):
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from crm.customers import services as crm_services
    from crm.customers.models import ChangeLog, Customer
    from crm.destinations import services
    from crm.destinations.models import Article
    from crm.trips import services as trip_services
    from crm.trips.models import Trip
    from tenants.models import Agency

    tag = uuid.uuid4().hex[:6]
    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            sales = User.objects.get(email="sales@alpha.test")
            sessions = set(Session.objects.values_list("session_key", flat=True))
            article = services.article_save(actor=sales, article=None, data={
                "kind": "city", "country": "JP", "city": "Tokyo", "iata_codes": ["NRT", "HND"],
                "title_en": "Tokyo", "title_zh": "东京", "tags": ["family", "food"],
                "overview_en": "A huge, safe and very clean city; easy with children.",
                "overview_zh": "安全、干净的大都市，带孩子出行也很方便。",
                "transport_zh": "地铁和 JR 覆盖全城，买一张 Suica 卡即可。",
                "tips_en": "Book teamLab and the Ghibli Museum a month ahead.",
                "climate": [{"high": h, "low": h - 8, "rain_mm": r, "note": ""} for h, r in
                            zip((10, 11, 14, 19, 23, 26, 30, 31, 27, 22, 17, 12),
                                (52, 56, 118, 125, 138, 168, 154, 168, 210, 198, 93, 51))]})
            services.visa_note_save(actor=sales, article=article, nationality="CN", data={
                "requirement": "visa", "stay_days": 15, "documents": ["passport", "photos", "assets", "employment"],
                "text_zh": "单次旅游签证，需在职证明和资产证明。", "text_en": "Single-entry tourist visa.",
                "checked_on": timezone.localdate() - timedelta(days=200)})
            customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=f"王芳 {tag}",
                                                    phones=["13698765432"])
            trip = trip_services.trip_create(actor=sales, customer=customer, title=f"东京亲子游 {tag}",
                                             destination="东京", depart_on=date(2031, 4, 1),
                                             return_on=date(2031, 4, 8), owner=sales)
            if not trip.travelers.exists():
                trip_services.traveler_add(actor=sales, trip=trip, customer=customer)
    yield {"article": article, "customer": customer, "trip": trip}
    with committed(), tenant_context(agency):
        Trip.objects.filter(pk=trip.pk).delete()
        Customer.objects.filter(pk=customer.pk).delete()
        Article.objects.filter(pk=article.pk).delete()
        User.objects.filter(pk=sales.pk).update(language=sales.language, last_login=sales.last_login)
        Session.objects.exclude(session_key__in=sessions).delete()


def _set_language(committed, language: str) -> None:
    from accounts.models import User
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        User.objects.filter(email="sales@alpha.test").update(language=language)


def _shots() -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or "/tmp/caravan-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _fits(page) -> None:
    sizes = page.evaluate("() => ({page: document.documentElement.scrollWidth, window: window.innerWidth})")
    assert sizes["page"] <= sizes["window"] + 1, sizes  # nothing pushes the page sideways


def _snap(page, name: str, width: int) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top, not over the middle of the shot
    page.screenshot(path=str(_shots() / f"destinations-{name}-{width}.png"), full_page=True)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_trip_article_card_panel_and_checklist_from_visa_notes(app_server, journey, committed, language):
    from playwright.sync_api import expect

    article, customer, trip = journey["article"], journey["customer"], journey["trip"]
    _set_language(committed, language)
    zh = language == "zh-hans"
    title = "东京" if zh else "Tokyo"
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "sales")
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            # The trip links its destination's article; the article, then back to the trip.
            page.goto(app_server.url("alpha", f"/trips/{trip.pk}/"))
            box = page.locator('[data-test="trip-destination"]')
            expect(box).to_be_visible()
            expect(page.locator('[data-test="visa-stale-warning"]')).to_be_visible()
            _fits(page)
            _snap(page, f"trip-{language}", width)
            box.locator('[data-test="destination-link"]').click()
            expect(page).to_have_url(re.compile(rf"/destinations/{article.pk}/$"))
            expect(page.locator("main h1")).to_contain_text(title)
            expect(page.locator('[data-test="section-overview"] .prose').first).to_contain_text(
                "安全" if zh else "safe")
            expect(page.locator('[data-test="stale-warning"]')).to_be_visible()
            expect(page.locator('[data-test="climate"]')).to_be_visible()
            _fits(page)
            _snap(page, f"article-{language}", width)
            page.go_back()
            expect(page).to_have_url(re.compile(rf"/trips/{trip.pk}/$"))

            # The customer card's Destinations panel opens the same article.
            page.goto(app_server.url("alpha", f"/customers/{customer.pk}/"))
            panel = page.locator('[data-test="customer-destinations"]')
            expect(panel).to_be_visible()
            panel.scroll_into_view_if_needed()
            _snap(page, f"card-{language}", width)
            panel.locator(f'a[href="/destinations/{article.pk}/"]').click()
            expect(page).to_have_url(re.compile(rf"/destinations/{article.pk}/$"))

            # The list finds it by pinyin as you type; the form, as its writer sees it.
            page.goto(app_server.url("alpha", "/destinations/"))
            page.fill('[data-test="destination-filters"] input[name=q]', "dongjing")
            expect(page.locator(f'[data-article="{article.pk}"]')).to_be_visible()
            expect(page.locator(f'[data-article="{article.pk}"] [data-test="stale"]')).to_be_visible()
            _fits(page)
            _snap(page, f"list-{language}", width)
            page.goto(app_server.url("alpha", f"/destinations/{article.pk}/edit/"))
            expect(page.locator('[data-test="article-form"]')).to_be_visible()
            _fits(page)
            _snap(page, f"form-{language}", width)

        # The checklist from the visa notes (at 1400 px), then how it looks at both widths.
        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(app_server.url("alpha", f"/trips/{trip.pk}/"))
        page.locator('[data-test="checklist-from-visa-notes"]').click()
        expect(page).to_have_url(re.compile(rf"/trips/{trip.pk}/"))
        checklist = page.locator('[data-test="checklist"]')
        expect(checklist).to_be_visible()
        for label in (("护照", "照片", "在职证明") if zh else ("Passport", "Photos", "Employment certificate")):
            expect(checklist).to_contain_text(label)
        expect(page.locator(".flash").first).to_be_visible()
        expect(page.locator(".flash-warning")).to_be_visible()  # the note used is stale
        expect(checklist.locator('[data-test="checklist-note"]').first).to_contain_text(title)  # names the article
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            _fits(page)
            _snap(page, f"checklist-{language}", width)

    from crm.trips.models import ChecklistItem
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        documents = sorted(ChecklistItem.objects.filter(traveler__trip_id=trip.pk).values_list("document", flat=True))
        assert documents == ["assets", "employment", "passport", "photos"]
