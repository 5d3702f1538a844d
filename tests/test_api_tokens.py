"""Named, scoped API tokens (issue 18, "API tokens"): scopes per area enforced, expiry and
revocation, the fence between agencies, the admin's view, last use, secrets never stored, and the
per-agency rate limit following the plan."""
import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from accounts import scopes, tokens
from accounts.models import ApiToken, User
from billing.models import Plan

from .conftest import OPERATOR, password_for, staff
from .test_signin_security import clear_rate_counters


@pytest.fixture(autouse=True)
def _fresh_counters():
    clear_rate_counters()
    yield
    clear_rate_counters()


def a_token(agency, role, scopes_, **kwargs):
    with tenant_context(agency):
        token, secret = tokens.token_create(user=staff(agency, role), name="test", scopes=scopes_, **kwargs)
    connection.set_schema_to_public()
    return token, secret


def client_with(api_client, slug, secret, on=None):
    client = api_client(slug, on=on)
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def test_scopes_are_enforced_read_and_write_per_area(api_client, alpha):
    _token, secret = a_token(alpha, "admin", ["customers:read"])
    client = client_with(api_client, "alpha", secret)
    assert client.get("/api/v1/customers/").status_code == 200
    refused = client.post("/api/v1/customers/", {"kind": "person", "name": "王五"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert "customers" in refused.json()["error"]["message"]
    assert client.get("/api/v1/opportunities/").status_code == 403  # pipeline: not granted
    assert client.get("/api/v1/staff/").status_code == 403
    assert client.get("/api/v1/me/").status_code == 200  # open to any token

    _token, writer = a_token(alpha, "admin", ["customers:write", "pipeline:read"])
    client = client_with(api_client, "alpha", writer)
    assert client.post("/api/v1/customers/", {"kind": "person", "name": "王五"}, format="json").status_code == 201
    assert client.get("/api/v1/customers/").status_code == 200  # write implies read
    assert client.get("/api/v1/opportunities/").status_code == 200
    assert client.post("/api/v1/opportunities/", {}, format="json").status_code == 403


def test_the_role_still_decides_within_the_scopes(api_client, alpha):
    _token, secret = a_token(alpha, "call_center", scopes.all_scopes())
    client = client_with(api_client, "alpha", secret)
    assert client.get("/api/v1/staff/").status_code == 403  # every scope, but a call-center role


def test_every_api_view_has_an_area_and_an_unknown_one_refuses_every_token():
    def views(patterns):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from views(entry.url_patterns)
            elif isinstance(entry, URLPattern):
                callback = entry.callback
                cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
                if cls is not None and hasattr(cls, "authentication_classes"):
                    yield entry, cls

    found = list(views(get_resolver("caravan.urls_tenant").url_patterns))
    assert len(found) > 40
    missing = [f"{entry.pattern} {cls.__module__}.{cls.__name__}" for entry, cls in found if scopes.area_of(cls) is None]
    assert not missing, missing

    class NewEndpoint:
        pass

    NewEndpoint.__module__ = "crm.brand_new.api"
    assert scopes.area_of(NewEndpoint) is None
    assert not scopes.allows(scopes.all_scopes(), scopes.area_of(NewEndpoint), "GET")


def test_expired_and_revoked_tokens_are_refused(api_client, alpha):
    token, secret = a_token(alpha, "sales", ["customers:read"])
    client = client_with(api_client, "alpha", secret)
    assert client.get("/api/v1/me/").status_code == 200
    with tenant_context(alpha):
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = client.get("/api/v1/me/")
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "authentication_failed"
    token, secret = a_token(alpha, "sales", ["customers:read"])
    client = client_with(api_client, "alpha", secret)
    with tenant_context(alpha):
        tokens.token_revoke(actor=staff(alpha, "sales"), token=token)
    assert client.get("/api/v1/me/").status_code == 401
    assert client_with(api_client, "alpha", secret[:-1] + "x").get("/api/v1/me/").status_code == 401


def test_another_agencys_token_is_refused_at_this_host(api_client, alpha, bravo):
    _token, secret = a_token(alpha, "admin", scopes.all_scopes())
    assert client_with(api_client, "bravo", secret).get("/api/v1/me/").status_code == 401
    assert client_with(api_client, "alpha", secret, on="localhost").get("/api/operator/agencies/").status_code == 401
    _token, theirs = a_token(bravo, "admin", scopes.all_scopes())
    assert client_with(api_client, "alpha", theirs).get("/api/v1/customers/").status_code == 401
    # Nor can alpha's admin see or revoke bravo's tokens through alpha's API.
    with tenant_context(bravo):
        bravo_token = ApiToken.objects.get(key_hash=hashlib.sha256(theirs.encode()).hexdigest())
    admin = api_client("alpha", "admin")
    with tenant_context(alpha):
        clash = ApiToken.objects.filter(pk=bravo_token.pk).exists()  # ids are per schema: may exist at alpha too
    if not clash:
        assert admin.post(f"/api/v1/tokens/{bravo_token.pk}/revoke/").status_code == 404
    with tenant_context(bravo):
        assert ApiToken.objects.get(pk=bravo_token.pk).revoked_at is None


def test_the_admin_sees_every_token_and_revokes_any(api_client, page_client, alpha):
    token, secret = a_token(alpha, "sales", ["customers:read"])
    sales = client_with(api_client, "alpha", secret)
    assert sales.get("/api/v1/customers/").status_code == 200
    admin = api_client("alpha", "admin")
    listed = admin.get("/api/v1/tokens/").json()["results"]
    assert any(t["id"] == token.pk and t["user"] == "sales@alpha.test" for t in listed)
    assert "key_hash" not in listed[0] and "token" not in listed[0]
    # The sales person sees only their own, and cannot revoke the admin's.
    _own, sales_all = a_token(alpha, "sales", ["customers:read", "staff:write"])
    mine = client_with(api_client, "alpha", sales_all).get("/api/v1/tokens/").json()["results"]
    assert {t["user"] for t in mine} == {"sales@alpha.test"}
    with tenant_context(alpha):
        admins = ApiToken.objects.filter(user__email="admin@alpha.test").first()
    assert client_with(api_client, "alpha", sales_all).post(f"/api/v1/tokens/{admins.pk}/revoke/").status_code == 404
    revoked = admin.post(f"/api/v1/tokens/{token.pk}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "admin@alpha.test"
    assert sales.get("/api/v1/customers/").status_code == 401

    # And on the page.
    token, secret = a_token(alpha, "finance", ["value:read"])
    page = page_client("alpha", "admin")
    listing = page.get("/staff/tokens/").content.decode()
    assert "finance@alpha.test" in listing and token.prefix in listing
    assert page.post("/staff/tokens/", {"token": token.pk}).status_code == 302
    assert client_with(api_client, "alpha", secret).get("/api/v1/me/").status_code == 401
    assert page_client("alpha", "sales").get("/staff/tokens/").status_code == 403
    assert page.post("/staff/tokens/", {"token": "abc"}).status_code == 404
    assert page.post("/profile/tokens/", {"action": "revoke", "token": "1e9"}).status_code == 404


def test_users_manage_their_own_tokens_on_the_profile_and_last_use_is_shown(api_client, page_client, alpha):
    page = page_client("alpha", "sales")
    created = page.post("/profile/tokens/", {"name": "Booking sync", "scopes": ["customers:read"], "days": "30"})
    assert created.status_code == 201
    secret = created.context["secret"]
    assert secret.startswith("cvn_") and secret in created.content.decode()
    listing = page.get("/profile/tokens/").content.decode()
    assert "Booking sync" in listing and secret not in listing and "never" in listing
    client = client_with(api_client, "alpha", secret)
    assert client.get("/api/v1/customers/").status_code == 200
    with tenant_context(alpha):
        token = ApiToken.objects.get(name="Booking sync")
    first_use = token.last_used_at
    assert first_use is not None and (token.expires_at - token.created_at).days == 30
    assert client.get("/api/v1/customers/").status_code == 200
    with tenant_context(alpha):
        assert ApiToken.objects.get(pk=token.pk).last_used_at == first_use  # written at most once a minute
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get("/api/v1/customers/")
    with tenant_context(alpha):
        assert ApiToken.objects.get(pk=token.pk).last_used_at > first_use - timedelta(seconds=1)
    assert "never" not in page.get("/profile/tokens/").content.decode().split('data-test="tokens"')[1].split("</table>")[0]
    # A scope the role has no use for is not offered; an unknown one is a field error.
    assert "staff:write" not in listing
    bad = page.post("/profile/tokens/", {"name": "x", "scopes": ["staff:write"], "days": "30"})
    assert bad.status_code == 400
    revoke = page.post("/profile/tokens/", {"action": "revoke", "token": token.pk})
    assert revoke.status_code == 302 and client.get("/api/v1/customers/").status_code == 401


def test_the_secret_is_never_stored_in_clear(alpha):
    token, secret = a_token(alpha, "admin", ["customers:read"])
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest() and token.prefix == secret[:8]
    with tenant_context(alpha), connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(t)::text FROM accounts_apitoken t WHERE id = %s", [token.pk])
        row = cursor.fetchone()[0]
    assert secret not in row and secret[8:20] not in row


def test_the_password_exchange_issues_a_named_token_with_the_roles_scopes(api_client, alpha, settings):
    client = api_client("alpha")
    issued = client.post("/api/v1/auth/token/", {"username": "finance@alpha.test", "password": password_for("alpha", "finance")})
    assert issued.status_code == 200
    body = issued.json()
    assert body["name"] == "API sign-in" and set(body["scopes"]) == set(scopes.role_scopes("finance"))
    assert "customers:write" not in body["scopes"] and "customers:read" in body["scopes"]
    with tenant_context(alpha):
        token = ApiToken.objects.get(key_hash=hashlib.sha256(body["token"].encode()).hexdigest())
        assert abs((token.expires_at - timezone.now()) - timedelta(days=settings.API_TOKEN_DAYS)) < timedelta(minutes=1)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert client.get("/api/v1/customers/").status_code == 200
    # A token cannot mint a token with more than it holds.
    more = client.post("/api/v1/tokens/", {"name": "more", "scopes": ["staff:write"]}, format="json")
    assert more.status_code == 403  # finance's sign-in token holds no staff scope


def test_operators_tokens_work_on_the_platform_domain_only(api_client):
    """Operators' tokens live in the public schema with the operator scopes (POST auth/token/ there also
    asks operators for their second factor: tests/test_two_step.py)."""
    with schema_context("public"):
        token, secret = tokens.token_for_sign_in(user=User.objects.get(email=OPERATOR))
    assert set(token.scopes) == {"operator:read", "operator:write"}
    assert client_with(api_client, None, secret, on="localhost").get("/api/operator/agencies/").status_code == 200
    assert client_with(api_client, "alpha", secret).get("/api/v1/me/").status_code == 401
    # Staff cannot exchange their password on the platform domain.
    staffer = api_client(None, on="localhost").post("/api/operator/auth/token/",
                                                    {"username": "admin@alpha.test", "password": password_for("alpha", "admin")})
    assert staffer.status_code == 400


def test_operators_manage_their_tokens_in_the_console(api_client, operator_client, page_client):
    created = operator_client.post("/api-tokens/", {"name": "Provisioning", "scopes": ["operator:read"], "days": "7"})
    assert created.status_code == 201
    secret = created.context["secret"]
    client = client_with(api_client, None, secret, on="localhost")
    assert client.get("/api/operator/agencies/").status_code == 200
    assert client.post("/api/operator/agencies/", {}, format="json").status_code == 403  # read only
    with schema_context("public"):
        token = ApiToken.objects.get(name="Provisioning")
    assert "Provisioning" in operator_client.get("/api-tokens/").content.decode()
    assert operator_client.post("/api-tokens/", {"action": "revoke", "token": token.pk}).status_code == 302
    assert client.get("/api/operator/agencies/").status_code == 401
    assert page_client("alpha", "admin").get("/api-tokens/").status_code == 404


def test_old_drf_tokens_keep_working_once_migrated(alpha, api_client):
    """Migration accounts/0003: a DRF token's key authenticates as a named token; no clear key remains."""
    import importlib

    from django.apps import apps
    from rest_framework.authtoken.models import Token

    migration = importlib.import_module("accounts.migrations.0003_authtoken_to_apitoken")
    with tenant_context(alpha):
        old = Token.objects.create(user=staff(alpha, "sales"))
        migration.forwards(apps, None)
        assert not Token.objects.exists()
        migrated = ApiToken.objects.get(prefix=old.key[:8])
        assert set(migrated.scopes) == set(scopes.role_scopes("sales"))
    connection.set_schema_to_public()
    assert client_with(api_client, "alpha", old.key).get("/api/v1/customers/").status_code == 200


def test_the_agency_api_rate_follows_the_plan(api_client, alpha, bravo):
    Plan.objects.create(code=alpha.plan, name="Tiny", seat_price_month=Decimal("9"), seat_price_year=Decimal("90"),
                        api_requests_per_minute=3)
    client = api_client("alpha", "admin")
    codes = []
    for _ in range(8):
        codes.append(client.get("/api/v1/me/"))
        if codes[-1].status_code == 429:
            break
    refused = codes[-1]
    assert refused.status_code == 429 and len(codes) >= 4  # at least the 3 allowed before it
    assert refused.json()["error"]["code"] == "throttled" and 1 <= int(refused["Retry-After"]) <= 60
    # Counted per agency: bravo (no plan row: the default) is not affected.
    assert api_client("bravo", "admin").get("/api/v1/me/").status_code == 200


def test_the_default_rate_applies_without_a_plan_row(api_client, settings):
    settings.API_RATE_PER_MINUTE = 2
    client = api_client("bravo", "admin")
    codes = [client.get("/api/v1/me/").status_code for _ in range(6)]
    assert 429 in codes and codes.index(429) >= 2
