"""In a real browser: an agency admin erases a customer from the card (the page asks for the
customer's number and a reason), and reads the retention policy's dry run on Settings → Personal
data; in English and Chinese, at desktop and phone widths. Screenshots go to ``$SCREENSHOT_DIR``
(else the test's temporary folder).

Chromium drives the gunicorn app server (tests/servers.py), so the data is committed: the fixture
makes the customer and removes it, its erasure and the run reports afterwards.
"""
import os
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS
WIDTHS = (1400, 390)


@pytest.fixture
def erasure_case(committed):
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from crm.customers import services as crm_services
    from crm.customers.models import ChangeLog, Customer, TravelDocument
    from crm.retention.models import Erasure, RetentionRun
    from tenants.models import Agency

    tag = uuid.uuid4().hex[:6]
    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            admin = User.objects.get(email="admin@alpha.test")
            last_login = admin.last_login
            sessions = set(Session.objects.values_list("session_key", flat=True))
            customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=f"林黛玉 Lin {tag}",
                                                    phones=["13612345678"], emails=[f"lin-{tag}@example.test"])
            crm_services.document_add(actor=None, customer=customer, kind="passport", issuing_country="CN",
                                      number=f"E{uuid.uuid4().int % 10**8:08d}", via=ChangeLog.Via.PAGE)
            TravelDocument.objects.filter(customer=customer).update(created_at="2020-01-01T00:00:00Z")
    yield {"customer": customer, "tag": tag}
    with committed(), tenant_context(agency):
        Erasure.objects.filter(customer_id=customer.pk).delete()
        RetentionRun.objects.all().delete()
        Customer.objects.filter(pk=customer.pk).delete()
        User.objects.filter(pk=admin.pk).update(last_login=last_login)
        Session.objects.exclude(session_key__in=sessions).delete()


def _shots() -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or "/tmp/caravan-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _snap(page, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(_shots() / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})


def test_admin_erases_a_customer_from_the_card_and_sees_the_dry_run(app_server, erasure_case, committed):
    from playwright.sync_api import expect

    customer, tag = erasure_case["customer"], erasure_case["tag"]
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")
        for language in ("zh-hans", "en"):
            page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language,
                                       "url": app_server.url("alpha", "/")}])
            page.goto(app_server.url("alpha", "/settings/personal-data/"))
            expect(page.locator('[data-test="retention-preview"]')).to_be_visible()
            _snap(page, f"personal-data-{language}")
            page.goto(app_server.url("alpha", f"/customers/{customer.pk}/"))
            page.locator('[data-test="erase-link"]').click()
            expect(page.locator('[data-test="erase-plan"]')).to_be_visible()
            _snap(page, f"erase-{language}")
        # English from here: the dry run counts the old passport; a wrong number is refused.
        page.goto(app_server.url("alpha", "/settings/personal-data/"))
        expect(page.locator('[data-test="preview-counts"]')).to_contain_text("travel document")
        page.goto(app_server.url("alpha", f"/customers/{customer.pk}/erase/"))
        page.select_option("select[name=reason]", "request")
        page.fill("input[name=confirm]", "0")
        page.locator('[data-test="erase-submit"]').click()
        expect(page.locator('p.error[data-field="confirm"]')).to_be_visible()
        page.select_option("select[name=reason]", "request")
        page.fill("input[name=confirm]", str(customer.pk))
        page.locator('[data-test="erase-submit"]').click()
        expect(page.locator("h1")).to_contain_text(f"Erased customer #{customer.pk}")
        expect(page.locator("main")).not_to_contain_text(f"Lin {tag}")
        expect(page.locator('[data-test="erased"]')).to_be_visible()
        expect(page.locator('[data-test="erase-link"]')).to_have_count(0)
        page.goto(app_server.url("alpha", f"/customers/{customer.pk}/erase/"))
        expect(page.locator('[data-test="already-erased"]')).to_be_visible()
        page.goto(app_server.url("alpha", "/settings/personal-data/"))
        expect(page.locator('[data-test="erasures"]')).to_contain_text(f"#{customer.pk}")
        _snap(page, "personal-data-after-en")
    from crm.customers.models import Customer
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        assert Customer.objects.get(pk=customer.pk).name == f"Erased customer #{customer.pk}"
