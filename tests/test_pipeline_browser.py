"""In a real browser: the pipeline board fits the page at 1400 px and on a phone (390 px), and a card's
move menu starts on a "Move to…" placeholder (issue 20: the board was 1560 px in a 1060 px box with
Won and Lost cut off, and the menu defaulted to "New", so one click moved a deal backwards).

The admin's deals, one per stage, are committed for the app server and deleted afterwards.
"""
import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from tests.servers import app_server, committed  # noqa: F401  (fixtures)
from tests.test_browser import BROWSER_TESTS, alpha_admin, chromium_page, sign_in  # noqa: F401  (alpha_admin: a fixture)

pytestmark = BROWSER_TESTS

CODES = ("new", "qualified", "quoted", "deposit", "won", "lost")


@pytest.fixture
def deals(committed, alpha_admin):  # noqa: F811
    """One opportunity of admin@alpha.test at each default stage; removed after the test."""
    from crm.customers.models import Customer
    from crm.pipeline.models import Opportunity, Stage
    from tenants.models import Agency
    from tests.test_trips_services import opportunity, person

    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            customer = person("看板测试", phones=["13577778888"])
            made = {code: opportunity(customer, owner=alpha_admin, code=code, title=f"Board {code} 看板",
                                      closed_at=timezone.now() if Stage.objects.get(code=code).is_closed else None)
                    for code in CODES}
            stages = {code: Stage.objects.get(code=code).pk for code in CODES}
    yield made, stages
    with committed(), tenant_context(agency):
        Opportunity.objects.filter(customer_id=customer.pk).delete()
        Customer.objects.filter(pk=customer.pk).delete()


def page_overflow(page) -> dict:
    return page.evaluate("""() => {
        const board = document.querySelector('[data-test=board]');
        return {page: document.documentElement.scrollWidth, window: window.innerWidth,
                board: board.scrollWidth, box: board.clientWidth,
                more: board.parentElement.dataset.more};
    }""")


def test_board_fits_at_1400_and_390_and_menus_start_on_the_placeholder(app_server, deals, committed):  # noqa: F811
    from playwright.sync_api import expect

    made, stages = deals
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")

        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(app_server.url("alpha", "/pipeline/"))
        for code in CODES:
            expect(page.locator(f"[data-opportunity='{made[code].pk}']")).to_be_visible()
        sizes = page_overflow(page)
        assert sizes["page"] <= sizes["window"], sizes
        assert sizes["board"] <= sizes["box"], sizes  # all six columns shown, none cut off
        assert sizes["more"] == "", sizes  # so no fade either
        lost = page.locator(f"[data-stage='{stages['lost']}']").bounding_box()
        assert lost["x"] + lost["width"] <= sizes["window"]

        menu = page.locator(f"[data-opportunity='{made['qualified'].pk}'] select[name=stage]")
        expect(menu).to_have_value("")
        assert menu.evaluate("s => s.options[s.selectedIndex].text") == "Move to…"
        assert menu.evaluate("s => [...s.options].map(o => o.value)") == [
            "", *(str(stages[c]) for c in ("new", "quoted", "deposit", "won", "lost"))]
        deposit_menu = page.locator(f"[data-opportunity='{made['deposit'].pk}'] select[name=stage]")
        expect(deposit_menu).to_have_value("")
        assert deposit_menu.evaluate("s => [...s.options].map(o => o.value)") == [
            "", str(stages["won"]), str(stages["lost"])]
        expect(page.locator(f"[data-opportunity='{made['won'].pk}'] select[name=stage]")).to_have_count(0)

        # One click on Move without a choice goes nowhere: the menu asks for a stage.
        page.locator(f"[data-opportunity='{made['qualified'].pk}'] button[type=submit]").click()
        assert menu.evaluate("s => s.validity.valueMissing")
        expect(page).to_have_url(app_server.url("alpha", "/pipeline/"))

        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(app_server.url("alpha", "/pipeline/"))
        sizes = page_overflow(page)
        assert sizes["page"] <= sizes["window"], sizes  # the page never scrolls sideways
        assert sizes["board"] > sizes["box"], sizes  # the board scrolls in its own box …
        expect(page.locator(".board-frame")).to_have_attribute("data-more", "right")  # … with a fade as the cue
        page.locator("[data-test=board]").evaluate("b => b.scrollTo({left: b.scrollWidth})")
        expect(page.locator(".board-frame")).to_have_attribute("data-more", "left")
        expect(page.locator(f"[data-opportunity='{made['new'].pk}'] select[name=stage]")).to_have_value("")

    from crm.pipeline.models import StageChange
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        assert not StageChange.objects.filter(opportunity_id__in=[o.pk for o in made.values()]).exists()
