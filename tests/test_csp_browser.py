"""In a real browser, under the Content-Security-Policy: every page an agency admin reaches from the
navigation (and the settings pages, a customer card, a trip's printable quote, the Billing page with
Stripe.js, the value charts and the API docs) loads with no CSP violation and no console error, and
htmx still works (search as you type, a form answered with a fragment, the Ctrl+Enter shortcut).

The pages are discovered from the navigation and the settings, profile and staff pages, so pages added later are
covered without editing this list. Chromium drives the gunicorn app server of tests/servers.py;
``value_case`` (customers with trips and their values) and ``billing_case`` (a plan; alpha's billing
account removed afterwards) are the fixtures of the value and billing browser tests.
"""
import re
from urllib.parse import urlsplit

import pytest
from django_tenants.utils import tenant_context

from tests import servers
from tests.test_billing_browser import billing_case  # noqa: F401  (fixture)
from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in
from tests.test_value_browser import value_case  # noqa: F401  (fixture)

pytestmark = BROWSER_TESTS

# Collected in every page before its own scripts run (init scripts are not subject to the page's CSP).
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""
# Pages that answer with a file or leave the page; the rest of what the navigation links to is opened.
SKIP = re.compile(r"(\.csv|\.ics|\.xlsx|\.zip|/logout/|/download|/customers/export)")


class PageWatch:
    """Console errors, uncaught exceptions and CSP violations of one browser page."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        page.add_init_script(WATCH_CSP)
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def visit(self, url: str) -> list[str]:
        """Open ``url`` and wait for its scripts; what went wrong there."""
        self.errors.clear()
        response = self.page.goto(url)
        self.page.wait_for_load_state("networkidle")
        problems = list(self.errors)
        problems += [f"csp: {v}" for v in self.page.evaluate("window.__cspViolations || []")]
        if response is None or response.status >= 400:
            problems.append(f"status {response.status if response else None}")
        return problems

    def same_origin_links(self, selector: str) -> list[str]:
        origin = urlsplit(self.page.url).netloc
        hrefs = self.page.eval_on_selector_all(selector, "els => els.map(a => a.href)")
        return [h.split("#")[0] for h in hrefs if urlsplit(h).netloc == origin and not SKIP.search(h)]


@pytest.fixture
def csp_case(value_case, billing_case, committed):  # noqa: F811
    """A searchable customer (made through the service, which indexes it) and one of value_case's trips."""
    from crm.customers import services
    from crm.customers.models import ChangeLog, Customer
    from crm.trips.models import Trip
    from tenants.models import Agency

    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            trip = Trip.objects.filter(title=f"Trip {value_case['tag']}").order_by("pk").first()
            customer = services.customer_create(actor=None, via=ChangeLog.Via.API, name=f"策略 Csp{value_case['tag']}")
    yield {"customer": customer, "trip": trip}
    with committed(), tenant_context(agency):
        Customer.objects.filter(pk=customer.pk).delete()


def test_every_page_works_under_the_content_security_policy(app_server, csp_case):
    from playwright.sync_api import expect

    customer, trip = csp_case["customer"], csp_case["trip"]
    with chromium_page() as page:
        watch = PageWatch(page)
        sign_in(page, app_server, "alpha", "admin")
        nav = watch.same_origin_links("nav.nav a")
        assert len(nav) >= 10, nav  # the admin sees the whole navigation
        hub_pages = []  # what the settings, profile and staff pages link to (settings, security, tokens, staff…)
        for hub in ("/settings/", "/profile/", "/staff/"):
            page.goto(app_server.url("alpha", hub))
            hub_pages += watch.same_origin_links("main a")
        extra = [f"/customers/{customer.pk}/", f"/trips/{trip.pk}/", f"/trips/{trip.pk}/quote/",
                 "/settings/billing/", "/value/", "/api/docs/", "/profile/", "/accounts/security/",
                 "/accounts/password/change/"]
        urls = list(dict.fromkeys(nav + hub_pages + [app_server.url("alpha", p) for p in extra]))

        failures = {url: problems for url in urls if (problems := watch.visit(url))}
        assert not failures, failures
        assert len(urls) >= 20, urls

        # The value charts were drawn by Chart.js (a script from our origin with the nonce).
        watch.visit(app_server.url("alpha", "/value/"))
        for chart in ("segments", "trend"):
            expect(page.locator(f'canvas[data-chart="{chart}"]')).to_have_attribute("data-drawn", "1")
        # Stripe.js (localstripe's stand-in, from another origin allowed on this page only) mounted the card field.
        assert not watch.visit(app_server.url("alpha", "/settings/billing/"))
        expect(page.locator("#card-element *").first).to_be_attached()
        # Swagger UI rendered the schema with its inline script (nonce) and style (nonce).
        assert not watch.visit(app_server.url("alpha", "/api/docs/"))
        expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=20_000)

        # htmx: search as you type fills the results fragment.
        assert not watch.visit(app_server.url("alpha", "/"))
        page.locator("form.search input[name=q]").press_sequentially(customer.name.split()[1], delay=30)
        expect(page.locator(f"#search-results a[href='/customers/{customer.pk}/']")).to_be_visible()
        # htmx: the card's contact form is answered with a fragment (a field error, then an entry),
        # the second time sent by the Ctrl+Enter shortcut (caravan.js, no hx-trigger filter: no eval).
        assert not watch.visit(app_server.url("alpha", f"/customers/{customer.pk}/"))
        page.locator("#contact-form button[type=submit]").click()
        expect(page.locator("#contact-form [data-field=summary]")).to_be_visible()
        page.locator("#contact-form textarea[name=summary]").fill("CSP check: called back")
        page.locator("#contact-form textarea[name=summary]").press("Control+Enter")
        expect(page.locator("#timeline li.contact").first).to_contain_text("CSP check: called back")
        # A behaviour that was an onclick= before: "select all" on the customer list.
        assert not watch.visit(app_server.url("alpha", "/customers/"))
        select_all = page.locator("input[data-select-all]")
        if select_all.count():
            select_all.check()
            boxes = page.locator("input[name=ids]")
            assert boxes.count() and all(boxes.nth(i).is_checked() for i in range(boxes.count()))
        assert not watch.errors, watch.errors
        assert not page.evaluate("window.__cspViolations"), page.evaluate("window.__cspViolations")


def test_an_inline_script_without_the_nonce_is_blocked(app_server, alpha_admin_session):
    """The policy really is enforced: a script injected into a page is refused and reported."""
    with chromium_page() as page:
        watch = PageWatch(page)
        sign_in(page, app_server, "alpha", "admin")
        assert not watch.visit(app_server.url("alpha", "/"))
        ran = page.evaluate("""() => {
            window.__injected = false;
            const s = document.createElement("script");
            s.textContent = "window.__injected = true";
            document.body.appendChild(s);
            return window.__injected;
        }""")
        assert ran is False
        page.wait_for_function("window.__cspViolations.length > 0")
        assert "script-src" in page.evaluate("window.__cspViolations")[0]
        # and an inline handler does not run either
        page.evaluate("""() => { const b = document.createElement("button"); b.id = "x";
            b.setAttribute("onclick", "window.__clicked = true"); document.body.appendChild(b); }""")
        page.click("#x")
        assert page.evaluate("window.__clicked === undefined")


@pytest.fixture
def alpha_admin_session(committed):  # noqa: F811
    """alpha's sessions and the admin's last sign-in put back after the test."""
    with servers.sign_ins_put_back(committed, "alpha", "admin@alpha.test"):
        yield
