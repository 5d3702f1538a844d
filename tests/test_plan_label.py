"""Issue 20: a comped agency's plan reads the same on the Billing page, the dashboard and the console
(billing.services.plan_label, the one rule). The demo agency, comped, showed "Trial" and no plan on Billing
while its dashboard said "Enterprise"."""
import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import services
from tenants.models import Agency

pytestmark = pytest.mark.django_db


def html(response) -> str:
    assert response.status_code == 200, response
    return response.content.decode()


def test_a_comped_agency_names_its_plan_alike_everywhere(alpha, bravo, page_client, operator_client):
    with schema_context("public"):
        Agency.objects.filter(pk=alpha.pk).update(plan=Agency.Plan.ENTERPRISE, status=Agency.Status.TRIAL,
                                                  trial_ends_at=timezone.now() + timezone.timedelta(days=10))
        alpha.refresh_from_db()
        plan = alpha.plan_name
        trial = services.plan_label(alpha)
        services.set_comped(agency=alpha, comped=True, actor="test", note="demo agency")
        alpha.refresh_from_db()
        label = services.plan_label(alpha)
    assert trial == f"{plan} · trial" and label == f"{plan} · free of charge"
    assert alpha.status == Agency.Status.ACTIVE

    admin = page_client("alpha", "admin")
    billing = html(admin.get("/settings/billing/"))  # Stripe not configured here: the facts are shown all the same
    assert f'<dd data-test="plan">{label}</dd>' in billing
    assert '<dd data-test="agency-status">Active</dd>' in billing and "Trial ends" not in billing
    assert f'<dd data-test="plan">{label}</dd>' in html(admin.get("/"))
    assert f'<dd data-test="plan">{label}</dd>' in html(operator_client.get(f"/agencies/{alpha.slug}/"))

    # Another agency, on its trial, is named as such, and never with alpha's free use.
    with schema_context("public"):
        bravo_label = services.plan_label(Agency.objects.get(pk=bravo.pk))
    bravo_dashboard = html(page_client("bravo", "admin").get("/"))
    assert f'<dd data-test="plan">{bravo_label}</dd>' in bravo_dashboard and "free of charge" not in bravo_dashboard
