"""Billing end to end, with nothing run in-process that production runs elsewhere: localstripe posts
signed events to the app server, the app server stores them and queues ``billing.process_event``, a
real Celery worker re-reads Stripe and moves the agency. Each change below is made on the Stripe side
(as a renewal, Stripe's dashboard or a customer paying an invoice would), so only the webhook → worker
path can bring Caravan's status along."""
import time
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing import services
from billing.models import BillingAccount, Plan, StripeEvent
from billing.tasks import refresh_agencies
from tenants.models import Agency
from tenants.services import agency_delete, agency_onboard

from tests.servers import STRIPE_WEBHOOK_SECRET, log_tail
from tests.test_billing import DECLINED_CARD, card

pytestmark = pytest.mark.django_db


def test_trial_subscribe_seats_failed_payment_suspended_paid_through_webhooks_and_a_worker(
        stripe_settings, stripe_server, app_server, app_worker, committed):
    target = f"http://localhost:{app_server.port}/billing/stripe/webhook/"
    form = urllib.parse.urlencode({"url": target, "secret": STRIPE_WEBHOOK_SECRET}).encode()
    with urllib.request.urlopen(f"{stripe_server}/_config/webhooks/caravan-tests", data=form, timeout=5) as response:
        assert response.status == 200
    v1 = services.stripe_client().v1
    stamp = time.monotonic_ns() % 10**8

    def wait_for(what, check, timeout=40):
        deadline = time.monotonic() + timeout
        while True:
            with committed():
                found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not happen within {timeout} s.\nworker:\n{log_tail(app_worker.log)}\n"
                            f"app server:\n{log_tail(app_server.log, 20)}")
            time.sleep(0.3)

    def status(agency):
        return Agency.objects.get(pk=agency.pk).status

    with committed():
        plan = services.plan_sync(Plan.objects.create(
            code=f"e2e-{stamp}", name="End to end", seat_price_month=Decimal("150"), seat_price_year=Decimal("1500")))
        agency = agency_onboard(name="E2E 端到端旅行社", slug=f"e2e{stamp}", plan=plan.code,
                                admin_email=f"admin@e2e{stamp}.test").agency
    account = None
    try:
        assert agency.status == Agency.Status.TRIAL
        with committed():
            account = services.subscribe(agency=agency, plan=plan, interval="month", payment_method=card())
        customer, subscription = account.stripe_customer_id, account.stripe_subscription_id
        # The subscription's own events came back through the app server and were applied by the worker.
        wait_for("the worker processing customer.subscription.created", lambda: StripeEvent.objects.filter(
            customer_id=customer, type="customer.subscription.created", processed_at__isnull=False).exists())
        assert wait_for("active", lambda: status(agency) == Agency.Status.ACTIVE)

        # A seat more: inviting a colleague sets the subscription's quantity once committed.
        from accounts import services as staff_services
        from accounts.models import User

        with committed(), tenant_context(agency):
            admin = User.objects.get(email=f"admin@e2e{stamp}.test")
            staff_services.staff_invite(actor=admin, email=f"sales@e2e{stamp}.test", full_name="销售", role="sales")
        assert v1.subscriptions.retrieve(subscription)["items"]["data"][0]["quantity"] == 2

        # A renewal that fails: the card on file is now declined and the subscription is invoiced on
        # Stripe's side. Only the invoice's events tell Caravan.
        declined = card(DECLINED_CARD)
        v1.payment_methods.attach(declined, {"customer": customer})
        v1.customers.update(customer, {"invoice_settings": {"default_payment_method": declined}})
        item = v1.subscriptions.retrieve(subscription)["items"]["data"][0]
        v1.subscriptions.update(subscription, {"items": [{"id": item.id, "plan": plan.stripe_plan_year_id,
                                                          "quantity": 2}]})
        assert wait_for("past due", lambda: status(agency) == Agency.Status.PAST_DUE)
        with committed():
            assert services.account_for(agency).past_due_since is not None

        # The grace period runs out: the hourly job, run by the worker, suspends (read-only).
        with committed():
            BillingAccount.objects.unscoped().filter(agency=agency).update(
                past_due_since=timezone.now() - timezone.timedelta(days=8))
        with committed():  # a PlatformTask is sent on commit
            refresh_agencies.apply_async(queue=app_worker.queue)
        assert wait_for("suspended", lambda: status(agency) == Agency.Status.SUSPENDED)

        # The customer pays the open invoice with a good card, on Stripe's side: active at once.
        good = card()
        v1.payment_methods.attach(good, {"customer": customer})
        v1.customers.update(customer, {"invoice_settings": {"default_payment_method": good}})
        for invoice in v1.invoices.list({"customer": customer, "limit": 10}).data:
            if invoice.status == "open":
                v1.invoices.pay(invoice.id)
        assert wait_for("active again", lambda: status(agency) == Agency.Status.ACTIVE)
        with committed():
            account = services.account_for(agency)
            assert (account.stripe_status, account.past_due_since) == ("active", None)
            # Every stored event of this customer was applied once, none left waiting or failing.
            events = StripeEvent.objects.filter(customer_id=customer)
            assert events.count() >= 4 and not events.filter(processed_at__isnull=True).exists()
    finally:
        with committed():
            if account is not None:
                StripeEvent.objects.filter(customer_id=account.stripe_customer_id).delete()
            agency_delete(agency=Agency.objects.get(pk=agency.pk), confirm_slug=agency.slug, actor="tests")
            Plan.objects.filter(pk=plan.pk).delete()
