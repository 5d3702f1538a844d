"""In a real browser: find a customer with the top-bar search, open the card, log a call on it.

Chromium drives the gunicorn app server of tests/servers.py, a separate process: the customer it
shows is committed by the ``zhang_wei`` fixture and deleted afterwards (with the contacts the
test adds), and ``alpha_admin`` puts the admin's sign-in and alpha's sessions back.
"""

import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, alpha_admin, chromium_page, sign_in  # noqa: F401  (alpha_admin: a fixture)

PHONE = "13566667777"

pytestmark = BROWSER_TESTS


@pytest.fixture
def zhang_wei(committed):  # noqa: F811
    """张伟 / ZHANG Wei at alpha, committed for the app server to see; removed after the test."""
    from crm.customers import services
    from crm.customers.models import ChangeLog, Customer
    from tenants.models import Agency

    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            customer = services.customer_create(actor=None, via=ChangeLog.Via.API, name="张伟", latin_surname="ZHANG",
                                                latin_given="Wei", phones=[PHONE], tags=["浏览器测试"])
    yield customer
    with committed(), tenant_context(agency):
        Customer.objects.filter(pk=customer.pk).delete()  # its phones, contacts and history go with it


def saved_contacts(committed, customer) -> list[tuple[str, str, str]]:  # noqa: F811
    from crm.customers.models import Contact
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        return list(Contact.objects.filter(customer_id=customer.pk).order_by("id")
                    .values_list("summary", "channel", "staff__email"))


def test_search_open_card_and_log_a_call(app_server, alpha_admin, zhang_wei, committed):  # noqa: F811
    from playwright.sync_api import expect

    card_url = f"/customers/{zhang_wei.pk}/"
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")

        page.locator("form.search input[name=q]").fill("张伟")
        hit = page.locator(f"#search-results a[href='{card_url}']")
        expect(hit).to_have_text("张伟")
        expect(page.locator("#search-results")).to_contain_text("ZHANG Wei")
        hit.click()
        expect(page).to_have_url(app_server.url("alpha", card_url))
        expect(page.locator("main h1")).to_contain_text("张伟")
        expect(page.locator("[data-test=contact-details]")).to_contain_text("+86 135 6666 7777")
        timeline = page.locator("#timeline")
        expect(timeline.locator("li.contact")).to_have_count(0)

        form = page.locator("#contact-form")
        expect(form.locator("select[name=channel]")).to_have_value("call")
        form.locator("button[type=submit]").click()  # nothing written yet: the error shows by the field
        expect(page.locator("#contact-form [data-field=summary]")).to_be_visible()

        page.locator("#contact-form select[name=direction]").select_option("in")
        page.locator("#contact-form textarea[name=summary]").fill("客户想订三亚的亲子酒店")
        page.locator("#contact-form input[name=next_step]").fill("发送报价")
        page.locator("#contact-form button[type=submit]").click()
        entry = timeline.locator("li.contact").first
        expect(entry).to_contain_text("客户想订三亚的亲子酒店")
        expect(entry).to_contain_text("发送报价")
        expect(entry).to_contain_text("Inbound")
        expect(page.locator("#contact-form textarea[name=summary]")).to_have_value("")  # ready for the next one
        expect(page.locator("#contact-form [data-field=summary]")).to_have_count(0)

        # One keystroke: Ctrl+Enter in the summary saves.
        page.locator("#contact-form textarea[name=summary]").fill("回电确认日期")
        page.locator("#contact-form textarea[name=summary]").press("Control+Enter")
        expect(timeline.locator("li.contact")).to_have_count(2)
        expect(timeline.locator("li.contact").first).to_contain_text("回电确认日期")
        expect(page).to_have_url(app_server.url("alpha", card_url))  # all of it without leaving the card

    assert saved_contacts(committed, zhang_wei) == [("客户想订三亚的亲子酒店", "call", "admin@alpha.test"),
                                                    ("回电确认日期", "call", "admin@alpha.test")]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_history_shows_a_creation_as_one_entry_with_every_value(app_server, alpha_admin, zhang_wei,  # noqa: F811
                                                                    committed, language):
    """A new customer's change log is one ``created`` entry (issue 22); the history page lists its values
    under their names, in the viewer's language, at desktop and phone widths without pushing the page sideways."""
    import os
    from pathlib import Path

    from playwright.sync_api import expect

    from accounts.models import User
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        User.objects.filter(email="admin@alpha.test").update(language=language)
    folder = Path(os.environ.get("SCREENSHOT_DIR") or "/tmp/caravan-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    labels = {"en": ("Record created", "Name", "Phones", "Individual"), "zh-hans": ("创建记录", "名称", "电话", "个人")}[language]
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")
        for width in (1400, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(app_server.url("alpha", f"/customers/{zhang_wei.pk}/history/"))
            rows = page.locator("[data-test=history] tbody tr")
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text(labels[0])
            values = rows.first.locator("[data-test=created-values]")
            for label, value in ((labels[1], "张伟"), (labels[2], "+86" + PHONE), ("", "ZHANG"), ("", labels[3])):
                expect(values).to_contain_text(label)
                expect(values).to_contain_text(value)
            sizes = page.evaluate("() => ({page: document.documentElement.scrollWidth, window: window.innerWidth})")
            assert sizes["page"] <= sizes["window"] + 1, sizes
            page.screenshot(path=str(folder / f"history-created-{language}-{width}.png"), full_page=True)
