"""The shorter middleware chain of token API requests (caravan.handlers, issue 22).

Every API test that uses ``api_client`` (a token) already runs through it, since the router is the
first middleware of the test client's chain too. These pin the routing itself, that the fences are in
the shorter chain by construction, and try to cross them through it.
"""
import pytest
from django.conf import settings
from django.test import RequestFactory, override_settings
from django_tenants.utils import tenant_context

from caravan import handlers
from crm.customers import services as crm_services
from crm.customers.models import ChangeLog

# What must run for every request, token or not: a fence, or the request id, logs and metrics.
FENCES = ("caravan.metrics.ObservabilityMiddleware", "django.middleware.security.SecurityMiddleware",
          "caravan.dbfaults.RetryLostConnectionMiddleware", "caravan.tenancy.middleware.AgencyMainMiddleware",
          "caravan.tenancy.middleware.AgencyContextMiddleware", "caravan.tenancy.middleware.ReadOnlyAgencyMiddleware",
          "caravan.input.RejectNulMiddleware", "caravan.security.CSPMiddleware")


def test_the_router_comes_first_and_the_short_chain_is_middleware_without_the_browser_only():
    assert settings.MIDDLEWARE[0] == handlers.ROUTER
    short = handlers.token_api_middleware()
    assert short == [m for m in settings.MIDDLEWARE[1:] if m not in settings.BROWSER_ONLY_MIDDLEWARE]
    for fence in FENCES:
        assert fence in short and fence not in settings.BROWSER_ONLY_MIDDLEWARE


def test_a_middleware_added_later_is_in_both_chains_unless_named_browser_only():
    added = "django.middleware.gzip.GZipMiddleware"
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, added]):
        assert handlers.token_api_middleware()[-1] == added
    with override_settings(BROWSER_ONLY_MIDDLEWARE=[*settings.BROWSER_ONLY_MIDDLEWARE, "app.Renamed"]):
        with pytest.raises(ValueError, match="app.Renamed"):
            handlers.token_api_middleware()


@pytest.mark.parametrize(("path", "authorization", "short"), [
    ("/api/v1/customers/", "Token abc", True),
    ("/api/v1/customers/", "bearer abc", True),
    ("/api/v1/customers/", "", False),              # a session (the browser's API calls)
    ("/api/v1/customers/", "Basic abc", False),
    ("/api/v1/webhooks/website/", "signature", True),  # a website's signed event
    ("/customers/", "Token abc", False),            # a page, whatever the header
    ("/portal/", "Token abc", False),
])
def test_which_requests_take_the_short_chain(path, authorization, short):
    if authorization == "signature":
        request = RequestFactory().post(path, HTTP_X_CARAVAN_SIGNATURE="t=1,v1=abc")
    elif authorization:
        request = RequestFactory().get(path, HTTP_AUTHORIZATION=authorization)
    else:
        request = RequestFactory().get(path)
    assert handlers.is_token_api_request(request) is short


@pytest.mark.django_db
def test_a_token_request_is_answered_by_the_short_chain_and_a_page_by_the_whole(alpha, api_client, page_client):
    """The router's own choice, seen from outside: the short chain never makes a session or a CSRF cookie,
    the whole chain does for a page."""
    api = api_client("alpha", "sales")
    answer = api.get("/api/v1/customers/")
    assert answer.status_code == 200
    assert not hasattr(answer.wsgi_request, "session") and "csrftoken" not in answer.cookies
    page = page_client("alpha", "sales").get("/customers/new/")
    assert page.status_code == 200 and hasattr(page.wsgi_request, "session")


