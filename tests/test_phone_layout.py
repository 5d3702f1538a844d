"""Every page fits a phone; the navigation collapses (issue 20, item 6). In Chromium, against the app server.

- At 390 px the header shows the brand, the language switch, a menu button and the search; the navigation and the
  account menu open behind the button as a full-width panel (click and keyboard: Enter opens, Escape closes and gives
  the focus back), its groups are disclosures.
- At 1400 px an admin's header (every nav item there is) is one row: a few links and grouped menus that open one at
  a time, by click or keyboard, and close on Escape or a click outside.
- The pages field sales use most (customers list and card, pipeline list, tasks, trips list and a trip page with long
  unbroken text, the segment builder) do not scroll sideways at 390 px or 1400 px, in English and in Chinese; the
  segment builder is one column on a phone; the customers, pipeline and trips lists are cards on a phone (a table on
  a desktop); other tables scroll inside their own box.

The data are a few demo customers and journeys seeded into alpha (committed; conftest removes the rows afterwards),
with a trip and a customer given long unbroken texts. Screenshots go to ``$SCREENSHOT_DIR/phones`` (default
/tmp/caravan-screenshots/phones) for a person to look at.
"""
import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from tests.servers import sign_ins_put_back
from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS

PHONE, DESKTOP = 390, 1400
# Long unbroken texts, as staff paste them: a confirmation code, a booking reference, an e-mail address.
LONG_TITLE = "Reykjavík→Akureyri→Húsavík→Seyðisfjörður→Höfn→Vík→Reykjavík冰岛环岛自驾十四天极光追踪深度游"
LONG_NOTES = "Booking-reference:ICELANDAIR/FI-614-PVG-KEF-" + "X7Q9" * 20
LONG_EMAIL = "the.accounts.payable.department.of.pacific.rim.consulting@subsidiary.example-travel.test"


def shots() -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or "/tmp/caravan-screenshots") / "phones"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sideways(page) -> int:
    """How far the page scrolls sideways (0 when it fits)."""
    return page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")


def widest(page) -> list[str]:
    """The elements sticking out on the right, outside any box that scrolls itself (for the failure message)."""
    return page.evaluate("""() => {
      const out = [];
      for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.right <= innerWidth + 1 || r.width === 0) continue;
        let p = el.parentElement, inner = false;
        for (; p && p !== document.body; p = p.parentElement) if (getComputedStyle(p).overflowX !== 'visible') inner = true;
        if (!inner) out.push(el.tagName.toLowerCase() + '.' + String(el.className).trim().replace(/\\s+/g, '.') + ' ' + Math.round(r.right));
      }
      return out.slice(0, 8);
    }""")


def language_put_back(committed, email):  # noqa: F811
    from accounts.models import User
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        User.objects.filter(email=email).update(language="en")


@pytest.fixture
def phone_case(committed):  # noqa: F811
    """Demo customers and journeys at alpha; a trip and its customer with long unbroken texts."""
    from crm.care.demo_journeys import seed_journeys
    from crm.customers.demo import seed_customers
    from crm.customers.models import Customer, Email
    from crm.trips import services as trips
    from tenants.models import Agency

    with committed():
        agency = Agency.objects.get(slug="alpha")
        seed_customers(agency, people=20, companies=2)
        seed_journeys(agency, opportunities=12)
        with tenant_context(agency):
            customer = Customer.objects.filter(kind=Customer.Kind.PERSON, emails__isnull=False).order_by("pk").first()
            trip = trips.trip_create(actor=None, customer=customer, title=LONG_TITLE, destination="冰岛 Iceland",
                                     notes=LONG_NOTES, depart_on=date.today() + timedelta(days=30),
                                     return_on=date.today() + timedelta(days=44))
            trips.item_add(actor=None, trip=trip, kind="tour", description=LONG_NOTES,
                           supplier="Arctic-Adventures-Reykjavik-Incoming-Services-GmbH-und-Partner",
                           confirmation="FI614PVGKEF" + "Q" * 40, cost=1000, sell=1300)
            Email.objects.create(customer=trip.customer, address=LONG_EMAIL)
            case = {"trip": trip.pk, "customer": trip.customer_id}
    with sign_ins_put_back(committed, "alpha", "manager@alpha.test"):
        yield case
    language_put_back(committed, "manager@alpha.test")


