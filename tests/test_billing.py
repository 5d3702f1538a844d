"""Billing foundations (R-BILL-1) against localstripe, a real fake Stripe server: plans kept in step
with Stripe, subscribe with a card, seats, a failed payment → past due → suspended (read-only) →
paid → active, the status rule, webhooks (signature, exactly once, real deliveries), and the fence
between agencies. The Stripe client is never patched."""
import json
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from decimal import Decimal
from email.header import decode_header, make_header

import pytest
import stripe
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing import services
from billing.models import BillingAccount, Plan, StripeEvent
from tenants.models import Agency, AgencyEvent
from tenants.services import agency_reactivate, agency_suspend

from tests.conftest import host
from tests.servers import STRIPE_WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

GOOD_CARD, DECLINED_CARD = "4242424242424242", "4000000000000341"


def a_plan(code="pro", month="199.00", year="1990.00", max_seats=None) -> Plan:
    return Plan.objects.create(code=f"{code}-{time.monotonic_ns()}", name="Professional", seat_price_month=Decimal(month),
                               seat_price_year=Decimal(year), max_seats=max_seats)


def card(number=GOOD_CARD) -> str:
    return services.stripe_client().v1.payment_methods.create(
        {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}).id


def stripe_subscription(account: BillingAccount):
    return services.stripe_client().v1.subscriptions.retrieve(account.stripe_subscription_id)


def test_plans_are_kept_in_step_with_stripe(stripe_settings):
    plan = services.plan_sync(a_plan())
    v1 = services.stripe_client().v1
    month = v1.plans.retrieve(plan.stripe_plan_month_id)
    year = v1.plans.retrieve(plan.stripe_plan_year_id)
    assert (month.amount, month.interval, month.product) == (19900, "month", plan.stripe_product_id)
    assert (year.amount, year.interval) == (199000, "year")
    first_month_id = plan.stripe_plan_month_id
    assert services.plan_sync(plan).stripe_plan_month_id == first_month_id  # nothing changed: same Stripe plan
    plan.seat_price_month = Decimal("219.00")
    services.plan_sync(plan)
    assert plan.stripe_plan_month_id != first_month_id  # a Stripe plan's amount cannot change: a new one
    assert v1.plans.retrieve(plan.stripe_plan_month_id).amount == 21900
    assert plan.stripe_plan_year_id == year.id


def test_subscribe_with_a_card_makes_the_agency_active(stripe_settings, alpha):
    assert alpha.status == Agency.Status.TRIAL
    account = services.subscribe(agency=alpha, plan=a_plan(), interval="month", payment_method=card(), seats=None)
    alpha.refresh_from_db()
    assert alpha.status == Agency.Status.ACTIVE
    staff = services.seats_in_use(alpha)
    assert (account.stripe_status, account.seats) == ("active", staff)
    assert account.current_period_end and account.current_period_end > timezone.now()
    subscription = stripe_subscription(account)
    assert subscription["items"]["data"][0]["quantity"] == staff
    paid = services.invoices(alpha)
    assert paid and paid[0]["status"] == "paid" and paid[0]["total"] == Decimal("199") * staff
    with pytest.raises(ValidationError) as again:
        services.subscribe(agency=alpha, plan=account.plan, interval="month", payment_method=card())
    assert "plan" in again.value.message_dict


def test_a_declined_card_is_a_field_error_and_changes_nothing(stripe_settings, alpha):
    with pytest.raises(ValidationError) as declined:
        services.subscribe(agency=alpha, plan=a_plan(), interval="month", payment_method=card(DECLINED_CARD), seats=None)
    assert "payment_method" in declined.value.message_dict
    alpha.refresh_from_db()
    assert alpha.status == Agency.Status.TRIAL
    assert not BillingAccount.objects.unscoped().filter(agency=alpha).exclude(stripe_subscription_id="").exists()


