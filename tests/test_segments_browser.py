"""In a real browser: a manager builds a segment. The count follows the filters as they are typed
(htmx), a bad filter shows its error in place of the count, the preview lists the matching
customers with links to their cards, and the saved segment shows its filters in words.

Chromium drives the gunicorn app server of tests/servers.py, so everything is committed: the
``segment_case`` fixture makes the customers (in a city of their own, so nothing else counts) and
removes them and the segment afterwards, restoring alpha's sessions and sign-ins.
"""
import uuid

import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS


@pytest.fixture
def segment_case(committed):
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from crm.customers import services as crm_services
    from crm.customers.models import ChangeLog, Customer
    from crm.segments.models import Segment
    from tenants.models import Agency

    tag = uuid.uuid4().hex[:6]
    city = f"测试城{tag}"
    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            manager = User.objects.get(email="manager@alpha.test")
            last_login = manager.last_login
            sessions = set(Session.objects.values_list("session_key", flat=True))
            made = []
            for name, cabin in ((f"王芳 {tag}", "business"), (f"李雷 {tag}", "business"), (f"张伟 {tag}", "economy")):
                customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=name,
                                                        addresses=[{"line": "世纪大道 1 号", "city": city}])
                crm_services.customer_preferences_set(actor=None, customer=customer, cabin=cabin)
                made.append(customer)
    yield {"tag": tag, "city": city, "customers": made}
    with committed(), tenant_context(agency):
        Segment.objects.filter(name__endswith=tag).delete()
        Customer.objects.filter(pk__in=[c.pk for c in made]).delete()
        User.objects.filter(pk=manager.pk).update(last_login=last_login)
        Session.objects.exclude(session_key__in=sessions).delete()


def test_build_a_segment_with_a_live_count_preview_and_save(app_server, segment_case, committed):
    from playwright.sync_api import expect

    case = segment_case
    count = '[data-test="live-count"] [data-count]'
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "manager")
        page.click('nav summary:has-text("Marketing")')  # the header groups it (issue 20)
        page.click('nav a:has-text("Segments")')
        page.click('[data-test="new-segment"]')
        page.fill('input[name="city"]', case["city"])
        expect(page.locator(count)).to_have_attribute("data-count", "3")
        page.check('input[name="cabin"][value="business"]')
        expect(page.locator(count)).to_have_attribute("data-count", "2")
        page.fill('input[name="age_min"]', "60")
        page.fill('input[name="age_max"]', "20")
        expect(page.locator('[data-test="count-errors"]')).to_contain_text("The minimum is above the maximum.")
        page.fill('input[name="age_min"]', "")
        page.fill('input[name="age_max"]', "")
        expect(page.locator(count)).to_have_attribute("data-count", "2")
        page.click('[data-test="preview-button"]')
        preview = page.locator('[data-test="preview-area"]')
        expect(preview).to_contain_text(f"王芳 {case['tag']}")
        expect(preview).to_contain_text(f"李雷 {case['tag']}")
        expect(preview).not_to_contain_text(f"张伟 {case['tag']}")
        page.fill('input[name="name"]', f"商务舱 {case['tag']}")
        page.click('[data-test="save"]')
        expect(page.locator('[data-test="count"]')).to_have_text("2")
        expect(page.locator('[data-test="filters"]')).to_contain_text(case["city"])
        expect(page.locator('[data-test="filters"]')).to_contain_text("Business")
        page.click(f'a:has-text("王芳 {case["tag"]}")')
        expect(page.locator("main h1")).to_contain_text(f"王芳 {case['tag']}")
