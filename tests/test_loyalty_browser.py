"""In a real browser: a salesperson records on a customer's card whom they referred, finding the
friend with the search-as-you-type picker (htmx), and then the Care hub counts the referral.

Chromium drives the gunicorn app server of tests/servers.py, so everything is committed: the
``referral_case`` fixture makes the two customers and removes them (with the referral and the
timeline) afterwards, restoring alpha's sessions and sign-ins.
"""
import uuid

import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS


@pytest.fixture
def referral_case(committed):
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from crm.customers import services as crm_services
    from crm.loyalty.models import Referral
    from crm.customers.models import ChangeLog, Customer
    from tenants.models import Agency

    tag = uuid.uuid4().hex[:6]
    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            sales = User.objects.get(email="sales@alpha.test")
            last_login = sales.last_login
            sessions = set(Session.objects.values_list("session_key", flat=True))
            referrer = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=f"推荐人 Tang {tag}",
                                                    owner=sales)
            friend = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=f"朋友 Song {tag}",
                                                  owner=sales)
    yield {"referrer": referrer, "friend": friend, "tag": tag}
    with committed(), tenant_context(agency):
        Referral.objects.filter(referrer_id=referrer.pk).delete()
        Customer.objects.filter(pk__in=[referrer.pk, friend.pk]).delete()
        User.objects.filter(pk=sales.pk).update(last_login=last_login)
        Session.objects.exclude(session_key__in=sessions).delete()


def test_record_a_referral_from_the_card_with_the_picker(app_server, referral_case, committed):
    from playwright.sync_api import expect

    referrer, friend, tag = referral_case["referrer"], referral_case["friend"], referral_case["tag"]
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "sales")
        page.goto(app_server.url("alpha", f"/customers/{referrer.pk}/"))
        card = page.locator('[data-test="loyalty-card"]')
        expect(card.locator('[data-test="loyalty-referrals"]')).to_have_text("Referred 0 customers.")
        card.locator("summary", has_text="Record a customer they referred").click()
        card.locator("#pick-referred-card").fill(f"Song {tag}")
        choice = card.locator(f'#choices-referred-card input[name="referred"][value="{friend.pk}"]')
        expect(choice).to_be_visible()
        choice.check()
        card.locator('#note-made').fill("大学同学 classmate")
        card.locator('button:has-text("Record referral")').last.click()
        expect(page.locator('[data-test="loyalty-referrals"]')).to_have_text("Referred 1 customer.")
        expect(page.locator('[data-test="loyalty-card"]')).to_contain_text(f"朋友 Song {tag}")
        page.goto(app_server.url("alpha", "/care/referrals/"))
        expect(page.locator('[data-test="referrals"]')).to_contain_text(f"推荐人 Tang {tag}")

    from crm.loyalty.models import Referral
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        made = Referral.objects.get(referrer_id=referrer.pk)
        assert (made.referred_id, made.status, made.note) == (friend.pk, "pending", "大学同学 classmate")
