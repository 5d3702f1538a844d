"""In a real browser: a manager opens the customer-value dashboard, the charts are drawn by the
vendored Chart.js from the page's numbers, and a segment drills down to its customers; a
salesperson filters the customer list by RFM.

Chromium drives the gunicorn app server of tests/servers.py, so everything is committed: the
``value_case`` fixture makes customers with trips and runs the value computation, and removes
them and everything the computation derived afterwards.
"""
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS


@pytest.fixture
def value_case(committed):
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from accounts.models import User
    from crm.customers.models import Customer
    from crm.pipeline.models import Task
    from crm.trips.models import ItineraryItem, Trip
    from crm.value import services
    from crm.value.models import CustomerValue, LifetimeFit, ValueSettings, ValueWarning
    from tenants.models import Agency

    tag = uuid.uuid4().hex[:6]
    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            users = {u.pk: u.last_login for u in User.objects.filter(email__in=["sales@alpha.test",
                                                                                "manager@alpha.test"])}
            sessions = set(Session.objects.values_list("session_key", flat=True))
            people = []
            for i in range(10):  # customer i: i + 1 trips, the later i the more recent and valuable
                person = Customer.objects.create(name=f"价值客户{i} {tag}")
                for n in range(i + 1):
                    at = timezone.now() - timedelta(days=(10 - i) * 10 + n)
                    trip = Trip.objects.create(customer=person, title=f"Trip {tag}", currency="CNY",
                                               status=Trip.Status.CONFIRMED, confirmed_at=at, created_at=at)
                    ItineraryItem.objects.create(trip=trip, kind=ItineraryItem.Kind.OTHER, description="x",
                                                 sell=Decimal(1000 * (i + 1)), cost=Decimal(500))
                people.append(person)
            services.value_run()
    yield {"people": people, "tag": tag}
    with committed(), tenant_context(agency):
        Task.objects.filter(kind=Task.Kind.VALUE_WARNING).delete()
        ValueWarning.objects.all().delete()
        CustomerValue.objects.all().delete()
        LifetimeFit.objects.all().delete()
        ValueSettings.objects.update(last_run_at=None)
        Trip.objects.filter(title=f"Trip {tag}").delete()
        Customer.objects.filter(pk__in=[p.pk for p in people]).delete()
        for pk, last_login in users.items():
            User.objects.filter(pk=pk).update(last_login=last_login)
        Session.objects.exclude(session_key__in=sessions).delete()


def test_dashboard_charts_drill_down_and_rfm_filter(app_server, value_case):
    from playwright.sync_api import expect

    tag = value_case["tag"]
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "manager")
        page.click('nav summary:has-text("Marketing")')  # the header groups it (issue 20)
        page.click('nav a:has-text("Customer value")')
        expect(page.locator("main h1")).to_have_text("Customer value")
        for chart in ("segments", "quadrants", "trend", "funnel", "service"):
            expect(page.locator(f'canvas[data-chart="{chart}"]')).to_have_attribute("data-drawn", "1")
        width = page.locator('canvas[data-chart="trend"]').evaluate("c => c.width")
        assert width > 100  # drawn at the size of its box, not a 0×0 placeholder
        expect(page.locator('[data-test="segments"] tr[data-segment="most_valuable"]')).to_contain_text("4")
        page.click('[data-test="segments"] a:has-text("Most valuable")')
        expect(page.locator('[data-test="strategy"]')).to_contain_text("protect them")
        expect(page.locator("main table")).to_contain_text(f"价值客户9 {tag}")
        expect(page.locator("main table")).not_to_contain_text(f"价值客户0 {tag}")

        page.context.clear_cookies()
        sign_in(page, app_server, "alpha", "sales")
        page.goto(app_server.url("alpha", "/customers/"))
        page.fill('input[name="rfm"]', "5*5")
        page.keyboard.press("Enter")
        expect(page.locator("#customer-rows")).to_contain_text(f"价值客户9 {tag}")
        expect(page.locator("#customer-rows")).not_to_contain_text(f"价值客户7 {tag}")
        expect(page.locator('#customer-rows [data-test="rfm-badge"]').first).to_have_text("555")