def test_seats_change_with_limits(stripe_settings, alpha):
    staff = services.seats_in_use(alpha)
    plan = a_plan(max_seats=staff + 1)
    account = services.subscribe(agency=alpha, plan=plan, interval="month", payment_method=card())
    assert account.seats == staff
    account = services.change_subscription(agency=alpha, seats=staff + 1)  # prorated by Stripe
    assert account.seats == staff + 1 and stripe_subscription(account)["items"]["data"][0]["quantity"] == staff + 1
    with pytest.raises(ValidationError) as too_many:
        services.change_subscription(agency=alpha, seats=staff + 2)
    assert f"at most {staff + 1} seats" in too_many.value.message_dict["seats"][0]
    with pytest.raises(ValidationError) as too_few:
        services.change_subscription(agency=alpha, seats=staff - 1)
    assert "deactivate staff" in too_few.value.message_dict["seats"][0]
    account = services.change_subscription(agency=alpha, interval="year")
    assert stripe_subscription(account)["items"]["data"][0]["plan"]["id"] == plan.stripe_plan_year_id
    account = services.cancel_at_period_end(agency=alpha)
    assert account.cancel_at_period_end and stripe_subscription(account).cancel_at_period_end
    alpha.refresh_from_db()
    assert alpha.status == Agency.Status.ACTIVE  # paid until the period ends


def test_failed_payment_past_due_then_suspended_then_paid_active(stripe_settings, alpha):
    account = services.subscribe(agency=alpha, plan=a_plan(), interval="month", payment_method=card(), seats=None)
    v1 = services.stripe_client().v1
    declined = card(DECLINED_CARD)
    v1.payment_methods.attach(declined, {"customer": account.stripe_customer_id})
    v1.customers.update(account.stripe_customer_id, {"invoice_settings": {"default_payment_method": declined}})
    account = services.change_subscription(agency=alpha, interval="year")  # invoiced now, and declined
    alpha.refresh_from_db()
    assert (account.stripe_status, alpha.status) == ("past_due", Agency.Status.PAST_DUE)
    assert account.past_due_since is not None
    later = account.past_due_since + timedelta(days=8)  # after the 7-day grace period
    services.refresh(alpha, now=later)
    alpha.refresh_from_db()
    assert alpha.status == Agency.Status.SUSPENDED and alpha.is_read_only
    assert AgencyEvent.objects.unscoped().filter(agency=alpha, kind=AgencyEvent.Kind.SUSPENDED, actor="billing").exists()
    account = services.update_payment_method(agency=alpha, payment_method=card())
    alpha.refresh_from_db()
    assert (account.stripe_status, alpha.status, account.past_due_since) == ("active", Agency.Status.ACTIVE, None)
    assert all(row["status"] == "paid" for row in services.invoices(alpha))


def test_an_operators_suspension_is_never_lifted_by_billing(stripe_settings, alpha):
    services.subscribe(agency=alpha, plan=a_plan(), interval="month", payment_method=card(), seats=None)
    agency_suspend(agency=alpha, actor="operator@caravan.test", note="abuse")
    services.refresh(alpha)
    alpha.refresh_from_db()
    assert alpha.status == Agency.Status.SUSPENDED
    agency_reactivate(agency=alpha, actor="operator@caravan.test")
    services.refresh(alpha)
    alpha.refresh_from_db()
    assert alpha.status == Agency.Status.ACTIVE


@pytest.mark.parametrize("stripe_status, comped, trial_days, failing_days, expected", [
    ("active", False, None, None, "active"),
    ("trialing", False, None, None, "active"),
    ("past_due", False, None, 3, "past_due"),
    ("past_due", False, None, 7, "suspended"),  # the grace period is 7 days: its end suspends
    ("unpaid", False, None, 30, "suspended"),
    ("canceled", False, None, None, "cancelled"),
    ("", False, 5, None, "trial"),
    ("", False, -1, None, "suspended"),  # trial over without a subscription
    ("", True, -1, None, "active"),  # comped by an operator
    ("past_due", True, None, 30, "active"),
])
def test_the_status_rule(stripe_status, comped, trial_days, failing_days, expected):
    now = timezone.now()
    assert services.derive_status(
        stripe_status=stripe_status, comped=comped, grace_days=7, now=now,
        trial_ends_at=now + timedelta(days=trial_days) if trial_days is not None else None,
        past_due_since=now - timedelta(days=failing_days) if failing_days is not None else None) == expected


