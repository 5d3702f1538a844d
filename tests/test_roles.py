"""Roles (R-PLAT-3): the capability table itself. Which role reaches which route (403 for every role
without the route's declared capability, never for one holding it) is generated from the URL map in
tests/test_fences.py, for every page and API route; so is anonymous → log-in page / 401."""
import pytest

from accounts.roles import ROLE_CAPS, Cap, Role, role_can

pytestmark = pytest.mark.django_db


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
