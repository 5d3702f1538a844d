"""In a real browser: sign in on an agency subdomain, switch to Chinese, sign out; the staff live filter.

Chromium (Debian's, /usr/bin/chromium) drives a real gunicorn server (tests/servers.py) on the
test database. What the server writes is committed, so ``alpha_admin`` puts the admin's row and
alpha's sessions back as they were after each test (on a connection of its own: the test's own
transaction is rolled back).
"""
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from tests.conftest import fresh_totp_code, password_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path("/tmp/dashboard-zh.png")

# Every browser test module: pytestmark = BROWSER_TESTS
BROWSER_TESTS = [
    pytest.mark.browser,
    pytest.mark.django_db,  # so that the test database (with conftest's agencies) is made when run alone
    pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None,
                       reason=f"Chromium is not installed at {CHROMIUM} (run `make browser` or apt-get install chromium)"),
]
pytestmark = BROWSER_TESTS


@contextmanager
def chromium_page(*, locale: str = "en-US"):
    """A fresh browser, context and page. No ORM calls inside: Playwright's event loop is running there."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 800})
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            browser.close()


def sign_in(page, server, slug: str, role: str) -> None:
    from playwright.sync_api import expect

    page.goto(server.url(slug, "/"))
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("input[name=username]", f"{role}@{slug}.test")
    page.fill("input[name=password]", password_for(slug, role))
    page.click("main button[type=submit]")
    if role == "admin":  # admins pass a second step with their app's code (conftest's test device)
        expect(page).to_have_url(re.compile(r"/accounts/two-step/"))
        page.fill("input[name=code]", fresh_totp_code(f"{role}@{slug}.test"))
        page.click("main button.primary")
    expect(page).to_have_url(server.url(slug, "/"))


@pytest.fixture
def alpha_admin(committed):
    """admin@alpha.test; on teardown its language and last sign-in, and alpha's sessions, are put back."""
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from tenants.models import Agency

    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            user = User.objects.get(email="admin@alpha.test")
            sessions = set(Session.objects.values_list("session_key", flat=True))
    yield user
    with committed():
        with tenant_context(agency):
            User.objects.filter(pk=user.pk).update(language=user.language, last_login=user.last_login)
            Session.objects.exclude(session_key__in=sessions).delete()


def admin_language(committed, user) -> str:
    from accounts.models import User
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        return User.objects.get(pk=user.pk).language


def test_sign_in_switch_to_chinese_and_sign_out(app_server, alpha_admin, committed):  # noqa: F811
    from playwright.sync_api import expect

    assert alpha_admin.language == "en"
    with chromium_page(locale="en-US") as page:
        page.goto(app_server.url("alpha", "/"))
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("main button[type=submit]")).to_have_text("Sign in")
        expect(page.locator("main h1")).to_have_text("Sign in to Alpha Travel 阿尔法旅行")

        sign_in(page, app_server, "alpha", "admin")
        expect(page.locator("nav.nav a[href='/']")).to_have_text("Dashboard")
        expect(page.locator("main h1")).to_have_text("Welcome, Admin of alpha")

        page.click('button[data-lang="zh-hans"]')
        expect(page).to_have_url(app_server.url("alpha", "/"))
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        expect(page.locator("nav.nav a[href='/']")).to_have_text("工作台")
        expect(page.locator("main h1")).to_have_text(re.compile(r"^欢迎"))
        expect(page.locator('button[data-lang="zh-hans"]')).to_have_attribute("aria-pressed", "true")
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        page.click("details.usermenu summary")
        page.click('[data-test="logout"]')
        expect(page).to_have_url(app_server.url("alpha", "/accounts/login/"))
        expect(page.locator("main button[type=submit]")).to_have_text("登录")
        expect(page.locator("main h1")).to_have_text("登录 Alpha Travel 阿尔法旅行")
        expect(page.locator("details.usermenu")).to_have_count(0)

        # Signed out means signed out: the dashboard sends us back to the sign-in page.
        page.goto(app_server.url("alpha", "/"))
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))

    assert admin_language(committed, alpha_admin) == "zh-hans"  # the choice is remembered on the account


def test_staff_list_live_filter(app_server, alpha_admin):  # noqa: F811
    from playwright.sync_api import expect

    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")
        page.goto(app_server.url("alpha", "/staff/"))
        rows = page.locator("tbody#staff-rows")
        expect(rows).to_contain_text("sales@alpha.test")
        expect(rows).to_contain_text("finance@alpha.test")

        with page.expect_response(lambda r: "/staff/?" in r.url and "q=finance" in r.url) as swap:
            page.locator("form.filters input[name=q]").press_sequentially("finance", delay=30)
        assert swap.value.status == 200
        assert swap.value.request.headers.get("hx-request") == "true"

        expect(rows.locator("tr")).to_have_count(1)
        expect(rows).to_contain_text("finance@alpha.test")
        expect(rows).to_contain_text("Finance of alpha")
        expect(rows).not_to_contain_text("sales@alpha.test")
        expect(page).to_have_url(app_server.url("alpha", "/staff/"))  # swapped in place, no navigation
