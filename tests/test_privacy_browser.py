"""In a real browser, as an agency admin: the card's personal-data section, the customer's access
log, the export page and the agency-wide access log, in English and Chinese, wide and narrow.

Screenshots go to ``PRIVACY_SHOTS`` (default /tmp/privacy-shots) for a person to look at.
"""
import os
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, alpha_admin, chromium_page, sign_in  # noqa: F401  (alpha_admin: a fixture)

pytestmark = BROWSER_TESTS
SHOTS = Path(os.environ.get("PRIVACY_SHOTS", "/tmp/privacy-shots"))


@pytest.fixture
def wang_fang(committed):  # noqa: F811
    """王芳 at alpha with a passport, revealed once by sales; committed, removed after the test."""
    from accounts.models import User
    from crm.customers import services
    from crm.customers.models import ChangeLog, Customer
    from crm.privacy.models import AccessEntry
    from tenants.models import Agency

    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            first = AccessEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
            customer = services.customer_create(actor=None, via=ChangeLog.Via.API, name="王芳", latin_surname="WANG",
                                                latin_given="Fang", phones=["13512344321"])
            document = services.document_add(actor=None, customer=customer, number="E12345678", via="api",
                                             kind="passport", issuing_country="CN")
            services.document_reveal(actor=User.objects.get(email="sales@alpha.test"), document=document, via="api")
    yield customer
    with committed(), tenant_context(agency):
        AccessEntry.objects.filter(id__gt=first).delete()
        Customer.objects.filter(pk=customer.pk).delete()


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})


def test_admin_reads_the_log_and_exports(app_server, alpha_admin, wang_fang, committed):  # noqa: F811
    from playwright.sync_api import expect

    card = f"/customers/{wang_fang.pk}/"
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")
        for language in ("en", "zh-hans"):
            if language == "zh-hans":
                page.click('button[data-lang="zh-hans"]')
                expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
            page.goto(app_server.url("alpha", card))
            section = page.locator("[data-test=access-log-section]")
            section.locator("summary").click()
            entries = section.locator("[data-test=access-entries]")
            expect(entries).to_contain_text("Sales of alpha")  # the reveal
            expect(entries).to_contain_text("E1234****")
            expect(entries).to_contain_text("Admin of alpha")  # this very card view
            section.scroll_into_view_if_needed()
            shoot(page, f"card-{language}")

            page.goto(app_server.url("alpha", f"{card}access-log/"))
            expect(page.locator("[data-test=access-entries]")).to_contain_text("Sales of alpha")
            shoot(page, f"customer-log-{language}")

            page.goto(app_server.url("alpha", "/privacy/access-log/"))
            expect(page.locator("[data-test=access-entries]")).to_contain_text("王芳")
            shoot(page, f"access-log-{language}")

            page.goto(app_server.url("alpha", f"{card}personal-data/"))
            expect(page.locator("[data-test=data-export-page]")).to_be_visible()
            shoot(page, f"export-{language}")
            with page.expect_download() as info:
                page.click("[data-test=data-export-download]")
            assert info.value.suggested_filename.startswith(f"customer-{wang_fang.pk}-data-")
