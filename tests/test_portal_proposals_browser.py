"""The proposal page in Chromium on a phone (issue 21): a customer reads a quote's proposal at 390 px in
Chinese, types their name, ticks the terms and accepts; the page then says who accepted, and the trip is
confirmed. Rows are committed at alpha (the app server reads them); conftest removes them afterwards."""
import uuid

import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page
from tests.test_phone_layout import sideways, widest

from .test_portal_browser import shots

pytestmark = BROWSER_TESTS


@pytest.fixture
def sent(committed):  # noqa: F811
    """A quote of 8 items for a Chinese-speaking customer, its proposal as proposal_send stores it, a link."""
    from datetime import date, timedelta

    from crm.proposals import services
    from crm.proposals.models import Proposal
    from crm.trips import services as trips
    from tenants.models import Agency

    from .portal_helpers import link_for, person

    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            customer = person("欧阳娜娜", f"ouyang.{uuid.uuid4().hex[:8]}@example.cn", language="zh-hans")
            depart = date.today() + timedelta(days=90)
            trip = trips.trip_create(actor=None, customer=customer, title="北海道冬季温泉与滑雪深度游 9 天",
                                     destination="日本 北海道 札幌 小樽 二世谷", depart_on=depart,
                                     return_on=depart + timedelta(days=8))
            for n in range(8):
                trips.item_add(actor=None, trip=trip, kind=("flight", "hotel", "tour", "transfer")[n % 4],
                               description=f"第 {n + 1} 项：二世谷希尔顿度假酒店 豪华双床房 含早晚餐 Niseko Village",
                               starts_on=depart + timedelta(days=n), ends_on=depart + timedelta(days=n + 1),
                               cost="2000", sell="12345.67")
            snapshot = services.snapshot_of(trip, included="往返机票\n全程酒店\n中文导游", excluded="签证费\n个人消费",
                                            terms="取消条款：出发前 30 天以上取消，全额退还定金；" * 6)
            Proposal.objects.create(trip=trip, version=1, snapshot=snapshot, recipient=customer,
                                    content_hash=services.content_hash(snapshot), message="王经理：请查收方案。")
            token, _code = link_for(customer)
    return {"trip": trip.pk, "token": token, "agency": agency}


def test_a_customer_accepts_a_proposal_on_a_phone(app_server, sent):  # noqa: F811
    from playwright.sync_api import expect

    from crm.trips.models import Trip

    with chromium_page(locale="zh-CN") as page:
        page.set_viewport_size({"width": 390, "height": 860})
        page.goto(app_server.url("alpha", f"/portal/link/{sent['token']}/"))
        page.locator("main form button").click()
        page.goto(app_server.url("alpha", f"/portal/trips/{sent['trip']}/proposal/"))
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        expect(page.locator(".proposal-items tr")).to_have_count(8 + 3)
        assert sideways(page) <= 0, f"the proposal page scrolls sideways: {widest(page)}"
        page.screenshot(path=str(shots() / "proposal-zh-hans-390.png"), full_page=True)
        page.locator("[data-test=proposal-accept-button]").click()  # nothing typed, nothing ticked: refused
        expect(page.locator("p.error[data-field=agreed]")).to_have_count(1)
        page.locator("input[name=typed_name]").fill("欧阳娜娜")
        page.locator("input[name=agreed]").check()
        page.locator("[data-test=proposal-accept-button]").click()
        expect(page.locator("[data-test=proposal-accepted]")).to_contain_text("欧阳娜娜")
        assert sideways(page) <= 0, f"the accepted proposal scrolls sideways: {widest(page)}"
    with tenant_context(sent["agency"]):
        assert Trip.objects.get(pk=sent["trip"]).status == Trip.Status.CONFIRMED
