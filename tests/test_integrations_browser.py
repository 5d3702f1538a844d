"""In a real browser: a salesperson opens a trip, searches hotels in Shanghai for its dates from the
supplier inventory, sees the traveler's policy verdict on each result and adds one to the itinerary.

Chromium drives the gunicorn app server (tests/servers.py), so the fixture commits the feed's
inventory and the trip, and removes them afterwards."""
import shutil
import uuid
from datetime import date
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS
SAMPLES = Path(__file__).parent / "data" / "feeds"


@pytest.fixture
def inventory_case(committed, tmp_path):
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from crm.customers.models import Customer
    from crm.policies.models import BookingCheck, TravelPolicy
    from crm.trips.models import Trip
    from integrations import services
    from integrations.models import Feed, Supplier
    from tenants.models import Agency
    from tests.policy_factories import company, employ, person, policy, trip_with_items

    tag = uuid.uuid4().hex[:6]
    with committed():
        supplier = Supplier.objects.create(code=f"browser-{tag}", name=f"酒店通 HotelHub {tag}", kind="hotel")
        feed = services.feed_save(Feed(supplier=supplier, name="Rates", connector="ota_hotel", mode="push"))
        path = tmp_path / "avail.xml"
        shutil.copy(SAMPLES / "ota_hotel_avail_rs.xml", path)
        assert services.run_file(feed, path, trigger="manual").status == "succeeded"
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            sessions = set(Session.objects.values_list("session_key", flat=True))
            last_login = User.objects.get(email="sales@alpha.test").last_login
            account = company(f"星辰科技 Stellar {tag}")
            traveler = person(f"陈静 Chen Jing {tag}")
            employ(account, traveler, grade="P3", department="Sales")
            policy(account)
            trip, _flight, _hotel = trip_with_items(account, traveler, owner=User.objects.get(email="sales@alpha.test"))
            Trip.objects.filter(pk=trip.pk).update(depart_on=date(2026, 12, 1), return_on=date(2026, 12, 3))
    yield {"trip": trip, "traveler": traveler}
    with committed():
        with tenant_context(agency):
            BookingCheck.objects.filter(trip=trip).delete()
            TravelPolicy.objects.filter(account_id=account.pk).delete()
            Trip.objects.filter(pk=trip.pk).delete()
            Customer.objects.filter(pk__in=[account.pk, traveler.pk]).delete()
            User.objects.filter(email="sales@alpha.test").update(last_login=last_login)
            Session.objects.exclude(session_key__in=sessions).delete()
        supplier.delete()


def test_search_a_hotel_from_a_trip_see_the_verdict_and_add_it(app_server, inventory_case, committed):
    from playwright.sync_api import expect

    trip = inventory_case["trip"]
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "sales")
        page.goto(app_server.url("alpha", f"/trips/{trip.pk}/"))
        page.click('[data-test="search-inventory"]')
        expect(page.locator("main h1")).to_contain_text("Search inventory")
        page.fill('[data-test="city"]', "SHA")
        expect(page.locator('input[name="check_in"]')).to_have_value("2026-12-01")  # the trip's dates
        page.click('[data-test="search"]')
        rows = page.locator('[data-test="result"]')
        expect(rows).to_have_count(3)
        expect(rows.first).to_contain_text("锦江之星")
        expect(rows.first.locator('[data-test="verdict"]')).to_contain_text("In policy")
        expect(rows.last.locator('[data-test="verdict"]')).to_contain_text("Out of policy")  # 2,960 over 2 nights
        rows.first.locator('[data-test="add"]').click()
        expect(page.locator('[data-test="itinerary"]')).to_contain_text("锦江之星 上海人民广场店")
        expect(page.locator('[data-test="itinerary"]')).to_contain_text("1,240.00")
    from crm.trips.models import ItineraryItem
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        item = ItineraryItem.objects.get(trip=trip, description__startswith="锦江之星")
        assert item.details["source"] == "inventory" and item.policy_checks.get().compliant


@pytest.fixture
def hotel_supplier(committed):
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from integrations import services
    from integrations.models import Feed, Supplier
    from tenants.models import Agency

    tag = uuid.uuid4().hex[:6]
    agency = Agency.objects.get(slug="alpha")
    with committed():
        supplier = Supplier.objects.create(code=f"connect-{tag}", name=f"锦程酒店 Jincheng {tag}", kind="hotel")
        with tenant_context(agency):
            sessions = set(Session.objects.values_list("session_key", flat=True))
            last_login = User.objects.get(email="admin@alpha.test").last_login
    yield supplier
    with committed():
        for feed in Feed.objects.unscoped().filter(supplier=supplier).select_related("agency"):
            services.feed_delete(feed)  # and its credentials in alpha's schema
        supplier.delete()
        with tenant_context(agency):
            User.objects.filter(email="admin@alpha.test").update(last_login=last_login)
            Session.objects.exclude(session_key__in=sessions).delete()


def test_an_admin_connects_the_agencys_own_supplier_account_from_settings(app_server, hotel_supplier, committed):
    from playwright.sync_api import expect

    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")
        page.goto(app_server.url("alpha", "/settings/"))
        page.click('[data-test="supplier-feeds"]')
        page.click(f'[data-test="connect-{hotel_supplier.code}"]')
        page.fill('input[name="name"]', "Our corporate rates 协议价")
        page.select_option('select[name="mode"]', "pull")
        page.click('[data-test="save-feed"]')  # a pulled feed without its address: refused, field by field
        expect(page.locator('[data-field="endpoint"]')).to_contain_text("address")
        page.select_option('select[name="mode"]', "push")
        page.click('[data-test="save-feed"]')
        expect(page.locator('[data-test="push-url"]')).to_contain_text("/integrations/push/")
        secret = page.locator('[data-test="new-secret"] code').inner_text()
        assert len(secret) > 30
        page.reload()
        expect(page.locator('[data-test="new-secret"]')).to_have_count(0)  # shown once
        page.click("text=All feeds")
        row = page.locator('[data-test="feeds"] tbody tr').filter(has_text="Our corporate rates 协议价")
        expect(row.locator('[data-test="health"]')).to_contain_text("Not run yet")
    from integrations import services
    from integrations.models import Feed

    with committed():
        feed = Feed.objects.unscoped().select_related("agency").get(supplier=hotel_supplier)
        assert feed.agency.slug == "alpha" and services.push_secret(feed) == secret
