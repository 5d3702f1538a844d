"""The customer list's filters that other apps own (crm.customers.list_filters): value registers
segment, quadrant and rfm from its ready(); the selector, the API and the list page read the registry
when they run, so a registered filter narrows all three alike and its capability fences all three."""
import pytest
from django.apps import apps
from django.core.exceptions import AppRegistryNotReady
from django_tenants.utils import tenant_context

from accounts.roles import Cap
from crm.customers import list_filters, services
from crm.customers.models import ChangeLog
from crm.customers.selectors import customer_list

pytestmark = pytest.mark.django_db


def test_value_registers_its_three_filters_behind_value_view():
    by_key = {f.key: f for f in list_filters.registered()}
    assert {"segment", "quadrant", "rfm"} <= set(by_key)
    assert all(by_key[key].cap == Cap.VALUE_VIEW and str(by_key[key].refused) for key in ("segment", "quadrant", "rfm"))
    assert [value for value, _label in by_key["quadrant"].choices] == ["small_low", "small_high", "large_low",
                                                                       "large_high"]


def test_the_registry_is_not_read_before_every_app_is_ready(monkeypatch):
    monkeypatch.setattr(apps, "ready", False)
    with pytest.raises(AppRegistryNotReady):
        list_filters.registered()


def test_a_filter_needing_a_capability_must_say_why_it_refuses():
    with pytest.raises(ValueError):
        list_filters.register(list_filters.ListFilter("x", "x", lambda qs, value: qs, cap=Cap.VALUE_VIEW))


@pytest.fixture
def kind_filter(monkeypatch):
    """A filter registered like value's, by kind, needing value.view (sales has it, call_center not)."""
    f = list_filters.ListFilter("only", "People or companies.", lambda qs, value: qs.filter(kind=value),
                                choices=(("person", "Person"), ("company", "Company")), cap=Cap.VALUE_VIEW,
                                refused="You may not filter by this.")
    monkeypatch.setitem(list_filters._filters, "only", f)


def test_a_registered_filter_narrows_the_selector_the_api_and_the_page_alike(alpha, kind_filter, api_client,
                                                                             page_client):
    with tenant_context(alpha):
        services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="张三", phones=["13800138001"])
        services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="远方公司", kind="company")
        assert [c.name for c in customer_list(filters={"only": "company"})] == ["远方公司"]
    body = api_client("alpha", "sales").get("/api/v1/customers/", {"only": "company"}).json()
    assert [row["name"] for row in body["results"]] == ["远方公司"]
    assert api_client("alpha", "sales").get("/api/v1/customers/", {"only": "robot"}).status_code == 400
    html = page_client("alpha", "sales").get("/customers/", {"only": "company"}).content.decode()
    assert "远方公司" in html and "张三" not in html


def test_without_the_capability_the_api_refuses_it_and_the_page_drops_it(alpha, kind_filter, api_client, page_client):
    with tenant_context(alpha):
        services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="张三", phones=["13800138001"])
        services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="远方公司", kind="company")
    refused = api_client("alpha", "call_center").get("/api/v1/customers/", {"only": "company"})
    assert refused.status_code == 400 and "You may not filter by this." in str(refused.json())
    html = page_client("alpha", "call_center").get("/customers/", {"only": "company"}).content.decode()
    assert "远方公司" in html and "张三" in html
