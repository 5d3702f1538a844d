"""Roles (R-PLAT-3): each role reaches what it should and gets 403 elsewhere. One table."""
import pytest

from accounts.roles import ROLE_CAPS, Cap, Role, role_can

pytestmark = pytest.mark.django_db

ALL = set(Role.values)
# (method, path, body, roles allowed) — the rest of the roles must get 403.
API = [
    ("get", "/api/v1/me/", None, ALL),
    ("get", "/api/v1/agency/", None, ALL),
    ("patch", "/api/v1/agency/", {"currency": "HKD"}, {"admin"}),
    ("get", "/api/v1/staff/", None, {"admin", "manager"}),
    ("post", "/api/v1/staff/", {"email": "new@x.test", "full_name": "New", "role": "sales"}, {"admin"}),
]
PAGES = [
    ("/", ALL),
    ("/profile/", ALL),
    ("/search/?q=a", ALL),
    ("/staff/", {"admin", "manager"}),
    ("/staff/invite/", {"admin"}),
    ("/settings/", {"admin"}),
]


@pytest.mark.parametrize("role", Role.values)
@pytest.mark.parametrize("method, path, body, allowed", API, ids=[f"{m} {p}" for m, p, _, _ in API])
def test_api_by_role(api_client, role, method, path, body, allowed):
    response = getattr(api_client("alpha", role), method)(path, body, format="json")
    if role in allowed:
        assert response.status_code in (200, 201), response.content
    else:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize("role", Role.values)
@pytest.mark.parametrize("path, allowed", PAGES, ids=[p for p, _ in PAGES])
def test_pages_by_role(page_client, role, path, allowed):
    response = page_client("alpha", role).get(path)
    assert response.status_code == (200 if role in allowed else 403)


@pytest.mark.parametrize("path", ["/api/v1/me/", "/api/v1/staff/"])
def test_api_needs_authentication(api_client, path):
    response = api_client("alpha").get(path)
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_least_privilege_matrix():
    assert not role_can(Role.CALL_CENTER, Cap.DOCUMENTS_VIEW)  # cards, never documents
    assert role_can(Role.CALL_CENTER, Cap.CUSTOMERS_VIEW)
    assert role_can(Role.FINANCE, Cap.PAYMENTS_RECORD) and not role_can(Role.SALES, Cap.PAYMENTS_RECORD)
    assert not role_can(Role.FINANCE, Cap.DOCUMENTS_VIEW)
    assert role_can(Role.ADMIN, Cap.STAFF_MANAGE) and not role_can(Role.MANAGER, Cap.STAFF_MANAGE)
    assert ROLE_CAPS[Role.ADMIN] == frozenset(Cap)
    assert not role_can("", Cap.CUSTOMERS_VIEW)  # operators and unknown roles hold nothing


def test_deactivated_staff_lose_access(api_client, alpha):
    from django_tenants.utils import tenant_context

    from accounts.models import User

    client = api_client("alpha", "sales")
    with tenant_context(alpha):
        User.objects.filter(email="sales@alpha.test").update(is_active=False)
    assert client.get("/api/v1/me/").status_code == 401