@pytest.mark.django_db
def test_the_fences_hold_on_the_short_chain(alpha, bravo, charlie, api_client):
    with tenant_context(alpha):
        customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="李雷", phones=["13800138031"])
    # bravo's token on alpha's host: unknown there
    bravo_on_alpha = api_client("bravo", "admin", on="alpha.localhost")
    assert bravo_on_alpha.get(f"/api/v1/customers/{customer.pk}/").status_code == 401
    # alpha's token on bravo's host: the same
    assert api_client("alpha", "admin", on="bravo.localhost").get("/api/v1/screen-pop/",
                                                                   {"phone": "13800138031"}).status_code == 401
    # alpha's customer id through bravo's own token: not found in bravo's schema
    assert api_client("bravo", "admin").get(f"/api/v1/customers/{customer.pk}/").status_code == 404
    # a suspended agency: reads, no writes
    suspended = api_client("charlie", "admin")
    assert suspended.get("/api/v1/customers/").status_code == 200
    refused = suspended.post("/api/v1/customers/", {"name": "王五"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "agency_read_only"
    # NUL bytes: a 400 naming the field, not a 500
    nul = api_client("alpha", "admin").get("/api/v1/customers/", {"q": "a\x00b"})
    assert nul.status_code == 400
    # an unknown host: no agency, whatever the token
    assert api_client("alpha", "admin", on="nobody.localhost").get("/api/v1/customers/").status_code == 404
    # the request id and the security headers are on every answer
    answer = api_client("alpha", "admin").get("/api/v1/customers/")
    assert answer["X-Request-ID"] and answer["X-Content-Type-Options"] == "nosniff"
    assert answer["Content-Security-Policy"]


@pytest.mark.django_db
def test_a_request_whose_token_is_not_valid_still_gets_the_apis_error(alpha, api_client):
    client = api_client("alpha")
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    answer = client.get("/api/v1/customers/")
    assert answer.status_code == 401 and answer.json()["error"]["code"]


@pytest.mark.django_db
def test_the_site_wide_policy_built_once_is_django_csps_and_follows_the_settings(alpha, api_client, page_client):
    from csp.utils import build_policy

    api = api_client("alpha", "sales")
    assert api.get("/api/v1/customers/")["Content-Security-Policy"] == build_policy()
    changed = {**settings.CONTENT_SECURITY_POLICY,
               "DIRECTIVES": {**settings.CONTENT_SECURITY_POLICY["DIRECTIVES"], "img-src": ["'self'", "https://x.test"]}}
    with override_settings(CONTENT_SECURITY_POLICY=changed):
        assert "https://x.test" in api.get("/api/v1/customers/")["Content-Security-Policy"]
    assert "https://x.test" not in api.get("/api/v1/customers/")["Content-Security-Policy"]
    # a page with scripts: its own nonce, new on every response (django-csp's path)
    client = page_client("alpha", "sales")
    first, second = (client.get("/customers/new/")["Content-Security-Policy"] for _ in range(2))
    assert "'nonce-" in first and first != second


@pytest.mark.django_db
def test_the_health_check_of_a_request_is_its_agencys_search_path(alpha, bravo, api_client):
    """caravan.db.session: per request, the check of the reused connection sets the agency's path; no
    SELECT 1, one SET, and the right agency's rows whichever agency the connection served before."""
    import psycopg
    from django.db import connection

    if connection.vendor != "postgresql" or settings.DATABASE_POOLING != "session":
        pytest.skip("session mode only")
    with tenant_context(alpha):
        mine = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="阿尔法客户", phones=["13800138041"])
    with tenant_context(bravo):
        theirs = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="布拉沃客户",
                                              phones=["13800138041"])
    connection.set_schema_to_public()
    sent = []
    original = psycopg.Cursor.execute

    def spy(self, query, *args, **kwargs):
        sent.append(str(query))
        return original(self, query, *args, **kwargs)

    clients = {"alpha": api_client("alpha", "admin"), "bravo": api_client("bravo", "admin")}
    psycopg.Cursor.execute = spy
    try:
        for slug, expected in (("alpha", mine), ("bravo", theirs), ("alpha", mine), ("bravo", theirs)):
            connection.health_check_done = False  # as at the start of a request on a reused connection
            sent.clear()
            answer = clients[slug].get("/api/v1/screen-pop/", {"phone": "13800138041"})
            assert answer.status_code == 200 and answer.json()["customer"]["id"] == expected.pk
            assert "SELECT 1" not in sent
            # (a SET of "public" first when the host's agency was not cached and was read there)
            assert [q for q in sent if q.startswith("SET search_path")][-1:] == [f'SET search_path = "{slug}","public"']
            assert sent.count(f'SET search_path = "{slug}","public"') == 1
    finally:
        psycopg.Cursor.execute = original
