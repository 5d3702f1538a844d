"""What a plan allows (R-BILL-1): the customer limit on every way staff add customers, and an
operator's coupon taken off the agency's next invoice (against localstripe, never patched)."""
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from billing import services
from billing.models import Plan
from crm.customers import imports
from crm.customers.models import Customer
from crm.pipeline.services import customer_for_contact
from tests.test_billing import a_plan, card
from tests.test_crm_pages import form_data
from tests.test_crm_import import _media, errors_by_row, sample_job  # noqa: F401  (_media: fixture)

pytestmark = pytest.mark.django_db


def limit_plan(agency, room: int) -> Plan:
    """The agency's own plan, with room for ``room`` more customers."""
    with tenant_context(agency):
        used = Customer.objects.filter(merged_into__isnull=True).count()
    return Plan.objects.create(code=agency.plan, name="Starter 入门版", seat_price_month=Decimal("99"),
                               seat_price_year=Decimal("990"), max_customers=used + room)


def test_staff_cannot_add_customers_past_the_plans_limit_on_the_page_or_the_api(alpha, page_client, api_client):
    limit_plan(alpha, room=1)
    admin = page_client("alpha", "admin")
    first = admin.post("/customers/new/", form_data(name="陈一", phone_1="13911110001", email_1=""))
    assert first.status_code == 302
    refused = admin.post("/customers/new/", form_data(name="陈二", phone_1="13911110002", email_1=""))
    body = refused.content.decode()
    assert refused.status_code == 400 and "Starter 入门版" in body and "customers" in body
    api = api_client("alpha", "admin").post("/api/v1/customers/", {"kind": "person", "name": "陈三"}, format="json")
    assert api.status_code == 400 and "Starter 入门版" in str(api.json())
    with tenant_context(alpha):
        assert not Customer.objects.filter(name__in=["陈二", "陈三"]).exists()
        # A lead from the enquiry form or the website is never lost to the limit.
        customer, created = customer_for_contact(name="网上询价", phone="13911110004")
        assert created and customer.pk
    usage = services.usage(alpha)
    assert usage["customers"] > usage["customers_limit"]


def test_an_import_writes_new_customers_up_to_the_limit_and_reports_the_rest_per_row(alpha):
    limit_plan(alpha, room=2)
    job = sample_job(alpha)  # four good new people (and their company), five bad rows
    with tenant_context(alpha):
        report = imports.check(job)
        assert (report["create"], report["skip"]) == (2, 7)
        imports.run(job)
        assert job.created_count == 2
        limited = [e for e in job.errors if "customer limit" in e["message"]]
        assert len(limited) == 2 and {e["field"] for e in limited} == {"name"}
        assert set(errors_by_row(job.errors)) == {e["row"] for e in limited} | {6, 7, 8, 9, 10}
        again = sample_job(alpha)
        imports.run(again)  # the two written are updated; the limit still holds for the others
        assert (again.created_count, again.updated_count) == (0, 2)


def test_no_plan_limit_means_no_refusal(alpha, page_client):
    Plan.objects.create(code=alpha.plan, name="Unlimited", seat_price_month=Decimal("99"), seat_price_year=Decimal("990"))
    with tenant_context(alpha):
        assert services.customer_room(alpha) is None
    assert page_client("alpha", "admin").post("/customers/new/", form_data(
        name="不限", phone_1="13911110009", email_1="")).status_code == 302


def test_an_operators_coupon_comes_off_the_next_invoice(stripe_settings, alpha, bravo, operator_client):
    plan = a_plan(month="199.00")
    bad = operator_client.post(f"/agencies/{alpha.slug}/", {"action": "credit", "amount": "-5", "reason": "x"},
                               follow=True)
    assert "at most two decimals" in bad.content.decode()
    bad = operator_client.post(f"/agencies/{alpha.slug}/", {"action": "credit", "amount": "50", "reason": " "},
                               follow=True)
    assert "printed on the invoice" in bad.content.decode()
    assert services.credits_pending(alpha) == []
    done = operator_client.post(f"/agencies/{alpha.slug}/", {"action": "credit", "amount": "50.00",
                                                             "reason": "开业优惠 Launch discount"}, follow=True)
    page = done.content.decode()
    assert 'data-test="credits"' in page and "开业优惠 Launch discount" in page
    assert [(c["amount"], c["reason"]) for c in services.credits_pending(alpha)] == [(Decimal("50"), "开业优惠 Launch discount")]
    assert services.credits_pending(bravo) == []  # another agency's customer has none of it
    services.subscribe(agency=alpha, plan=plan, interval="month", payment_method=card())
    staff = services.seats_in_use(alpha)
    first = services.invoices(alpha)[0]
    assert (first["status"], first["total"]) == ("paid", Decimal("199") * staff - 50)
    assert services.credits_pending(alpha) == []  # used up by that invoice
    with pytest.raises(ValidationError) as too_precise:
        services.grant_credit(agency=alpha, amount="1.005", reason="x", actor="op")
    assert "amount" in too_precise.value.message_dict