def _signed(payload: dict, secret=STRIPE_WEBHOOK_SECRET, at=None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    at = at or int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{at}.{body.decode()}", secret)
    return body, f"t={at},v1={signature}"


def _event(event_id, customer) -> dict:
    return {"id": event_id, "object": "event", "type": "invoice.payment_failed", "created": int(time.time()),
            "data": {"object": {"id": "in_x", "object": "invoice", "customer": customer}}}


def test_webhooks_refuse_bad_signatures_and_store_each_event_once(stripe_settings, client):
    client.defaults["HTTP_HOST"] = host(None)  # the platform domain
    body, signature = _signed(_event("evt_once", "cus_nobody"))
    url = "/billing/stripe/webhook/"
    forged_body, forged = _signed(_event("evt_forged", "cus_nobody"), secret="whsec_someone_else")
    assert client.post(url, forged_body, content_type="application/json", HTTP_STRIPE_SIGNATURE=forged).status_code == 400
    stale_body, stale = _signed(_event("evt_stale", "cus_nobody"), at=int(time.time()) - 3600)
    assert client.post(url, stale_body, content_type="application/json", HTTP_STRIPE_SIGNATURE=stale).status_code == 400
    assert client.post(url, body, content_type="application/json", HTTP_STRIPE_SIGNATURE="").status_code == 400
    for _ in range(3):  # a replay of a good delivery is accepted and ignored
        assert client.post(url, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature).status_code == 200
    assert list(StripeEvent.objects.values_list("event_id", flat=True)) == ["evt_once"]
    assert services.event_process("evt_once") == "no agency"
    assert services.event_process("evt_once") == "done before"


def test_an_event_refreshes_only_the_agency_it_names(stripe_settings, alpha, bravo):
    account = services.subscribe(agency=alpha, plan=a_plan(), interval="month", payment_method=card(), seats=None)
    bravo_before = (bravo.status, list(AgencyEvent.objects.unscoped().filter(agency=bravo).values_list("pk", flat=True)))
    BillingAccount.objects.unscoped().filter(pk=account.pk).update(stripe_status="", refreshed_at=None)  # stale on purpose
    body, signature = _signed(_event("evt_alpha", account.stripe_customer_id))
    services.webhook_receive(payload=body, signature=signature)
    assert services.event_process("evt_alpha") == "refreshed"
    account.refresh_from_db()
    assert account.stripe_status == "active" and account.refreshed_at is not None  # re-read from Stripe
    bravo.refresh_from_db()
    assert (bravo.status, list(AgencyEvent.objects.unscoped().filter(agency=bravo).values_list("pk", flat=True))) \
        == bravo_before
    assert not BillingAccount.objects.unscoped().filter(agency=bravo).exclude(stripe_customer_id="").exists()
    with tenant_context(bravo):  # in an agency's context the manager shows its own account only
        assert {a.agency_id for a in BillingAccount.objects.all()} <= {bravo.pk}
    with tenant_context(alpha):
        assert [a.pk for a in BillingAccount.objects.all()] == [account.pk]


def test_localstripe_delivers_signed_webhooks_to_the_app_server(stripe_settings, app_server, stripe_server, committed):
    """Real deliveries: localstripe posts each event, signed, to the running app; each is stored once."""
    target = f"http://localhost:{app_server.port}/billing/stripe/webhook/"
    form = urllib.parse.urlencode({"url": target, "secret": STRIPE_WEBHOOK_SECRET}).encode()
    with urllib.request.urlopen(f"{stripe_server}/_config/webhooks/caravan-tests", data=form, timeout=5) as response:
        assert response.status == 200
    customer = services.stripe_client().v1.customers.create({"name": "Webhook test", "email": "hook@caravan.test"})
    deadline = time.monotonic() + 15
    with committed():
        while not StripeEvent.objects.filter(customer_id=customer.id, type="customer.created").exists():
            assert time.monotonic() < deadline, "no delivery reached the app server"
            time.sleep(0.2)
        assert StripeEvent.objects.filter(customer_id=customer.id).count() == 1
        StripeEvent.objects.filter(customer_id=customer.id).delete()


# --- the Billing page -----------------------------------------------------------------------------

def test_billing_page_subscribe_change_and_field_errors(stripe_settings, alpha, page_client):
    plan = services.plan_sync(a_plan())
    admin = page_client("alpha", "admin")
    page = admin.get("/settings/billing/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-test="subscribe-form"' in body and plan.name in body and "/js.stripe.com/v3/" in body
    assert 'data-test="usage"' in body
    assert page_client("alpha", "sales").get("/settings/billing/").status_code == 403
    assert page_client("alpha", "manager").post("/settings/billing/", {"action": "cancel"}).status_code == 403
    missing = admin.post("/settings/billing/", {"action": "subscribe", "plan": plan.pk, "interval": "month",
                                                "payment_method": "pm_does_not_exist"})
    assert missing.status_code == 400 and "could not be found" in missing.content.decode()
    done = admin.post("/settings/billing/", {"action": "subscribe", "plan": plan.pk, "interval": "month",
                                             "payment_method": card()})
    assert done.status_code == 302
    alpha.refresh_from_db()
    assert alpha.status == Agency.Status.ACTIVE
    page = admin.get("/settings/billing/").content.decode()
    assert 'data-test="change-form"' in page and 'data-test="invoices"' in page
    yearly = admin.post("/settings/billing/", {"action": "change", "plan": plan.pk, "interval": "year"})
    assert yearly.status_code == 302 and services.account_for(alpha).interval == "year"
    bad = admin.post("/settings/billing/", {"action": "change", "plan": plan.pk, "interval": "weekly"})
    assert bad.status_code == 400 and 'data-field="interval"' in bad.content.decode()


def test_seats_follow_staff_and_the_plans_limit_blocks_invitations(stripe_settings, alpha,
                                                                   django_capture_on_commit_callbacks):
    from accounts import services as staff_services
    from accounts.models import User

    staff = services.seats_in_use(alpha)
    plan = a_plan(max_seats=staff + 1)
    account = services.subscribe(agency=alpha, plan=plan, interval="month", payment_method=card())
    with tenant_context(alpha):
        admin = User.objects.get(email="admin@alpha.test")
        with django_capture_on_commit_callbacks(execute=True):
            newcomer = staff_services.staff_invite(actor=admin, email="new@alpha.test", full_name="新同事", role="sales")
        assert stripe_subscription(account)["items"]["data"][0]["quantity"] == staff + 1
        with pytest.raises(ValidationError) as full:
            staff_services.staff_invite(actor=admin, email="one-more@alpha.test", full_name="多一位", role="sales")
        assert "allows" in full.value.message_dict["email"][0]
        with django_capture_on_commit_callbacks(execute=True):
            staff_services.staff_update(actor=admin, user=newcomer, is_active=False)
        assert stripe_subscription(account)["items"]["data"][0]["quantity"] == staff
        assert services.account_for(alpha).seats == staff
        staff_services.staff_invite(actor=admin, email="third@alpha.test", full_name="第三位", role="sales")  # the freed seat
        with pytest.raises(ValidationError) as reactivate:
            staff_services.staff_update(actor=admin, user=newcomer, is_active=True)
        assert "allows" in reactivate.value.message_dict["is_active"][0]


def test_a_suspended_agency_can_still_pay_and_nothing_else(stripe_settings, alpha, page_client):
    account = services.subscribe(agency=alpha, plan=a_plan(), interval="month", payment_method=card())
    v1 = services.stripe_client().v1
    declined = card(DECLINED_CARD)
    v1.payment_methods.attach(declined, {"customer": account.stripe_customer_id})
    v1.customers.update(account.stripe_customer_id, {"invoice_settings": {"default_payment_method": declined}})
    account = services.change_subscription(agency=alpha, interval="year")
    services.refresh(alpha, now=account.past_due_since + timedelta(days=8))
    alpha.refresh_from_db()
    assert alpha.status == Agency.Status.SUSPENDED
    admin = page_client("alpha", "admin")
    assert admin.post("/customers/new/", {"name": "王芳"}).status_code == 403  # read-only
    assert 'data-test="past-due"' in admin.get("/settings/billing/").content.decode()
    paid = admin.post("/settings/billing/", {"action": "card", "payment_method": card()})
    assert paid.status_code == 302
    alpha.refresh_from_db()
    assert alpha.status == Agency.Status.ACTIVE


def test_another_agencys_card_cannot_be_used(stripe_settings, alpha, bravo, page_client):
    alpha_account = services.subscribe(agency=alpha, plan=a_plan(), interval="month", payment_method=card())
    alpha_card = services.stripe_client().v1.customers.retrieve(
        alpha_account.stripe_customer_id).invoice_settings.default_payment_method
    refused = page_client("bravo", "admin").post("/settings/billing/", {
        "action": "subscribe", "plan": alpha_account.plan_id, "interval": "month", "payment_method": alpha_card})
    assert refused.status_code == 400 and "could not be found" in refused.content.decode()
    bravo.refresh_from_db()
    assert bravo.status == Agency.Status.TRIAL
    assert "已付至" not in page_client("bravo", "admin").get("/settings/billing/").content.decode()
    assert alpha_account.stripe_customer_id not in page_client("bravo", "admin").get("/settings/billing/").content.decode()


# --- operators ------------------------------------------------------------------------------------

def test_operators_see_revenue_define_plans_comp_and_extend_trials(stripe_settings, alpha, bravo, operator_client,
                                                                   page_client):
    plan = a_plan(month="100.00", year="960.00")
    services.subscribe(agency=alpha, plan=plan, interval="year", payment_method=card())
    staff = services.seats_in_use(alpha)
    page = operator_client.get("/billing/")
    assert page.status_code == 200
    expected = (Decimal("960.00") / 12 * staff).quantize(Decimal("0.01"))
    assert services.overview()["mrr"] == expected
    assert f'data-test="total-mrr">{expected}<' in page.content.decode()
    created = operator_client.post("/billing/plans/new/", {
        "code": f"team-{time.monotonic_ns()}", "name": "Team", "currency": "CNY", "seat_price_month": "120.00",
        "seat_price_year": "1200.00", "max_seats": "10", "active": "on"})
    assert created.status_code == 302
    team = Plan.objects.get(name="Team")
    assert team.currency == "cny" and team.synced_at is not None
    assert services.stripe_client().v1.plans.retrieve(team.stripe_plan_month_id).amount == 12000
    bad = operator_client.post("/billing/plans/new/", {"code": "free", "name": "Free", "currency": "CNY",
                                                       "seat_price_month": "0", "seat_price_year": "0"})
    assert bad.status_code == 400 and not Plan.objects.filter(code="free").exists()
    # Bravo's trial is over without a subscription: suspended, then an operator extends it or comps it.
    Agency.objects.filter(pk=bravo.pk).update(trial_ends_at=timezone.now() - timedelta(days=1))
    bravo.refresh_from_db()
    services.refresh(bravo)
    bravo.refresh_from_db()
    assert bravo.status == Agency.Status.SUSPENDED
    assert operator_client.post(f"/agencies/{bravo.slug}/", {"action": "extend_trial", "days": "14"}).status_code == 302
    bravo.refresh_from_db()
    assert bravo.status == Agency.Status.TRIAL and bravo.trial_ends_at > timezone.now() + timedelta(days=13)
    assert operator_client.post(f"/agencies/{bravo.slug}/", {"action": "extend_trial", "days": "400"}).status_code == 302
    bravo.refresh_from_db()
    assert bravo.trial_ends_at < timezone.now() + timedelta(days=15)  # refused: 1 to 90 days
    assert operator_client.post(f"/agencies/{bravo.slug}/", {"action": "comp"}).status_code == 302
    Agency.objects.filter(pk=bravo.pk).update(trial_ends_at=timezone.now() - timedelta(days=1))
    services.refresh(bravo)
    bravo.refresh_from_db()
    assert bravo.status == Agency.Status.ACTIVE and services.account_for(bravo).comped
    detail = operator_client.get(f"/agencies/{alpha.slug}/").content.decode()
    assert 'data-test="agency-billing"' in detail and str(expected) in detail
    # Agency staff never reach the operators' billing pages, on any host.
    assert page_client("alpha", "admin").get("/billing/").status_code == 404
    assert page_client("alpha", "admin", on="localhost").get("/billing/").status_code in (302, 403)


def test_admins_are_told_of_a_failed_payment_and_of_the_suspension(stripe_settings, alpha, mailbox,
                                                                    django_capture_on_commit_callbacks):
    from billing.tasks import notify_admins

    account = services.subscribe(agency=alpha, plan=a_plan(), interval="month", payment_method=card())
    v1 = services.stripe_client().v1
    declined = card(DECLINED_CARD)
    v1.payment_methods.attach(declined, {"customer": account.stripe_customer_id})
    v1.customers.update(account.stripe_customer_id, {"invoice_settings": {"default_payment_method": declined}})
    with django_capture_on_commit_callbacks(execute=False) as queued:
        account = services.change_subscription(agency=alpha, interval="year")
    def notices(callbacks):
        return [c for c in callbacks if getattr(c, "task_name", "") == "billing.notify_admins"]

    assert len(notices(queued)) == 1  # one notice for the move to past due
    with django_capture_on_commit_callbacks(execute=False) as again:
        services.refresh(alpha)  # still past due: no second notice
    assert notices(again) == []
    assert notify_admins.run(alpha.pk, "past_due") == 2  # alpha's two admins, no one else
    assert sorted(m["To"] for m in mailbox) == ["admin@alpha.test", "first@alpha.test"]
    def subject(message):
        return str(make_header(decode_header(message["Subject"])))

    def body(message):
        return message.get_payload(decode=True).decode()

    assert subject(mailbox[-1]) == "Payment failed for Alpha Travel 阿尔法旅行"
    assert "http://alpha.localhost" in body(mailbox[-1]) and "/settings/billing/" in body(mailbox[-1])
    assert notify_admins.run(alpha.pk, "suspended") == 2
    assert "suspended" in subject(mailbox[-1]) and "Nothing has been deleted" in body(mailbox[-1])
    assert all("bravo" not in m["To"] for m in mailbox)


def test_onboarding_offers_the_operators_plans(operator_client):
    from tenants.services import agency_onboard

    before = operator_client.get("/agencies/new/").content.decode()
    assert 'value="professional"' in before  # no plan defined yet: the built-in codes
    Plan.objects.create(code="team", name="Team 团队版", seat_price_month=Decimal("120"), seat_price_year=Decimal("1200"))
    form = operator_client.get("/agencies/new/").content.decode()
    assert 'value="team"' in form and 'value="professional"' not in form
    with pytest.raises(ValidationError) as unknown:
        agency_onboard(name="Echo", slug="echo", plan="professional", admin_email="a@echo.test")
    assert "plan" in unknown.value.message_dict
    agency = agency_onboard(name="Echo", slug="echo", plan="team", admin_email="a@echo.test").agency
    assert agency.plan_name == "Team 团队版"
    assert "Team 团队版" in operator_client.get("/").content.decode()


def test_self_service_sign_up_starts_a_trial_without_a_card(client):
    from django.core.cache import cache
    from django_tenants.utils import schema_exists

    from accounts.models import User

    Plan.objects.create(code="solo", name="Solo", seat_price_month=Decimal("60"), seat_price_year=Decimal("600"))
    Plan.objects.create(code="crew", name="Crew", seat_price_month=Decimal("90"), seat_price_year=Decimal("900"))
    client.defaults.update(HTTP_HOST=host(None), REMOTE_ADDR="198.51.100.7", HTTP_ACCEPT_LANGUAGE="en")
    cache.delete("signup:ip:198.51.100.7")
    assert client.get("/signup/").status_code == 200
    fields = {"name": "福州海峡旅行社", "slug": "haixia", "admin_name": "林小姐", "admin_email": "lin@haixia.example",
              "language": "zh-hans", "website": ""}
    bad_slug = client.post("/signup/", {**fields, "slug": "Has Spaces"})
    assert bad_slug.status_code == 400 and 'data-field="slug"' in bad_slug.content.decode()
    bad_email = client.post("/signup/", {**fields, "admin_email": "nope"})
    assert bad_email.status_code == 400 and 'data-field="admin_email"' in bad_email.content.decode()
    assert not Agency.objects.filter(slug__in=["haixia", "has-spaces"]).exists()
    done = client.post("/signup/", fields)
    assert done.status_code == 200 and 'data-test="signed-up"' in done.content.decode()
    agency = Agency.objects.get(slug="haixia")
    assert (agency.status, agency.plan, agency.language) == (Agency.Status.TRIAL, "solo", "zh-hans")  # the cheapest
    assert agency.trial_ends_at > timezone.now() + timedelta(days=13) and schema_exists(agency.schema_name)
    with tenant_context(agency):
        admin = User.objects.get()
        assert (admin.email, admin.role, admin.has_usable_password()) == ("lin@haixia.example", "admin", False)
    taken = client.post("/signup/", {**fields, "admin_email": "other@haixia.example"})
    assert taken.status_code == 400 and "already exists" in taken.content.decode()
    robot = client.post("/signup/", {**fields, "slug": "robot", "website": "http://spam.example"})
    assert robot.status_code == 200 and not Agency.objects.filter(slug="robot").exists()
    cache.set("signup:ip:198.51.100.7", 5, 60)
    limited = client.post("/signup/", {**fields, "slug": "later"})
    assert limited.status_code == 429 and not Agency.objects.filter(slug="later").exists()
    cache.delete("signup:ip:198.51.100.7")