def test_navigation_folds_behind_a_menu_button_on_a_phone(app_server, committed):  # noqa: F811
    from playwright.sync_api import expect

    with sign_ins_put_back(committed, "alpha", "sales@alpha.test"), chromium_page() as page:
        sign_in(page, app_server, "alpha", "sales")
        page.set_viewport_size({"width": PHONE, "height": 800})
        button, nav = page.locator("button.menubutton"), page.locator("nav.nav")
        expect(button).to_be_visible()
        expect(button).to_have_attribute("aria-expanded", "false")
        expect(nav).to_be_hidden()
        expect(page.locator("details.usermenu")).to_be_hidden()
        expect(page.locator("form.search input[type=search]")).to_be_visible()  # search stays reachable
        expect(page.locator("form.langswitch button[data-lang='zh-hans']")).to_be_visible()
        header = page.locator("header.topbar").bounding_box()
        assert header["height"] < 130, header  # brand row + search row, not a strip of links
        assert sideways(page) == 0, widest(page)
        page.screenshot(path=str(shots() / "menu-closed-390.png"))

        # Click: a full-width panel with the links, the groups as disclosures and the account menu.
        button.click()
        expect(button).to_have_attribute("aria-expanded", "true")
        expect(nav).to_be_visible()
        panel = nav.bounding_box()
        assert panel["width"] > PHONE - 40, panel
        expect(nav.locator(":scope > a", has_text="Customers")).to_be_visible()
        tasks = nav.locator("a", has_text="Tasks")
        expect(tasks).to_be_hidden()
        nav.locator("summary", has_text="Sales").click()
        expect(tasks).to_be_visible()
        expect(page.locator("details.usermenu summary")).to_be_visible()
        assert sideways(page) == 0, widest(page)
        page.screenshot(path=str(shots() / "menu-open-390.png"), full_page=True)
        tasks.click()
        expect(page).to_have_url(re.compile(r"/tasks/$"))
        expect(button).to_have_attribute("aria-expanded", "false")  # a new page starts folded
        expect(nav).to_be_hidden()

        # Keyboard: Enter on the button opens, Tab reaches the links, Escape closes and focuses the button.
        button.focus()
        page.keyboard.press("Enter")
        expect(button).to_have_attribute("aria-expanded", "true")
        expect(nav).to_be_visible()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('nav.nav') !== null")
        page.keyboard.press("Escape")
        expect(button).to_have_attribute("aria-expanded", "false")
        expect(nav).to_be_hidden()
        assert page.evaluate("document.activeElement.matches('button.menubutton')")
        page.keyboard.press("Space")
        expect(nav).to_be_visible()
        button.click()  # and a second click closes it
        expect(nav).to_be_hidden()

        # Wider than a phone, no menu button: the navigation is in the header.
        page.set_viewport_size({"width": DESKTOP, "height": 800})
        expect(button).to_be_hidden()
        expect(nav).to_be_visible()


def test_an_admins_header_is_one_row_at_desktop_width(app_server, committed):  # noqa: F811
    from playwright.sync_api import expect

    with sign_ins_put_back(committed, "alpha", "admin@alpha.test"):
        try:
            with chromium_page() as page:
                sign_in(page, app_server, "alpha", "admin")
                page.set_viewport_size({"width": DESKTOP, "height": 800})
                for language in ("en", "zh-hans"):
                    if language != "en":
                        page.click(f"form.langswitch button[data-lang='{language}']")
                        expect(page.locator("html")).to_have_attribute("lang", language)
                    header = page.locator("header.topbar").bounding_box()
                    assert header["height"] < 80, (language, header)  # one row (three rows were 150 px)
                    entries = page.locator("nav.nav > a, nav.nav > details > summary")
                    assert entries.count() >= 5
                    tops = {round(box["y"]) for box in (entries.nth(i).bounding_box() for i in range(entries.count()))}
                    assert max(tops) - min(tops) <= 4, (language, tops)
                    links = page.locator("nav.nav a")
                    assert links.count() >= 15, links.count()  # every item is still there, grouped
                    assert sideways(page) == 0, widest(page)
                    page.screenshot(path=str(shots() / f"admin-header-{language}-1400.png"))

                page.click("form.langswitch button[data-lang='en']")
                expect(page.locator("html")).to_have_attribute("lang", "en")
                groups = page.locator("nav.nav details.navgroup")
                sales, marketing = groups.filter(has_text="Sales"), groups.filter(has_text="Marketing")
                campaigns = marketing.locator("a", has_text="Campaigns")
                expect(campaigns).to_be_hidden()
                # Keyboard: Enter on a group opens it, Tab walks its links, Escape closes it and focuses its summary.
                marketing.locator("summary").focus()
                page.keyboard.press("Enter")
                expect(campaigns).to_be_visible()
                page.screenshot(path=str(shots() / "admin-marketing-open-1400.png"))
                page.keyboard.press("Tab")
                assert page.evaluate("document.activeElement.textContent.trim()") == "Campaigns"
                page.keyboard.press("Escape")
                expect(campaigns).to_be_hidden()
                assert page.evaluate("document.activeElement.matches('details.navgroup summary')")
                # One open at a time; a click elsewhere closes it.
                marketing.locator("summary").click()
                sales.locator("summary").click()
                expect(sales.locator("a", has_text="Pipeline")).to_be_visible()
                expect(campaigns).to_be_hidden()
                page.click("main h1")
                expect(sales.locator("a", has_text="Pipeline")).to_be_hidden()
                # The group of the page one is on is marked.
                sales.locator("summary").click()
                sales.locator("a", has_text="Trips").click()
                expect(sales.locator("summary.current")).to_have_count(1)
                expect(sales.locator("a[aria-current=page]")).to_have_text("Trips")
        finally:
            language_put_back(committed, "admin@alpha.test")


