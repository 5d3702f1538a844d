"""In a real browser: the pipeline board fits the page at 1400 px and on a phone (390 px), and a card's
move menu starts on a "Move to…" placeholder (issue 20: the board was 1560 px in a 1060 px box with
Won and Lost cut off, and the menu defaulted to "New", so one click moved a deal backwards).

The admin's deals, one per stage, are committed for the app server and deleted afterwards.
"""
import re

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

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


def stage_of(committed, pk) -> str:  # noqa: F811
    from crm.pipeline.models import Opportunity
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        return Opportunity.objects.select_related("stage").get(pk=pk).stage.code


def test_drag_a_card_to_an_allowed_column_moves_it_and_a_refused_column_refuses(app_server, deals, committed):  # noqa: F811
    """Issue 20: cards drag to another column under the move service's rules; the drop posts the move menu's form."""
    from playwright.sync_api import expect

    made, stages = deals
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")
        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(app_server.url("alpha", "/pipeline/"))
        card = page.locator(f"[data-opportunity='{made['qualified'].pk}']")
        expect(card).to_have_attribute("draggable", "true")
        expect(page.locator(f"[data-opportunity='{made['won'].pk}']")).not_to_have_attribute("draggable", "true")

        # While a deposit card is carried, the columns it may not reach are marked (only won and lost are open).
        deposit = page.locator(f"[data-opportunity='{made['deposit'].pk}']")
        deposit.dispatch_event("dragstart", {"dataTransfer": page.evaluate_handle("() => new DataTransfer()")})
        for code in ("new", "qualified", "quoted"):
            expect(page.locator(f"[data-stage='{stages[code]}']")).to_have_class(re.compile(r"\bboard-refused\b"))
        for code in ("won", "lost"):
            expect(page.locator(f"[data-stage='{stages[code]}']")).to_have_class(re.compile(r"\bboard-allowed\b"))
        deposit.dispatch_event("dragend")
        expect(page.locator(".board-refused, .board-allowed")).to_have_count(0)

        # Refused: deposit back to New. Nothing is posted, the reason is shown, the card stays.
        deposit.drag_to(page.locator(f"[data-stage='{stages['new']}'] header"), source_position={"x": 3, "y": 3})
        expect(page.locator("[data-test=board-status]")).to_have_text(
            "An opportunity cannot move from “Deposit paid” to “New”.")
        expect(page.locator(f"[data-stage='{stages['deposit']}'] [data-opportunity='{made['deposit'].pk}']")).to_be_visible()
        expect(page).to_have_url(app_server.url("alpha", "/pipeline/"))

        # Lost needs a reason: the drop picks Lost in the card's menu and asks why, then Move posts it.
        deposit.drag_to(page.locator(f"[data-stage='{stages['lost']}'] header"), source_position={"x": 3, "y": 3})
        expect(page.locator("[data-test=board-status]")).to_have_text("Choose why it was lost, then press Move.")
        reason = deposit.locator("select[name=lost_reason]")
        expect(reason).to_be_visible()
        expect(reason).to_be_focused()
        expect(deposit.locator("select[name=stage]")).to_have_value(str(stages["lost"]))
        expect(page).to_have_url(app_server.url("alpha", "/pipeline/"))
        reason.select_option(index=1)
        deposit.locator("button[type=submit]").click()
        expect(page.locator(f"[data-stage='{stages['lost']}'] [data-opportunity='{made['deposit'].pk}']")).to_be_visible()

        # Allowed: qualified → quoted. The page comes back with the move service's message.
        card.drag_to(page.locator(f"[data-stage='{stages['quoted']}'] header"), source_position={"x": 3, "y": 3})
        expect(page.locator(".flash-success")).to_contain_text("moved to")
        expect(page.locator(f"[data-stage='{stages['quoted']}'] [data-opportunity='{made['qualified'].pk}']")).to_be_visible()

    assert stage_of(committed, made["qualified"].pk) == "quoted"
    assert stage_of(committed, made["deposit"].pk) == "lost"  # refused to New, then moved to Lost with a reason


def test_keyboard_moves_a_card_and_the_hint_says_how_in_both_languages(app_server, deals, committed):  # noqa: F811
    from django.utils import translation
    from playwright.sync_api import expect

    hint = ("Drag a card to another column. With the keyboard: focus a card, press Space to pick it up, the Left and "
            "Right arrows to choose a column, Enter to drop it, Escape to cancel.")
    with translation.override("zh-hans"):
        hint_zh = translation.gettext(hint)
        refused_zh = translation.gettext("An opportunity cannot move from “%(from)s” to “%(to)s”.")
    made, stages = deals
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")
        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(app_server.url("alpha", "/pipeline/"))
        expect(page.locator("[data-test=board-hint]")).to_have_text(hint)
        status = page.locator("[data-test=board-status]")

        card = page.locator(f"[data-opportunity='{made['new'].pk}']")
        card.focus()
        page.keyboard.press("Space")
        expect(status).to_contain_text("Picked up “Board new 看板”")
        page.keyboard.press("ArrowRight")  # qualified
        expect(status).to_have_text("“Qualified”: press Enter to move the opportunity here.")
        page.keyboard.press("Escape")  # cancelled: nothing moves
        expect(status).to_have_text("Move cancelled.")
        expect(page.locator(".board-over")).to_have_count(0)

        # Picked up again, two columns on, dropped with Enter: moved through the move menu's form.
        card.focus()
        page.keyboard.press("Enter")
        for _ in range(2):
            page.keyboard.press("ArrowRight")  # quoted
        expect(status).to_have_text("“Quoted”: press Enter to move the opportunity here.")
        page.keyboard.press("Enter")
        expect(page.locator(".flash-success")).to_contain_text("moved to")
        expect(page.locator(f"[data-stage='{stages['quoted']}'] [data-opportunity='{made['new'].pk}']")).to_be_visible()

        # Lost → won is refused from the keyboard too, and stays put.
        lost = page.locator(f"[data-opportunity='{made['lost'].pk}']")
        lost.focus()
        page.keyboard.press("Space")
        page.keyboard.press("ArrowLeft")  # won
        expect(status).to_have_text("An opportunity cannot move from “Lost” to “Won”.")
        page.keyboard.press("Enter")
        expect(status).to_have_text("An opportunity cannot move from “Lost” to “Won”.")
        expect(page).to_have_url(app_server.url("alpha", "/pipeline/"))

        page.click('button[data-lang="zh-hans"]')
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        page.goto(app_server.url("alpha", "/pipeline/"))
        expect(page.locator("[data-test=board-hint]")).to_have_text(hint_zh)
        lost.focus()
        page.keyboard.press("Space")
        page.keyboard.press("ArrowLeft")
        won_name = page.locator(f"[data-stage='{stages['won']}']").get_attribute("data-name")
        lost_name = page.locator(f"[data-stage='{stages['lost']}']").get_attribute("data-name")
        expect(status).to_have_text(refused_zh % {"from": lost_name, "to": won_name})

    assert stage_of(committed, made["new"].pk) == "quoted"
    assert stage_of(committed, made["lost"].pk) == "lost"
