"""Online payments in the portal with the agency's own Stripe account (crm.checkout, issue 21), against
localstripe (a real fake Stripe; the Stripe client is never patched): keys checked and kept encrypted, the
amount set by the schedule (never the browser), the deposit recorded once whatever the webhook order or
repetition (stage move and same-day task), refunds both ways, webhook signatures per agency, fences."""
import http.server
import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from decimal import Decimal

import pytest
import stripe
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from crm.checkout import selectors, services
from crm.checkout.models import CheckoutEvent, OnlinePayment, OnlineRefund, StripeAccount
from crm.customers import crypto
from crm.customers.models import Contact
from crm.pipeline.models import Opportunity, Stage, Task
from crm.portal.services import portal_settings
from crm.trips import services as trips
from crm.trips.models import Payment

from . import servers
from .conftest import host, staff
from .portal_helpers import confirmed_trip, person, portal_client

pytestmark = pytest.mark.django_db

SECRET = {"alpha": "sk_test_alpha_agency_key_1234", "bravo": "sk_test_bravo_agency_key_5678"}
HOOK = {"alpha": "whsec_alpha_agency", "bravo": "whsec_bravo_agency"}
GOOD_CARD, DECLINED_CARD, THREE_D_SECURE = "4242424242424242", "4000000000000341", "4000002500003155"


def connect(agency, methods=("card",)):
    with tenant_context(agency):
        return services.account_connect(actor=staff(agency, "admin"), publishable_key=f"pk_test_{agency.slug}",
                                        secret_key=SECRET[agency.slug], webhook_secret=HOOK[agency.slug],
                                        methods=list(methods))


def card(number=GOOD_CARD) -> str:
    """A PaymentMethod, made as Stripe.js makes it in the browser (inside the agency's tenant_context)."""
    return services.client().v1.payment_methods.create(
        {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}).id