PAGES = {  # name → path (with the case's ids)
    "customers": "/customers/",
    "customer-card": "/customers/{customer}/",
    "pipeline-list": "/pipeline/list/",
    "tasks": "/tasks/",
    "trips": "/trips/",
    "trip": "/trips/{trip}/",
    "segment-builder": "/segments/new/",
}


def test_the_pages_field_sales_use_fit_a_phone_in_both_languages(app_server, phone_case):
    from playwright.sync_api import expect

    overflowing = []
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "manager")
        for language in ("en", "zh-hans"):
            if language != "en":
                page.click(f"form.langswitch button[data-lang='{language}']")
                expect(page.locator("html")).to_have_attribute("lang", language)
            for name, path in PAGES.items():
                page.set_viewport_size({"width": DESKTOP, "height": 900})
                response = page.goto(app_server.url("alpha", path.format(**phone_case)))
                assert response.status == 200, (name, response.status)
                if sideways(page):
                    overflowing.append((name, language, DESKTOP, sideways(page), widest(page)))
                page.set_viewport_size({"width": PHONE, "height": 800})
                page.wait_for_timeout(50)
                if sideways(page):
                    overflowing.append((name, language, PHONE, sideways(page), widest(page)))
                page.screenshot(path=str(shots() / f"{name}-{language}-390.png"), full_page=True)
                if name == "trip":
                    expect(page.locator("main")).to_contain_text(LONG_NOTES)  # wrapped, not cut
                    items = page.locator("table[data-test=itinerary]")  # too wide: scrolls inside its own box
                    box = items.bounding_box()
                    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE + 1, box
                    assert items.evaluate("t => t.scrollWidth > t.clientWidth + 20 && getComputedStyle(t).overflowX === 'auto'")
                if name == "customer-card":
                    expect(page.locator("main")).to_contain_text(LONG_EMAIL)
                if name == "segment-builder":  # one column: the live count above the form, both full width
                    form, aside = (page.locator(s).bounding_box() for s in ("#segment-form", ".builder-aside"))
                    assert abs(form["x"] - aside["x"]) < 2 and aside["y"] < form["y"], (form, aside)
                    assert form["width"] > PHONE - 60, form
                if name in ("customers", "pipeline-list", "trips"):
                    # The main lists are cards on a phone: each row a box as wide as the list, every cell labelled.
                    table = page.locator("main table.table.cards")
                    expect(table).to_have_count(1)
                    rows = table.locator("tbody tr")
                    assert rows.count() >= 1, name
                    row, box = rows.first.bounding_box(), table.bounding_box()
                    assert row["x"] >= 0 and abs(row["width"] - box["width"]) < 2 and row["width"] <= PHONE, (name, row)
                    assert rows.first.evaluate("tr => getComputedStyle(tr).display") == "grid", name
                    labels = rows.first.locator("td[data-label]").evaluate_all(
                        "tds => tds.map(td => getComputedStyle(td, '::before').content)")
                    assert len(labels) >= 4 and all(label not in ("none", "normal", '""') for label in labels), labels
                    page.set_viewport_size({"width": DESKTOP, "height": 900})  # a table again on a desktop
                    assert rows.first.evaluate("tr => getComputedStyle(tr).display") == "table-row", name
    assert not overflowing, overflowing


def test_the_navigation_groups_by_url_name_and_marks_the_current_page():
    """``nav_menu``: grouped items at their group's place, an unknown area's link stays on its own, a group of one is
    its link, the current page (the longest matching URL) is marked on its link and its group."""
    from frontend.context_processors import nav_menu

    nav = [("/", "Dashboard"), ("/customers/", "Customers"), ("/pipeline/", "Pipeline"), ("/tasks/", "Tasks"),
           ("/somewhere-new/", "New area"), ("/segments/", "Segments"), ("/staff/", "Staff")]
    menu = nav_menu(nav, "/tasks/12/")
    assert [entry.get("key") or entry["url"] for entry in menu] == [
        "/", "/customers/", "sales", "/somewhere-new/", "/segments/", "/staff/"]
    sales = menu[2]
    assert [link["label"] for link in sales["links"]] == ["Pipeline", "Tasks"]
    assert sales["current"] and [link["current"] for link in sales["links"]] == [False, True]
    assert not any(entry["current"] for entry in menu if entry is not sales)
    assert nav_menu(nav, "/")[0]["current"] and not nav_menu(nav, "/customers/")[0]["current"]
