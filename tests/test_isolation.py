"""Tenant isolation (R-PLAT-1): every way across the fence between agencies fails."""
import logging

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django_tenants.utils import tenant_context

from accounts.models import User
from caravan.api.views import AgencyViewSet
from caravan.tenancy import NoAgencyError
from tenants.models import AgencyEvent

from .conftest import OPERATOR, password_for, staff

pytestmark = pytest.mark.django_db


def test_session_from_one_agency_means_nothing_on_another_host(page_client, alpha):
    client = page_client("alpha", "admin")
    assert client.get("/staff/").status_code == 200
    client.defaults["HTTP_HOST"] = "bravo.localhost"  # same cookies, other agency's host
    response = client.get("/staff/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_api_token_of_one_agency_is_refused_on_another(api_client):
    assert api_client("alpha", "admin").get("/api/v1/staff/").status_code == 200
    response = api_client("alpha", "admin", on="bravo.localhost").get("/api/v1/staff/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_other_agencys_ids_on_own_host_find_nothing_of_theirs(api_client, bravo):
    with tenant_context(bravo):
        extra = User.objects.create_user("only@bravo.test", full_name="Only in Bravo", role="sales")
    response = api_client("alpha", "admin").get(f"/api/v1/staff/{extra.pk}/")
    assert response.status_code == 404
    # The same number on alpha's host is one of alpha's own rows, never bravo's.
    bravo_admin = staff(bravo, "admin")
    response = api_client("alpha", "admin").get(f"/api/v1/staff/{bravo_admin.pk}/")
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert response.json()["email"].endswith("@alpha.test")


def test_staff_list_shows_only_own_agency(api_client):
    emails = [s["email"] for s in api_client("alpha", "admin").get("/api/v1/staff/?page_size=200").json()["results"]]
    assert emails and all(e.endswith("@alpha.test") for e in emails)


def test_staff_cannot_sign_in_on_another_agency_or_the_console(page_client):
    for on in ("bravo.localhost", "localhost"):
        client = page_client(None, on=on)
        response = client.post("/accounts/login/", {"username": "admin@alpha.test",
                                                     "password": password_for("alpha", "admin")})
        assert response.status_code == 200 and "_auth_user_id" not in client.session, on


def test_operator_cannot_sign_in_on_an_agency_host(page_client):
    client = page_client(None, on="alpha.localhost")
    response = client.post("/accounts/login/", {"username": OPERATOR, "password": "operator-pass-1!"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_console_and_operator_api_are_not_on_agency_hosts(page_client, api_client):
    client = page_client("alpha", "admin")
    assert client.get("/agencies/new/").status_code == 404
    assert api_client("alpha", "admin").get("/api/operator/agencies/").status_code == 404


def test_agency_staff_session_does_not_open_the_console(page_client):
    client = page_client("alpha", "admin")
    client.defaults["HTTP_HOST"] = "localhost"
    response = client.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_agency_api_is_not_on_the_platform_domain(operator_client):
    assert operator_client.get("/api/v1/staff/").status_code == 404


def test_unknown_subdomain_gets_a_friendly_404(page_client):
    response = page_client(None, on="nosuch.localhost").get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 404
    assert b"There is no agency at this address" in response.content


def test_cache_keys_carry_the_agency(alpha, bravo):
    with tenant_context(alpha):
        cache.set("dashboard-counts", "alpha's numbers")
    with tenant_context(bravo):
        assert cache.get("dashboard-counts") is None
        cache.set("dashboard-counts", "bravo's numbers")
    with tenant_context(alpha):
        assert cache.get("dashboard-counts") == "alpha's numbers"
        cache.delete("dashboard-counts")
    with tenant_context(bravo):
        cache.delete("dashboard-counts")


def test_uploaded_files_are_stored_per_agency(alpha, bravo, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"  # django-tenants' storage re-reads MEDIA_ROOT only then
    with tenant_context(alpha):
        name = default_storage.save("documents/passport.pdf", ContentFile(b"alpha scan"))
        alpha_path = default_storage.path(name)
    with tenant_context(bravo):
        assert not default_storage.exists(name)
        assert default_storage.path(name) != alpha_path
    assert "/alpha/" in alpha_path


def test_log_lines_carry_the_agency(alpha, caplog):
    from django_tenants.log import TenantContextFilter

    record = logging.LogRecord("caravan", logging.INFO, __file__, 1, "hello", None, None)
    with tenant_context(alpha):
        TenantContextFilter().filter(record)
    assert record.schema_name == "alpha"


def test_shared_rows_keyed_by_agency_need_an_agency(alpha, bravo):
    with pytest.raises(NoAgencyError):
        list(AgencyEvent.objects.all())
    with tenant_context(alpha):
        agencies_seen = {e.agency_id for e in AgencyEvent.objects.all()}
    assert agencies_seen == {alpha.pk}
    assert {alpha.pk, bravo.pk} <= set(AgencyEvent.objects.unscoped().values_list("agency_id", flat=True))


def test_tenant_api_base_class_is_sealed():
    with pytest.raises(TypeError, match="get_queryset"):
        type("Leaky", (AgencyViewSet,), {"get_queryset": lambda self: User.objects.all()})


def test_public_tables_hold_no_foreign_keys_into_agency_tables():
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint c
            JOIN pg_namespace n ON n.oid = c.connamespace
            WHERE c.contype = 'f' AND n.nspname = 'public'""")
        for table, target in cursor.fetchall():
            assert "." not in target or target.startswith("public."), (table, target)