def signed(event: dict, secret: str, at: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(event).encode()
    at = at or int(time.time())
    return body, f"t={at},v1={stripe.WebhookSignature._compute_signature(f'{at}.{body.decode()}', secret)}"


def event(kind: str, obj: dict, event_id: str | None = None) -> dict:
    return {"id": event_id or f"evt_{uuid.uuid4().hex[:16]}", "object": "event", "type": kind,
            "created": int(time.time()), "data": {"object": obj}}


def deliver(client: Client, payload: dict, secret: str):
    body, signature = signed(payload, secret)
    return client.post("/checkout/stripe/webhook/", body, content_type="application/json",
                       HTTP_STRIPE_SIGNATURE=signature)


@pytest.fixture
def wang(alpha):
    with tenant_context(alpha):
        customer = person("王芳", f"wang.{uuid.uuid4().hex[:8]}@example.cn", language="zh-hans")
        trip = confirmed_trip(customer, title="京都红叶")  # 2 × 1500.00 = 3000.00; deposit 30 % = 900.00
    connection.set_schema_to_public()
    customer.trip = trip
    return customer


# --- the account ----------------------------------------------------------------------------------------

def test_keys_are_checked_with_stripe_and_kept_encrypted(stripe_settings, alpha):
    account = connect(alpha, methods=("card", "alipay", "wechat_pay"))
    with tenant_context(alpha):
        stored = StripeAccount.objects.get()
        assert SECRET["alpha"] not in stored.secret_key_encrypted and HOOK["alpha"] not in stored.webhook_secret_encrypted
        assert crypto.decrypt(stored.secret_key_encrypted) == SECRET["alpha"]
        assert stored.key_hint == "sk_test_…1234" and stored.methods == ["card", "alipay", "wechat_pay"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT secret_key_encrypted || webhook_secret_encrypted FROM checkout_stripeaccount")
            assert SECRET["alpha"] not in cursor.fetchone()[0]
        admin = staff(alpha, "admin")
        with pytest.raises(ValidationError) as refused:  # localstripe refuses a key that is not sk_…
            services.account_connect(actor=admin, publishable_key="pk_test_x", secret_key="sk_", webhook_secret="whsec_x",
                                     methods=["card"])
        assert "secret_key" in refused.value.message_dict
        with pytest.raises(ValidationError) as refused:
            services.account_connect(actor=admin, publishable_key="nope", secret_key="", webhook_secret="",
                                     methods=[])
        assert set(refused.value.message_dict) == {"publishable_key", "methods"}
        with pytest.raises(ValidationError) as refused:  # test and live keys mixed
            services.account_connect(actor=admin, publishable_key="pk_live_x", secret_key="", webhook_secret="",
                                     methods=["card"])
        assert "secret_key" in refused.value.message_dict
        with pytest.raises(PermissionDenied):
            services.account_connect(actor=staff(alpha, "manager"), publishable_key="pk_test_x", secret_key="",
                                     webhook_secret="", methods=["card"])
        # Blank secrets keep the stored ones; the methods change.
        services.account_connect(actor=admin, publishable_key="pk_test_alpha", secret_key="", webhook_secret="",
                                 methods=["card"])
        stored.refresh_from_db()
        assert crypto.decrypt(stored.secret_key_encrypted) == SECRET["alpha"] and stored.methods == ["card"]
        assert account.pk == 1


def test_key_rotation_re_encrypts_the_stripe_keys(stripe_settings, alpha, wang, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    connect(alpha)
    with tenant_context(alpha):
        before = StripeAccount.objects.get()
    connection.set_schema_to_public()
    settings.DOCUMENT_KEYS = f"{Fernet.generate_key().decode()},{settings.DOCUMENT_KEYS}"
    call_command("rotate_document_keys", verbosity=0, stdout=open("/dev/null", "w"))
    settings.DOCUMENT_KEYS = settings.DOCUMENT_KEYS.split(",")[0]  # only the new key from now on
    with tenant_context(alpha):
        after = StripeAccount.objects.get()
        assert after.secret_key_encrypted != before.secret_key_encrypted
        assert crypto.decrypt(after.secret_key_encrypted) == SECRET["alpha"]
        assert crypto.decrypt(after.webhook_secret_encrypted) == HOOK["alpha"]
        assert services.intent_create(customer=wang, trip=wang.trip, kind="deposit").amount == Decimal("900.00")


def test_the_settings_page_connects_and_disconnects_for_admins_only(stripe_settings, alpha, bravo, page_client):
    admin = page_client("alpha", "admin")
    page = admin.get("/settings/portal/payments/")
    assert page.status_code == 200
    assert b"http://alpha.localhost" in page.content and b"/checkout/stripe/webhook/" in page.content
    assert b"charge.refunded" in page.content
    assert b"/settings/portal/payments/" in admin.get("/settings/portal/").content  # the link from the portal settings
    for role in ("manager", "sales", "finance"):
        assert page_client("alpha", role).get("/settings/portal/payments/").status_code == 403
        assert page_client("alpha", role).post("/settings/portal/payments/", {"action": "disconnect"}).status_code == 403
    form = {"publishable_key": "pk_test_alpha", "secret_key": SECRET["alpha"], "webhook_secret": HOOK["alpha"],
            "methods": ["card", "alipay"]}
    assert admin.post("/settings/portal/payments/", {**form, "secret_key": "pk_wrong"}).status_code == 400
    assert admin.post("/settings/portal/payments/", form).status_code == 302
    page = admin.get("/settings/portal/payments/")
    assert SECRET["alpha"].encode() not in page.content and HOOK["alpha"].encode() not in page.content
    assert b'data-test="checkout-connected"' in page.content
    with tenant_context(bravo):
        assert not StripeAccount.objects.exists()  # bravo's schema holds nothing of alpha's
    with tenant_context(alpha):
        assert StripeAccount.objects.get().methods == ["card", "alipay"]
    connection.set_schema_to_public()
    assert admin.post("/settings/portal/payments/", {"action": "disconnect"}).status_code == 302
    with tenant_context(alpha):
        assert not StripeAccount.objects.exists()


# --- the schedule and paying -------------------------------------------------------------------------------

def test_the_schedule_deposit_then_balance(stripe_settings, alpha, wang):
    with tenant_context(alpha):
        trip = wang.trip
        deposit, balance = selectors.schedule(trip)
        assert (deposit.kind, deposit.amount, deposit.to_pay, deposit.payable) == ("deposit", Decimal("900.00"),
                                                                                     Decimal("900.00"), True)
        assert (balance.amount, balance.payable, balance.due_on) == (Decimal("2100.00"), False, trip.balance_due_on)
        row = portal_settings()
        row.deposit_percent = 50
        row.save()
        assert selectors.line_of(trip, "deposit").amount == Decimal("1500.00")
        trips.payment_record(actor=None, trip=trip, kind="deposit", amount="1500.00", method="bank",
                             received_on=trip.depart_on)
        deposit, balance = selectors.schedule(trip)
        assert deposit.paid and not deposit.payable
        assert (balance.amount, balance.to_pay, balance.payable) == (Decimal("1500.00"), Decimal("1500.00"), True)


def test_an_accepted_proposal_sets_the_deposit(stripe_settings, alpha, wang):
    from crm.proposals import services as proposals
    from crm.proposals.models import Acceptance, Proposal

    with tenant_context(alpha):
        snapshot = proposals.snapshot_of(wang.trip, included="早餐", excluded="", terms="条款", deposit=Decimal("500.00"))
        proposal = Proposal.objects.create(trip=wang.trip, version=1, snapshot=snapshot,
                                           content_hash=proposals.content_hash(snapshot))
        assert selectors.line_of(wang.trip, "deposit").amount == Decimal("900.00")  # sent, not accepted: 30 %
        Acceptance.objects.create(proposal=proposal, customer=wang, typed_name="王芳", agreed=True,
                                  content_hash=proposal.content_hash)
        proposal.refresh_from_db()
        deposit, balance = selectors.schedule(wang.trip)
        assert (deposit.amount, balance.amount) == (Decimal("500.00"), Decimal("2500.00"))


def test_the_portal_pays_the_deposit_for_the_amount_of_the_schedule_only(stripe_settings, alpha, wang):
    connect(alpha)
    client = portal_client(alpha, wang)
    trip_page = client.get(f"/portal/trips/{wang.trip.pk}/")
    assert b'data-test="pay-deposit"' in trip_page.content and b"900" in trip_page.content
    assert b'data-test="pay-balance"' not in trip_page.content  # the balance comes after the deposit
    assert f"/portal/trips/{wang.trip.pk}/#payments".encode() in client.get("/portal/").content  # a "to do" line
    page = client.get(f"/portal/trips/{wang.trip.pk}/pay/deposit/")
    assert page.status_code == 200
    assert "script-src" in page["Content-Security-Policy"] and stripe_settings.STRIPE_API_BASE in page["Content-Security-Policy"]
    assert client.get(f"/portal/trips/{wang.trip.pk}/pay/deposit/").status_code == 200  # the same intent again
    with tenant_context(alpha):
        online = OnlinePayment.objects.get()
        assert (online.kind, online.amount, online.currency, online.customer) == ("deposit", Decimal("900.00"),
                                                                                  wang.trip.currency, wang)
        intent = services.client().v1.payment_intents.retrieve(online.intent_id)
        assert intent.amount == 90000 and intent.metadata["schema"] == alpha.schema_name
        assert intent.metadata["trip"] == str(wang.trip.pk) and intent.metadata["kind"] == "deposit"
        method = card()
    connection.set_schema_to_public()
    # Whatever amount the browser sends is ignored; the balance cannot be paid before the deposit.
    assert client.get(f"/portal/trips/{wang.trip.pk}/pay/balance/").status_code == 302
    assert client.get(f"/portal/trips/{wang.trip.pk}/pay/refund/").status_code == 404
    response = client.post(f"/portal/trips/{wang.trip.pk}/pay/deposit/",
                           {"online": online.pk, "payment_method": method, "amount": "1.00"})
    assert response.status_code == 302 and response["Location"].endswith(f"/payments/{online.pk}/")
    done = client.get(response["Location"])
    assert b'data-test="payment-succeeded"' in done.content
    with tenant_context(alpha):
        payment = Payment.objects.get(trip=wang.trip)
        assert (payment.kind, payment.amount, payment.method, payment.reference) == ("deposit", Decimal("900.00"),
                                                                                     "card", online.intent_id)
        assert payment.recorded_by is None
        assert Contact.objects.filter(customer=wang, channel=Contact.Channel.PORTAL, text_kind="portal_paid").exists()
    connection.set_schema_to_public()
    # Paid: the panel now offers the balance, and the webhook of the same payment changes nothing.
    trip_page = client.get(f"/portal/trips/{wang.trip.pk}/")
    assert b'data-test="pay-balance"' in trip_page.content and b'data-test="pay-deposit"' not in trip_page.content
    assert client.post(f"/portal/trips/{wang.trip.pk}/pay/deposit/",
                       {"online": online.pk, "payment_method": method}).status_code == 404  # paid: not waiting
    alpha_host = Client(HTTP_HOST=host("alpha"))
    assert deliver(alpha_host, event("payment_intent.succeeded", {"id": online.intent_id, "object": "payment_intent"}),
                   HOOK["alpha"]).status_code == 200
    with tenant_context(alpha):
        assert services.event_process(CheckoutEvent.objects.get().event_id) == "recorded before"
        assert Payment.objects.filter(trip=wang.trip).count() == 1


def test_a_declined_card_is_an_error_and_records_nothing(stripe_settings, alpha, wang):
    connect(alpha)
    client = portal_client(alpha, wang)
    client.get(f"/portal/trips/{wang.trip.pk}/pay/deposit/")
    with tenant_context(alpha):
        online = OnlinePayment.objects.get()
        method = card(DECLINED_CARD)
    connection.set_schema_to_public()
    response = client.post(f"/portal/trips/{wang.trip.pk}/pay/deposit/", {"online": online.pk, "payment_method": method})
    assert response.status_code == 400 and b'data-test="pay-error"' in response.content
    with tenant_context(alpha):
        online.refresh_from_db()
        assert online.status == "failed" and not Payment.objects.filter(trip=wang.trip).exists()
        assert services.payment_succeeded(online.intent_id) == "not paid"
        assert services.client().v1.payment_intents.retrieve(online.intent_id).status == "canceled"
        retry = OnlinePayment.objects.get(status="created")  # the page offers a new payment for the next try
        assert retry.intent_id != online.intent_id and f'value="{retry.pk}"'.encode() in response.content
        assert services.intent_pay(online=retry, payment_method=card()) == "succeeded"
        assert Payment.objects.get(trip=wang.trip).amount == Decimal("900.00")


def test_three_d_secure_is_completed_in_the_browser_then_recorded(stripe_settings, stripe_server, alpha, wang):
    connect(alpha)
    client = portal_client(alpha, wang)
    client.get(f"/portal/trips/{wang.trip.pk}/pay/deposit/")
    with tenant_context(alpha):
        online = OnlinePayment.objects.get()
        method = card(THREE_D_SECURE)
        secret = services.client().v1.payment_intents.retrieve(online.intent_id).client_secret
    connection.set_schema_to_public()
    page = client.post(f"/portal/trips/{wang.trip.pk}/pay/deposit/", {"online": online.pk, "payment_method": method})
    assert page.status_code == 200 and f'data-action-secret="{secret}"'.encode() in page.content
    waiting = client.get(f"/portal/trips/{wang.trip.pk}/payments/{online.pk}/")
    assert b'data-test="payment-created"' in waiting.content and b"data-poll=" in waiting.content
    assert client.get(f"/portal/trips/{wang.trip.pk}/payments/{online.pk}/?poll=1").json() == {"recorded": False}
    # What localstripe's Stripe.js does when the customer completes the bank's check.
    body = json.dumps({"key": "pk_test_alpha", "client_secret": secret}).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"{stripe_server}/v1/payment_intents/{online.intent_id}/_authenticate?success=true", data=body), timeout=5).close()
    assert client.get(f"/portal/trips/{wang.trip.pk}/payments/{online.pk}/?poll=1").json() == {"recorded": True}
    assert b'data-test="payment-succeeded"' in client.get(f"/portal/trips/{wang.trip.pk}/payments/{online.pk}/").content
    with tenant_context(alpha):
        assert Payment.objects.get(trip=wang.trip).amount == Decimal("900.00")


def test_a_deposit_paid_online_moves_the_opportunity_and_makes_one_task_whatever_the_webhook_order(
        stripe_settings, alpha):
    connect(alpha)
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        customer = person("李雷", f"li.{uuid.uuid4().hex[:8]}@example.cn")
        opportunity = Opportunity.objects.create(customer=customer, currency="CNY", stage=Stage.objects.get(code="new"),
                                                 owner=sales, title="北海道滑雪")
        trip = trips.quote_from_opportunity(actor=sales, opportunity=opportunity)
        trips.item_add(actor=sales, trip=trip, kind="tour", description="Niseko", sell="10000", cost="8000")
        online = services.intent_create(customer=customer, trip=trip, kind="deposit")
        assert online.amount == Decimal("3000.00")
        # Succeeded delivered before the payment is made: nothing is recorded.
        assert services.payment_succeeded(online.intent_id) == "not paid"
        assert services.intent_pay(online=online, payment_method=card()) == "succeeded"  # recorded at once
        for _ in range(2):  # then the webhook, twice, and the return page
            assert services.payment_succeeded(online.intent_id) == "recorded before"
        assert Payment.objects.filter(trip=trip).count() == 1
        opportunity.refresh_from_db()
        assert opportunity.stage.kind == "deposit"
        task = Task.objects.get(trip=trip)
        assert (task.kind, task.owner, task.key) == ("deposit_call", sales, f"deposit-call:{trip.pk}")
        # A failure event after the success changes nothing.
        assert services.payment_failed(online.intent_id) == "nothing to do"
        online.refresh_from_db()
        assert online.status == "succeeded" and online.payment.amount == Decimal("3000.00")


def test_paying_twice_at_once_is_refunded_at_stripe(stripe_settings, alpha, wang):
    connect(alpha)
    with tenant_context(alpha):
        first = services.intent_create(customer=wang, trip=wang.trip, kind="deposit")
        second = OnlinePayment.objects.create(  # a second tab's intent for the same deposit
            trip=wang.trip, kind="deposit", amount=first.amount, currency=first.currency, customer=wang,
            intent_id=services.client().v1.payment_intents.create({"amount": 90000, "currency": "cny", "metadata": {
                "schema": alpha.schema_name}}).id)
        services.intent_pay(online=first, payment_method=card())
        services.intent_pay(online=second, payment_method=card())
        second.refresh_from_db()
        assert second.status == "refunded" and second.payment is None
        assert Payment.objects.filter(trip=wang.trip).count() == 1
        refunds = services.client().v1.refunds.list({"payment_intent": second.intent_id}).data
        assert [r.amount for r in refunds] == [90000]


# --- refunds -------------------------------------------------------------------------------------------------

def charge_of(intent_id: str) -> str:
    """The intent's charge id (localstripe answers the charge itself where Stripe answers its id)."""
    charge = services.client().v1.payment_intents.retrieve(intent_id).latest_charge
    return charge if isinstance(charge, str) else charge.id


def _paid_deposit(alpha, customer) -> OnlinePayment:
    with tenant_context(alpha):
        online = services.intent_create(customer=customer, trip=customer.trip, kind="deposit")
        services.intent_pay(online=online, payment_method=card())
        online.refresh_from_db()
    connection.set_schema_to_public()
    return online


def test_a_staff_refund_of_an_online_payment_is_made_at_stripe(stripe_settings, alpha, wang, page_client):
    connect(alpha)
    online = _paid_deposit(alpha, wang)
    finance = page_client("alpha", "finance")
    form = {"kind": "refund", "amount": "400.00", "method": "card", "received_on": "2031-01-05", "refund_of": online.payment_id}
    assert finance.post(f"/trips/{wang.trip.pk}/payments/", form).status_code == 302
    with tenant_context(alpha):
        refund = Payment.objects.get(trip=wang.trip, kind="refund")
        made = OnlineRefund.objects.get()
        assert (made.payment, made.amount) == (refund, Decimal("400.00"))
        charge = charge_of(online.intent_id)
        at_stripe = services.client().v1.refunds.list({"charge": charge}).data
        assert [(r.id, r.amount) for r in at_stripe] == [(made.refund_id, 40000)]
        # Stripe's charge.refunded for that refund records nothing more.
        assert services.refunds_from_stripe(charge) == "0 refunds recorded"
    connection.set_schema_to_public()
    assert finance.post(f"/trips/{wang.trip.pk}/payments/", {**form, "amount": "500.00"}).status_code == 302
    with tenant_context(alpha):
        online.refresh_from_db()
        assert online.status == "refunded" and Payment.objects.filter(kind="refund").count() == 2
        assert len(services.client().v1.refunds.list({"charge": charge}).data) == 2


def test_a_refund_made_in_stripes_dashboard_is_recorded_once(stripe_settings, alpha, wang):
    connect(alpha)
    online = _paid_deposit(alpha, wang)
    with tenant_context(alpha):
        charge = charge_of(online.intent_id)
        services.client().v1.refunds.create({"charge": charge, "amount": 30000})  # "in the dashboard"
    connection.set_schema_to_public()
    alpha_host = Client(HTTP_HOST=host("alpha"))
    refunded = event("charge.refunded", {"id": charge, "object": "charge"})
    for _ in range(2):  # the same event twice
        assert deliver(alpha_host, refunded, HOOK["alpha"]).status_code == 200
    again = event("charge.refunded", {"id": charge, "object": "charge"})  # another event for the same refund
    assert deliver(alpha_host, again, HOOK["alpha"]).status_code == 200
    with tenant_context(alpha):
        assert CheckoutEvent.objects.count() == 2
        assert [services.event_process(e) for e in (refunded["id"], again["id"], refunded["id"])] == [
            "1 refunds recorded", "0 refunds recorded", "done before"]
        refund = Payment.objects.get(kind="refund")
        assert (refund.amount, refund.refund_of_id, refund.recorded_by) == (Decimal("300.00"), online.payment_id, None)
        assert len(services.client().v1.refunds.list({"charge": charge}).data) == 1  # not refunded again by the hook


# --- webhooks ------------------------------------------------------------------------------------------------

def test_webhooks_are_verified_with_the_agencys_own_secret(stripe_settings, alpha, bravo, wang):
    alpha_host, bravo_host = Client(HTTP_HOST=host("alpha")), Client(HTTP_HOST=host("bravo"))
    payload = event("payment_intent.succeeded", {"id": "pi_nothing", "object": "payment_intent"})
    assert deliver(alpha_host, payload, HOOK["alpha"]).status_code == 400  # no account connected yet
    connect(alpha)
    connect(bravo)
    online = _paid_deposit(alpha, wang)
    succeeded = event("payment_intent.succeeded", {"id": online.intent_id, "object": "payment_intent"})
    assert deliver(alpha_host, succeeded, HOOK["bravo"]).status_code == 400  # bravo's secret on alpha's host
    assert deliver(alpha_host, succeeded, "whsec_forged").status_code == 400
    body, _signature = signed(succeeded, HOOK["alpha"])
    assert alpha_host.post("/checkout/stripe/webhook/", body, content_type="application/json").status_code == 400
    stale_body, stale = signed(succeeded, HOOK["alpha"], at=int(time.time()) - 3600)
    assert alpha_host.post("/checkout/stripe/webhook/", stale_body, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=stale).status_code == 400
    assert alpha_host.get("/checkout/stripe/webhook/").status_code == 405
    with tenant_context(alpha):
        assert not CheckoutEvent.objects.exists()
    connection.set_schema_to_public()
    # Bravo's own event about alpha's intent, on bravo's host: accepted there, and changes nothing anywhere.
    assert deliver(bravo_host, succeeded, HOOK["bravo"]).status_code == 200
    with tenant_context(bravo):
        assert services.event_process(succeeded["id"]) == "not ours"
        assert not Payment.objects.exists() and not OnlinePayment.objects.exists()
    with tenant_context(alpha):
        assert not CheckoutEvent.objects.exists() and Payment.objects.filter(trip=wang.trip).count() == 1
    connection.set_schema_to_public()
    # The platform domain has no such endpoint.
    assert Client(HTTP_HOST=host(None)).post("/checkout/stripe/webhook/", body, content_type="application/json",
                                             HTTP_STRIPE_SIGNATURE=_signature).status_code == 404


# --- fences --------------------------------------------------------------------------------------------------

def test_another_customer_another_agency_and_no_session_see_nothing(stripe_settings, alpha, bravo, wang):
    connect(alpha)
    online = _paid_deposit(alpha, wang)
    with tenant_context(alpha):
        other = person("张伟", f"zhang.{uuid.uuid4().hex[:8]}@example.cn")
        other.trip = confirmed_trip(other, title="桂林山水")
    connection.set_schema_to_public()
    urls = [f"/portal/trips/{wang.trip.pk}/pay/deposit/", f"/portal/trips/{wang.trip.pk}/pay/balance/",
            f"/portal/trips/{wang.trip.pk}/payments/{online.pk}/",
            f"/portal/trips/{wang.trip.pk}/payments/{online.pk}/?poll=1"]
    stranger = portal_client(alpha, other)
    for url in urls:
        assert stranger.get(url).status_code == 404, url
    assert stranger.post(urls[0], {"online": online.pk, "payment_method": "pm_x"}).status_code == 404
    # Their own trip with wang's payment id: 404 too.
    assert stranger.get(f"/portal/trips/{other.trip.pk}/payments/{online.pk}/").status_code == 404
    with tenant_context(alpha):
        assert not OnlinePayment.objects.filter(trip=other.trip).exists()
    connection.set_schema_to_public()
    nobody = Client(HTTP_HOST=host("alpha"))
    for url in urls:
        response = nobody.get(url)
        assert response.status_code == 302 and "/portal/sign-in/" in response["Location"], url
    wang_client = portal_client(alpha, wang)
    wang_client.defaults["HTTP_HOST"] = host("bravo")  # the same cookie on another agency's host
    for url in urls:
        response = wang_client.get(url)
        assert response.status_code in (302, 404) and (response.status_code == 404
                                                       or "/portal/sign-in/" in response["Location"]), url


def test_the_staff_box_lists_online_payments_and_is_fenced(stripe_settings, alpha, bravo, wang, page_client):
    connect(alpha)
    online = _paid_deposit(alpha, wang)
    box = page_client("alpha", "finance").get(f"/trips/{wang.trip.pk}/online-payments/")
    assert box.status_code == 200 and online.intent_id.encode() in box.content
    assert b'data-test="online-succeeded"' in box.content
    assert b"/online-payments/" in page_client("alpha", "sales").get(f"/trips/{wang.trip.pk}/").content
    assert page_client("bravo", "admin").get(f"/trips/{wang.trip.pk}/online-payments/").status_code == 404
    assert page_client("bravo", "admin", on=host("alpha")).get(f"/trips/{wang.trip.pk}/online-payments/").status_code \
        in (302, 403, 404)


def test_without_an_account_customers_are_told_to_pay_by_transfer(stripe_settings, alpha, wang):
    with tenant_context(alpha):
        row = portal_settings()
        row.contact_phone = "+86 21 5555 0100"
        row.save()
    connection.set_schema_to_public()
    client = portal_client(alpha, wang)
    page = client.get(f"/portal/trips/{wang.trip.pk}/")
    assert b'data-test="pay-by-transfer"' in page.content and b"+86 21 5555 0100" in page.content
    assert b'data-test="pay-deposit"' not in page.content
    response = client.get(f"/portal/trips/{wang.trip.pk}/pay/deposit/")
    assert response.status_code == 302 and response["Location"].endswith(f"/portal/trips/{wang.trip.pk}/")
    with tenant_context(alpha):
        with pytest.raises(ValidationError):
            services.intent_create(customer=wang, trip=wang.trip, kind="deposit")


# --- real deliveries from localstripe --------------------------------------------------------------------------

class _Relay(http.server.BaseHTTPRequestHandler):
    """Python's resolver does not know alpha.localhost: localstripe posts here and this forwards the request,
    byte for byte with its signature, to the app server with the agency's Host header."""

    target: tuple[int, str] = (0, "")

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        port, agency_host = self.target
        request = urllib.request.Request(f"http://127.0.0.1:{port}/checkout/stripe/webhook/", data=body, headers={
            "Host": agency_host, "Content-Type": "application/json",
            "Stripe-Signature": self.headers["Stripe-Signature"]})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_localstripe_delivers_the_payment_to_the_agencys_host_and_a_worker_records_it(
        stripe_settings, stripe_server, app_server, app_worker, committed):
    from tenants.models import Agency

    relay = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Relay)
    _Relay.target = (app_server.port, f"alpha.localhost:{app_server.port}")
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    config = f"{stripe_server}/_config/webhooks/checkout-tests"
    form = urllib.parse.urlencode({"url": f"http://127.0.0.1:{relay.server_port}/", "secret": HOOK["alpha"],
                                   "events[]": "payment_intent.succeeded"}).encode()
    try:
        with urllib.request.urlopen(config, data=form, timeout=5) as response:
            assert response.status == 200
        with committed():
            alpha = Agency.objects.get(slug="alpha")
            connect(alpha)
            with tenant_context(alpha):
                customer = person("韩梅梅", f"han.{uuid.uuid4().hex[:8]}@example.cn")
                customer.trip = confirmed_trip(customer)
                online = services.intent_create(customer=customer, trip=customer.trip, kind="deposit")
                v1 = services.client().v1
                v1.payment_intents.update(online.intent_id, {"payment_method": card()})
                v1.payment_intents.confirm(online.intent_id)  # paid in Stripe; Caravan hears it from the webhook
                deadline = time.monotonic() + 30
                while not CheckoutEvent.objects.filter(object_id=online.intent_id, processed_at__isnull=False).exists():
                    assert time.monotonic() < deadline, ("the delivery was not processed:\n"
                                                         + servers.log_tail(app_server.log, 20)
                                                         + servers.log_tail(app_worker.log, 30))
                    time.sleep(0.3)
                stored = CheckoutEvent.objects.get(object_id=online.intent_id)
                assert (stored.type, stored.outcome, stored.attempts) == ("payment_intent.succeeded", "recorded", 1)
                assert Payment.objects.get(trip=customer.trip).amount == Decimal("900.00")
                online.refresh_from_db()
                assert online.status == "succeeded"
    finally:
        off = urllib.parse.urlencode({"url": f"http://127.0.0.1:{relay.server_port}/", "secret": HOOK["alpha"],
                                      "events[]": "checkout.tests.off"}).encode()
        urllib.request.urlopen(config, data=off, timeout=5).close()
        relay.shutdown()


def test_the_home_page_reads_every_trips_schedule_in_a_few_statements(stripe_settings, alpha, wang):
    """``schedules(trips)`` equals ``schedule(trip)`` trip by trip, in the same few statements for 3 trips as for 1
    (the portal's home page of a booker who sees forty trips made four statements per trip)."""
    from django.test.utils import CaptureQueriesContext

    with tenant_context(alpha):
        trips_ = [wang.trip, confirmed_trip(wang, title="第二次"), confirmed_trip(wang, title="第三次")]
        trips.payment_record(actor=None, trip=trips_[1], kind="deposit", amount="900.00", method="bank",
                             received_on=trips_[1].depart_on)
        assert selectors.schedules(trips_) == {t.pk: selectors.schedule(t) for t in trips_}
        with CaptureQueriesContext(connection) as one:
            selectors.schedules(trips_[:1])
        with CaptureQueriesContext(connection) as three:
            selectors.schedules(trips_)
        assert len(three) == len(one) <= 4
