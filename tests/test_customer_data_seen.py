"""The customers core announces every access to a customer's data (crm.customers.hooks.customer_data_seen)
and crm.privacy logs it. The hook is required: with nothing connected it raises, so a card, a history, a
revealed number or an export is never served unlogged because the log's app was missing."""
import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from caravan.hooks import Hook, NoReceiver
from crm.customers import hooks, services
from crm.customers.models import ChangeLog
from crm.privacy import services as privacy
from crm.privacy.models import AccessEntry

from .conftest import staff

pytestmark = pytest.mark.django_db
PAGE = ChangeLog.Via.PAGE


def test_a_required_hook_refuses_to_fire_unheard_and_an_optional_one_does_not():
    required, optional = Hook("test.required", required=True), Hook("test.optional")
    with pytest.raises(NoReceiver, match="test.required"):
        required(anything=1)
    optional(anything=1)  # nothing connected, nothing to do
    heard = []
    required.connect(lambda **kwargs: heard.append(kwargs))
    required(anything=1)
    assert heard == [{"anything": 1}]


def test_privacy_connects_the_access_log_to_the_required_hook():
    assert hooks.customer_data_seen.required
    assert privacy.access_record in hooks.customer_data_seen._receivers
    assert AccessEntry.What is hooks.Seen and AccessEntry.Via is hooks.SeenVia


@pytest.fixture
def unheard(monkeypatch):
    """customer_data_seen as if crm.privacy were not installed."""
    monkeypatch.setattr(hooks.customer_data_seen, "_receivers", [])


def _customer_with_document(agency):
    with tenant_context(agency):
        customer = services.customer_create(actor=None, via=PAGE, name="张伟", phones=["13800138000"])
        document = services.document_add(actor=None, customer=customer, number="E12345678", via=PAGE,
                                         kind="passport", issuing_country="CN")
    connection.set_schema_to_public()
    return customer, document


def test_unheard_the_number_is_not_revealed(alpha, unheard):
    _customer, document = _customer_with_document(alpha)
    with tenant_context(alpha), pytest.raises(NoReceiver):
        services.document_reveal(actor=staff(alpha, "sales"), document=document, via=PAGE)


def test_unheard_the_api_serves_no_card_history_or_export(api_client, alpha, unheard):
    customer, _document = _customer_with_document(alpha)
    client = api_client("alpha", "admin")
    for path in (f"/api/v1/customers/{customer.pk}/", f"/api/v1/customers/{customer.pk}/history/",
                 "/api/v1/customers/export/"):
        with pytest.raises(NoReceiver):
            client.get(path)


def test_heard_the_same_reads_are_logged(api_client, alpha):
    customer, _document = _customer_with_document(alpha)
    client = api_client("alpha", "admin")
    assert client.get(f"/api/v1/customers/{customer.pk}/").status_code == 200
    assert client.get("/api/v1/customers/export/").status_code == 200
    with tenant_context(alpha):
        logged = list(AccessEntry.objects.order_by("id").values_list("what", "via", "customer_id"))
    assert logged == [("card_view", "api", customer.pk), ("customer_export", "api", None)]
