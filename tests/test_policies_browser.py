"""In a real browser: a manager writes a corporate account's travel policy (formsets), a
salesperson checks a trip's business-class flight against it and sees why it is out of policy,
and the manager approves it from the dashboard; the trip shows the approval.

Chromium drives the gunicorn app server of tests/servers.py, so everything is committed: the
``policy_case`` fixture makes the account, people and trip, and removes them (with the policy,
checks, approvals, tasks and timeline) afterwards, restoring alpha's sessions and sign-ins.
"""
import re
import uuid
from datetime import timedelta

import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS


@pytest.fixture
def policy_case(committed):
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from accounts.models import User
    from crm.customers.models import Customer
    from crm.pipeline.models import Task
    from crm.policies.models import Approval, BookingCheck, TravelPolicy
    from crm.trips.models import Trip
    from tenants.models import Agency
    from tests.policy_factories import company, employ, person, trip_with_items

    tag = uuid.uuid4().hex[:6]
    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            users = {u.pk: u.last_login for u in User.objects.filter(email__in=["sales@alpha.test",
                                                                                "manager@alpha.test"])}
            sessions = set(Session.objects.values_list("session_key", flat=True))
            manager = User.objects.get(email="manager@alpha.test")
            account = company(f"星辰科技 Stellar Tech {tag}")
            boss = person(f"周总 Director Zhou {tag}", email=f"zhou-{tag}@stellar.example.cn")
            traveler = person(f"陈静 Chen Jing {tag}")
            employ(account, boss, grade="D1", department="Sales")
            employ(account, traveler, grade="P3", department="Sales", reports_to=boss)
            trip, flight, _hotel = trip_with_items(account, traveler, owner=manager, days_ahead=30)
            departure = timezone.localdate() + timedelta(days=30)
            ids = [account.pk, boss.pk, traveler.pk]
    yield {"account": account, "trip": trip, "flight": flight, "traveler": traveler, "departure": departure}
    with committed(), tenant_context(agency):
        Approval.objects.filter(trip=trip).delete()
        BookingCheck.objects.filter(trip=trip).delete()
        TravelPolicy.objects.filter(account_id=account.pk).delete()
        Task.objects.filter(trip=trip).delete()
        Trip.objects.filter(pk=trip.pk).delete()
        Customer.objects.filter(pk__in=ids).delete()
        for pk, last_login in users.items():
            User.objects.filter(pk=pk).update(last_login=last_login)
        Session.objects.exclude(session_key__in=sessions).delete()


def state(committed, case) -> dict:
    from crm.policies.models import Approval, BookingCheck, PolicyVersion
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        return {"versions": list(PolicyVersion.objects.filter(policy__account=case["account"]).values_list(
                    "number", flat=True)),
                "checks": list(BookingCheck.objects.filter(trip=case["trip"]).values_list("compliant", flat=True)),
                "approvals": list(Approval.objects.filter(trip=case["trip"]).values_list("status", "comment"))}


def test_define_a_policy_check_an_offer_see_why_and_approve_it(app_server, policy_case, committed):
    from playwright.sync_api import expect

    case = policy_case
    account, trip, flight = case["account"], case["trip"], case["flight"]
    with chromium_page() as page:
        # 1. The manager writes the account's policy from its card.
        sign_in(page, app_server, "alpha", "manager")
        page.goto(app_server.url("alpha", f"/customers/{account.pk}/"))
        page.click('[data-test="policy-card"] [data-test="policy-edit"]')
        expect(page.locator("main h1")).to_contain_text("Travel policy of")
        page.select_option('select[name="cabin-0-max_cabin"]', "economy")
        page.select_option('select[name="cabin-1-max_cabin"]', "business")
        page.fill('input[name="cabin-1-min_grade"]', "D1")
        page.select_option('select[name="cap-0-city_tier"]', "1")
        page.fill('input[name="cap-0-nightly_cap"]', "900")
        page.fill('input[name="fare_max_stops"]', "1")
        page.fill('input[name="note"]', "首版差旅政策")
        page.click('button:has-text("Save as a new version")')
        expect(page.locator('[data-test="in-force"]')).to_contain_text("Version 1")
        expect(page.locator('[data-test="policy-flights"]')).to_contain_text("Business class")

        # 2. A salesperson checks the trip's business-class flight for the P3 traveler.
        page.context.clear_cookies()
        sign_in(page, app_server, "alpha", "sales")
        page.goto(app_server.url("alpha", f"/trips/{trip.pk}/"))
        page.click(f'a[href="/trips/items/{flight.pk}/policy-check/"]')
        expect(page.locator('input[name="flight_numbers"]')).to_have_value("CA1301")
        page.fill('input[name="departure"]', f"{case['departure'].isoformat()}T09:00")
        page.fill('input[name="duration_minutes"]', "195")
        page.select_option('select[name="cabin"]', "business")
        page.fill('input[name="fare"]', "5200")
        page.fill('input[name="alt-0-flight_numbers"]', "MU5301")
        page.fill('input[name="alt-0-departure"]', f"{case['departure'].isoformat()}T10:00")
        page.select_option('select[name="alt-0-cabin"]', "economy")
        page.fill('input[name="alt-0-price"]', "1800")
        page.click('button:has-text("Check and record")')

        # 3. The trip shows the verdict and why.
        expect(page).to_have_url(re.compile(rf"/trips/{trip.pk}/#policy$"))
        checks = page.locator('[data-test="policy-checks"]')
        expect(checks).to_contain_text("Out of policy")
        expect(checks).to_contain_text("Business class not allowed for grade P3 on a 3 h 15 min flight "
                                       "(at most Economy)")
        expect(checks).to_contain_text("CNY 3,400.00")  # the saving missed against MU5301
        expect(page.locator('[data-test="approval-status"]')).to_have_text("Pending")

        # 4. The manager approves it from the dashboard, with a comment.
        page.context.clear_cookies()
        sign_in(page, app_server, "alpha", "manager")
        page.locator('[data-test="policy-dashboard"] a', has_text=trip.title).click()
        expect(page.locator('[data-test="rules"]')).to_contain_text("Business class not allowed for grade P3")
        page.check('input[name="decision"][value="approved"]')
        page.fill('textarea[name="comment"]', "客户高层会议，同意公务舱")
        page.click('button:has-text("Record the decision")')
        expect(page.locator('[data-test="status"]')).to_have_text("Approved")
        expect(page.locator('[data-test="comment"]')).to_have_text("客户高层会议，同意公务舱")
        page.goto(app_server.url("alpha", f"/trips/{trip.pk}/"))
        expect(page.locator('[data-test="approval-status"]')).to_have_text("Approved")

    found = state(committed, case)
    assert found == {"versions": [1], "checks": [False], "approvals": [("approved", "客户高层会议，同意公务舱")]}
