"""Billing services (R-BILL-1): plans kept in step with Stripe, an agency's subscription, and the
one place the agency's status is derived from Stripe's subscription state.

Stripe is read back rather than trusted from events: ``refresh(agency)`` retrieves the subscription
and its open invoices and derives the status; webhooks only say *which* agency to refresh, so
duplicate and out-of-order deliveries cannot leave a stale state behind.

The calls used work the same against Stripe and against localstripe (the fake Stripe that
`make run` and the tests start): Products with per-seat Plans (localstripe has no Prices), a
subscription of one item with a quantity, ``cancel_at_period_end``, invoices paid with the
customer's default payment method.
"""
import logging
import zoneinfo
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, schema_context

from caravan.lazy import lazy_module
from tenants.models import Agency, AgencyEvent, event_text

from .models import BillingAccount, Interval, Plan, StripeEvent

stripe = lazy_module("stripe")  # about 30 MB: imported by the first Stripe call, not by every web worker

log = logging.getLogger(__name__)
ACTOR = "billing"
# Stripe subscription states, as the platform sees them.
PAYING = ("active", "trialing")
FAILING = ("past_due", "unpaid", "incomplete")
ENDED = ("canceled", "incomplete_expired")


def stripe_client() -> "stripe.StripeClient":
    """The Stripe client, pointed at localstripe when ``STRIPE_API_BASE`` says so."""
    if not settings.STRIPE_SECRET_KEY:
        raise ValidationError(_("Billing is not configured: STRIPE_SECRET_KEY is not set."))
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, base_addresses=base or {}, max_network_retries=2)


def _cents(amount: Decimal) -> int:
    return int((Decimal(amount) * 100).to_integral_value())


# --- plans ----------------------------------------------------------------------------------------

def plan_sync(plan: Plan) -> Plan:
    """Create or update the plan's Stripe Product and its two per-seat Stripe Plans. Idempotent, and
    it heals: objects missing on the Stripe side (a wiped localstripe) are made again."""
    v1 = stripe_client().v1
    product = {"name": plan.name, "active": plan.active}
    try:
        if not plan.stripe_product_id:
            raise stripe.InvalidRequestError("no product yet", param="id")
        v1.products.update(plan.stripe_product_id, product)
    except stripe.InvalidRequestError:
        plan.stripe_product_id = v1.products.create({**product, "metadata": {"caravan_plan": plan.code}}).id
    for interval in Interval.values:
        amount = _cents(plan.price(interval))
        wanted = f"caravan-{plan.code}-{interval}-{amount}"
        try:
            v1.plans.retrieve(wanted)
        except stripe.InvalidRequestError:
            v1.plans.create({"id": wanted, "product": plan.stripe_product_id, "amount": amount,
                             "currency": plan.currency.lower(), "interval": interval,
                             "metadata": {"caravan_plan": plan.code}})
        setattr(plan, f"stripe_plan_{interval}_id", wanted)
    plan.synced_at = timezone.now()
    plan.save()
    return plan


def plan_save(plan: Plan) -> Plan:
    """Save an operator's plan (new or changed) and keep Stripe in step when it is configured."""
    if plan.seat_price_month <= 0 or plan.seat_price_year <= 0:
        raise ValidationError({"seat_price_month" if plan.seat_price_month <= 0 else "seat_price_year":
                               [_("A price above zero.")]})
    plan.currency = plan.currency.lower()
    with transaction.atomic():
        plan.save()
        if settings.STRIPE_SECRET_KEY:
            plan_sync(plan)
    return plan


# --- the agency's account -------------------------------------------------------------------------

def account_for(agency: Agency) -> BillingAccount:
    with schema_context(get_public_schema_name()):
        accounts = BillingAccount.objects.unscoped().select_related("plan", "agency")
        account, _created = accounts.get_or_create(agency=agency)
    return account


def seats_in_use(agency: Agency) -> int:
    """Active staff of the agency (operators are not staff)."""
    from django_tenants.utils import tenant_context

    from accounts.models import User

    with tenant_context(agency):
        return User.objects.filter(is_active=True, is_operator=False).count()


def _customer(account: BillingAccount, v1) -> str:
    if not account.stripe_customer_id:
        agency = account.agency
        account.stripe_customer_id = v1.customers.create({
            "name": agency.name, "metadata": {"agency": agency.slug}}).id
        account.save(update_fields=["stripe_customer_id"])
    return account.stripe_customer_id


def card_setup(agency: Agency) -> str:
    """A SetupIntent's client secret, for the Billing page's card form (Stripe.js confirms it in the
    browser; the card number never reaches Caravan)."""
    account = account_for(agency)
    v1 = stripe_client().v1
    intent = v1.setup_intents.create({"customer": _customer(account, v1), "payment_method_types": ["card"],
                                      "usage": "off_session"})
    return intent.client_secret


def card_error_reasons() -> dict[str, str]:
    """Stripe's card error codes as sentences in the reader's language: the card form shows them in the
    browser (billing.js) and the refusals of :func:`subscribe` and :func:`update_payment_method` use them,
    never Stripe's own English (or localstripe's bare "Bad request")."""
    number, expiry, cvc = (_("The card number is not valid."), _("The expiry date is not valid."),
                           _("The security code (CVC) is not valid."))
    declined = _("The card was declined by its bank.")
    authentication = _("The bank's authentication of the card failed.")
    return {
        "card_declined": declined, "do_not_honor": declined, "generic_decline": declined,
        "insufficient_funds": _("The card has insufficient funds."),
        "expired_card": _("The card has expired."),
        "incorrect_number": number, "invalid_number": number, "incomplete_number": number,
        "invalid_expiry_month": expiry, "invalid_expiry_year": expiry, "incomplete_expiry": expiry,
        "invalid_expiry_year_past": expiry, "invalid_expiry_month_past": expiry,
        "incorrect_cvc": cvc, "invalid_cvc": cvc, "incomplete_cvc": cvc,
        "incorrect_zip": _("The postal code does not match the card."), "incomplete_zip": _("The postal code is missing."),
        "processing_error": _("The card could not be processed; please try again."),
        "authentication_required": authentication, "setup_intent_authentication_failure": authentication,
        "payment_intent_authentication_failure": authentication,
        # Stripe refused the card's data without a code (localstripe: "Bad request").
        "": _("The card details are not valid: check the number, expiry date, security code and postal code."),
    }


def _card_refusal(exc: "stripe.CardError") -> ValidationError:
    """A declined card as a form error: the reason for its code, else Stripe's message for the customer."""
    reasons = card_error_reasons()
    for code in (getattr(exc, "decline_code", None), exc.code):
        if code and code in reasons:
            return ValidationError({"payment_method": [reasons[code]]})
    return ValidationError({"payment_method": [_("The card was declined: %(reason)s")
                                               % {"reason": exc.user_message or exc.code or ""}]})


def stripe_js() -> dict:
    """What the card form loads: Stripe.js (localstripe's stand-in when it is the server) and the
    publishable key."""
    base = settings.STRIPE_API_BASE.rstrip("/")
    return {"url": f"{base}/js.stripe.com/v3/" if base else "https://js.stripe.com/v3/",
            "key": settings.STRIPE_PUBLISHABLE_KEY}


def subscribe(*, agency: Agency, plan: Plan, interval: str, payment_method: str, seats: int | None = None) -> BillingAccount:
    """Subscribe the agency with a card (a PaymentMethod id made in the browser): the first invoice
    is charged now. A declined card raises a field error and leaves the agency as it was."""
    account = account_for(agency)
    if account.stripe_subscription_id and account.stripe_status not in ENDED:
        raise ValidationError({"plan": [_("The agency already has a subscription; change it instead.")]})
    if interval not in Interval.values:
        raise ValidationError({"interval": [_("Choose monthly or yearly billing.")]})
    seats = seats or max(seats_in_use(agency), 1)
    _check_seats(plan, seats, agency)
    if not plan.stripe_plan_id(interval):
        plan_sync(plan)
    v1 = stripe_client().v1
    customer = _customer(account, v1)
    try:
        _make_default(v1, customer, payment_method)
        subscription = v1.subscriptions.create({
            "customer": customer, "items": [{"plan": plan.stripe_plan_id(interval), "quantity": seats}],
            "payment_behavior": "error_if_incomplete", "metadata": {"agency": agency.slug}})
    except stripe.CardError as exc:
        raise _card_refusal(exc) from None
    if subscription.status not in PAYING:  # the first payment failed without an error (localstripe does this)
        v1.subscriptions.cancel(subscription.id)
        raise ValidationError({"payment_method": [_("The card was declined: %(reason)s")
                                                  % {"reason": _("the first payment did not go through")}]})
    with schema_context(get_public_schema_name()):
        account.plan, account.interval = plan, interval
        account.stripe_subscription_id = subscription.id
        account.save(update_fields=["plan", "interval", "stripe_subscription_id"])
    return refresh(agency, subscription=subscription)


def change_subscription(*, agency: Agency, plan: Plan | None = None, interval: str | None = None,
                        seats: int | None = None) -> BillingAccount:
    """Change plan, interval or seat count; Stripe prorates the difference on the next invoice."""
    account = account_for(agency)
    if not account.stripe_subscription_id:
        raise ValidationError({"plan": [_("The agency has no subscription yet.")]})
    plan = plan or account.plan
    interval = interval or account.interval
    seats = seats if seats is not None else account.seats
    _check_seats(plan, seats, agency)
    if not plan.stripe_plan_id(interval):
        plan_sync(plan)
    v1 = stripe_client().v1
    current = v1.subscriptions.retrieve(account.stripe_subscription_id)
    item = current["items"]["data"][0]
    subscription = v1.subscriptions.update(current.id, {
        "items": [{"id": item.id, "plan": plan.stripe_plan_id(interval), "quantity": seats}]})
    with schema_context(get_public_schema_name()):
        account.plan, account.interval = plan, interval
        account.save(update_fields=["plan", "interval"])
    return refresh(agency, subscription=subscription)


def _make_default(v1, customer: str, payment_method: str) -> None:
    """Attach the card to the customer (the browser's card setup may have done so) and make it the
    default for invoices."""
    try:
        card = v1.payment_methods.retrieve(payment_method)
    except stripe.InvalidRequestError:
        raise ValidationError({"payment_method": [_("The card could not be found; enter it again.")]}) from None
    if card.customer and card.customer != customer:  # another customer's card: never borrowed
        raise ValidationError({"payment_method": [_("The card could not be found; enter it again.")]})
    if card.customer != customer:
        v1.payment_methods.attach(payment_method, {"customer": customer})
    v1.customers.update(customer, {"invoice_settings": {"default_payment_method": payment_method}})


def update_payment_method(*, agency: Agency, payment_method: str) -> BillingAccount:
    """Make this card the agency's default and pay whatever is open with it: an agency that is past
    due or suspended for a failed payment is active again as soon as this returns."""
    account = account_for(agency)
    v1 = stripe_client().v1
    customer = _customer(account, v1)
    try:
        _make_default(v1, customer, payment_method)
        for invoice in v1.invoices.list({"customer": customer, "limit": 20}).data:
            if invoice.status == "open":
                v1.invoices.pay(invoice.id)
    except stripe.CardError as exc:
        raise _card_refusal(exc) from None
    return refresh(agency)


def invoices(agency: Agency) -> list[dict]:
    """The agency's invoices, newest first, as Stripe has them (amounts in the currency's units)."""
    account = account_for(agency)
    if not account.stripe_customer_id:
        return []
    rows = []
    for invoice in stripe_client().v1.invoices.list({"customer": account.stripe_customer_id, "limit": 24}).data:
        data = invoice.to_dict()
        rows.append({"id": data["id"], "number": data.get("number") or data["id"], "status": data.get("status"),
                     "created": _when(data.get("created") or data.get("date")),
                     "total": Decimal(data.get("total") or 0) / 100, "currency": (data.get("currency") or "").upper(),
                     "pdf": data.get("invoice_pdf") or data.get("hosted_invoice_url") or ""})
    return rows


def plan_of(agency: Agency) -> Plan | None:
    """The agency's plan: its subscription's, else the one it was onboarded on (trial)."""
    account = account_for(agency)
    if account.plan_id:
        return account.plan
    with schema_context(get_public_schema_name()):
        return Plan.objects.filter(code=agency.plan).first()


def seat_available(agency: Agency, *, field: str = "email") -> None:
    """Before a staff member is added or reactivated: refuse, clearly, when the plan's seat limit is
    reached (the limit holds in the trial too)."""
    plan = plan_of(agency)
    if plan is not None and plan.max_seats is not None and seats_in_use(agency) >= plan.max_seats:
        raise ValidationError({field: [_("The %(plan)s plan allows %(n)s active staff members. Deactivate "
                                         "someone, or ask your admin to choose a larger plan on the Billing page.")
                                       % {"plan": plan.name, "n": plan.max_seats}]})


def seats_follow_staff(agency: Agency) -> BillingAccount | None:
    """Set the subscription's seat count to the active staff (after an invitation, a deactivation or
    a reactivation). Without a subscription there is nothing to change."""
    account = account_for(agency)
    if not account.stripe_subscription_id or account.stripe_status in ENDED:
        return None
    in_use = max(seats_in_use(agency), 1)
    if in_use == account.seats:
        return account
    return change_subscription(agency=agency, seats=in_use)


def usage(agency: Agency) -> dict:
    """What the agency uses of its plan's limits: campaign e-mails sent this month (agency time) and
    customers on record, each with the plan's limit (None: no limit)."""
    from django_tenants.utils import tenant_context

    from crm.campaigns.models import Recipient

    plan = plan_of(agency)
    with tenant_context(agency):
        month_start = timezone.localtime(timezone=zoneinfo.ZoneInfo(agency.time_zone)).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0)
        emails = Recipient.objects.filter(sent_at__gte=month_start).count()
    return {"campaign_emails": emails, "campaign_emails_limit": plan.campaign_emails_month if plan else None,
            "customers": _customers_on_record(agency), "customers_limit": plan.max_customers if plan else None}


def campaign_emails_available(agency: Agency, count: int) -> None:
    """Before a campaign starts: refuse, clearly, when its e-mails would pass the plan's monthly
    allowance (the campaign stays a draft; nothing is sent)."""
    used = usage(agency)
    limit = used["campaign_emails_limit"]
    if limit is not None and used["campaign_emails"] + count > limit:
        raise ValidationError({"segment": [_(
            "This campaign would send %(count)s e-mails, but your plan includes %(limit)s a month and "
            "%(used)s are used. Narrow the segment, wait for next month, or ask your admin for a larger plan.")
            % {"count": count, "limit": limit, "used": used["campaign_emails"]}]})


def _customers_on_record(agency: Agency) -> int:
    """Customers that count against the plan: merged-away records do not."""
    from django_tenants.utils import tenant_context

    from crm.customers.models import Customer

    with tenant_context(agency):
        return Customer.objects.filter(merged_into__isnull=True).count()


def customer_room(agency: Agency, plan: Plan | None = None) -> int | None:
    """How many more customers the agency's plan allows (None: no limit)."""
    plan = plan or plan_of(agency)
    if plan is None or plan.max_customers is None:
        return None
    return max(plan.max_customers - _customers_on_record(agency), 0)


def customers_available(agency: Agency, count: int = 1, *, field: str = "name") -> None:
    """Before staff add customers by hand or through the API: refuse, clearly, past the plan's customer
    limit. Leads arriving from the enquiry form or the website are never refused (see docs/billing.md)."""
    plan = plan_of(agency)
    room = customer_room(agency, plan)
    if room is not None and count > room:
        raise ValidationError({field: [_(
            "Your %(plan)s plan includes %(limit)s customers and they are all used. Merge duplicates, or ask "
            "your admin for a larger plan on the Billing page.") % {"plan": plan.name, "limit": plan.max_customers}]})


def after_staff_change(agency: Agency) -> None:
    """Once the staff change is committed, bring the seat count in step. A Stripe outage does not
    undo the staff change: the hourly ``billing.refresh_agencies`` catches the seats up."""
    def sync():
        try:
            seats_follow_staff(agency)
        except Exception:  # noqa: BLE001 — logged (no personal data), retried by the hourly job
            log.exception("Seat count of agency %s not updated in Stripe; the hourly job retries", agency.slug)

    transaction.on_commit(sync)


def _check_seats(plan: Plan, seats: int, agency: Agency) -> None:
    """Seats follow staff: at least the active staff, at most the plan's limit."""
    in_use = seats_in_use(agency)
    if seats < max(in_use, 1):
        raise ValidationError({"seats": [_("%(n)s staff are active: deactivate staff before lowering the seats.")
                                         % {"n": in_use}]})
    if plan.max_seats is not None and seats > plan.max_seats:
        raise ValidationError({"seats": [_("The %(plan)s plan allows at most %(n)s seats.")
                                         % {"plan": plan.name, "n": plan.max_seats}]})


def cancel_at_period_end(*, agency: Agency, cancel: bool = True) -> BillingAccount:
    """Cancel at the end of the paid period (or take the cancellation back). Nothing is deleted."""
    account = account_for(agency)
    if not account.stripe_subscription_id:
        raise ValidationError({"plan": [_("The agency has no subscription yet.")]})
    subscription = stripe_client().v1.subscriptions.update(account.stripe_subscription_id,
                                                           {"cancel_at_period_end": cancel})
    return refresh(agency, subscription=subscription)


# --- the operators' side --------------------------------------------------------------------------

def monthly_revenue(account: BillingAccount | None) -> Decimal:
    """What the agency pays per month now (a yearly price counts as a twelfth): 0 when not paying."""
    if account is None or account.comped or account.plan is None or account.stripe_status not in PAYING:
        return Decimal("0")
    per_seat = account.plan.seat_price_year / 12 if account.interval == Interval.YEAR else account.plan.seat_price_month
    return (per_seat * account.seats).quantize(Decimal("0.01"))


def overview() -> dict:
    """Every agency with its plan, status, seats and monthly revenue, and the totals (operators)."""
    with schema_context(get_public_schema_name()):
        accounts = {a.agency_id: a for a in BillingAccount.objects.unscoped().select_related("plan")}
        rows = []
        for agency in Agency.objects.agencies().order_by("name"):
            account = accounts.get(agency.pk)
            rows.append({"agency": agency, "account": account, "mrr": monthly_revenue(account),
                         "failing_since": account.past_due_since if account else None})
    return {"rows": rows, "mrr": sum((r["mrr"] for r in rows), Decimal("0")),
            "failing": sum(1 for r in rows if r["failing_since"]),
            "paying": sum(1 for r in rows if r["mrr"] > 0)}


def plan_label(agency: Agency, account: BillingAccount | None = None) -> str:
    """The agency's plan as every page names it — the Billing page, the dashboard, the console: one rule.

    A live subscription: its plan. Free use granted by an operator (comped): the agency's plan, free of
    charge. No subscription during the trial: the agency's plan, on trial. Otherwise the agency's plan."""
    if account is None:
        with schema_context(get_public_schema_name()):
            account = BillingAccount.objects.unscoped().select_related("plan").filter(agency=agency).first()
    if account is not None and account.plan_id and account.stripe_subscription_id and account.stripe_status not in ENDED:
        return account.plan.name
    name = agency.plan_name
    if account is not None and account.comped:
        return _("%(plan)s · free of charge") % {"plan": name}
    if agency.status == Agency.Status.TRIAL:
        return _("%(plan)s · trial") % {"plan": name}
    return name


def set_comped(*, agency: Agency, comped: bool, actor: str, note: str = "") -> BillingAccount:
    """Grant (or withdraw) free use: the agency is active without a subscription."""
    account = account_for(agency)
    with schema_context(get_public_schema_name()):
        BillingAccount.objects.unscoped().filter(pk=account.pk).update(comped=comped)
        AgencyEvent.objects.unscoped().create(agency=agency, kind=AgencyEvent.Kind.SETTINGS_CHANGED, actor=actor,
                                              **event_text("agency_comped" if comped else "agency_comp_withdrawn", note=note or ""))
    return refresh(agency)


def extend_trial(*, agency: Agency, days: int, actor: str) -> Agency:
    """Give the agency ``days`` more trial (from today when the trial is already over)."""
    if not 1 <= days <= 90:
        raise ValidationError({"days": [_("Extend by 1 to 90 days.")]})
    now = timezone.now()
    with schema_context(get_public_schema_name()):
        agency = Agency.objects.get(pk=agency.pk)
        agency.trial_ends_at = max(agency.trial_ends_at or now, now) + timedelta(days=days)
        agency.save(update_fields=["trial_ends_at"])
        AgencyEvent.objects.unscoped().create(agency=agency, kind=AgencyEvent.Kind.SETTINGS_CHANGED, actor=actor,
                                              **event_text("agency_trial_extended", days=days))
    refresh(agency)
    agency.refresh_from_db()
    return agency


def grant_credit(*, agency: Agency, amount, reason: str, actor: str) -> dict:
    """An operator's coupon: ``amount`` off the agency's next invoice (the first one when it has not
    subscribed yet). A negative pending invoice item on the Stripe customer: Stripe and localstripe
    both take pending items into the customer's next invoice, subscription invoices included, and
    the invoice shows the reason. Returns the credit as Stripe keeps it."""
    try:
        amount = Decimal(str(amount).strip())
    except ArithmeticError:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2 or amount > 100000:
        raise ValidationError({"amount": [_("Enter an amount above 0 and at most 100,000, with at most two decimals.")]})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("Say why (it is printed on the invoice).")]})
    account = account_for(agency)
    plan = account.plan or plan_of(agency)
    currency = (plan.currency if plan else "cny").lower()
    v1 = stripe_client().v1
    customer = _customer(account, v1)
    item = v1.invoice_items.create({"customer": customer, "amount": -_cents(amount), "currency": currency,
                                    "description": reason[:200], "metadata": {"agency": agency.slug, "by": actor}})
    with schema_context(get_public_schema_name()):
        AgencyEvent.objects.unscoped().create(agency=agency, kind=AgencyEvent.Kind.SETTINGS_CHANGED, actor=actor,
                                              **event_text("agency_credit", amount=str(amount), currency=currency.upper(), reason=reason[:300]))
    return {"id": item.id, "amount": amount, "currency": currency.upper(), "reason": reason}


def credits_pending(agency: Agency) -> list[dict]:
    """Credits granted and not yet taken into an invoice."""
    account = account_for(agency)
    if not account.stripe_customer_id:
        return []
    items = stripe_client().v1.invoice_items.list({"customer": account.stripe_customer_id, "limit": 50}).data
    return [{"id": item.id, "amount": -Decimal(item.amount) / 100, "currency": (item.currency or "").upper(),
             "reason": item.description} for item in items if item.amount < 0 and not item.invoice]


# --- status ---------------------------------------------------------------------------------------

def derive_status(*, stripe_status: str, comped: bool, trial_ends_at: datetime | None,
                  past_due_since: datetime | None, now: datetime, grace_days: int) -> str:
    """The agency status for a Stripe subscription state: the one rule (R-BILL-1, R-PLAT-2).

    Paying → active; a failing payment → past due, then suspended (read-only) once the grace period
    is over; a cancelled subscription → cancelled (read-only); no subscription → trial while the
    trial lasts, then suspended. Nothing here deletes anything."""
    if comped or stripe_status in PAYING:
        return Agency.Status.ACTIVE
    if stripe_status in FAILING:
        since = past_due_since or now
        return Agency.Status.PAST_DUE if now < since + timedelta(days=grace_days) else Agency.Status.SUSPENDED
    if stripe_status in ENDED:
        return Agency.Status.CANCELLED
    if trial_ends_at and now < trial_ends_at:
        return Agency.Status.TRIAL
    return Agency.Status.SUSPENDED


def _when(timestamp) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=dt_timezone.utc) if timestamp else None


def refresh(agency: Agency, *, subscription=None, now: datetime | None = None) -> BillingAccount:
    """Read the agency's subscription from Stripe (unless just given) and apply the status rule."""
    now = now or timezone.now()
    account = account_for(agency)
    if subscription is None and account.stripe_subscription_id:
        subscription = stripe_client().v1.subscriptions.retrieve(account.stripe_subscription_id)
    with schema_context(get_public_schema_name()), transaction.atomic():
        account = (BillingAccount.objects.unscoped().select_for_update(of=("self",))
                   .select_related("agency", "plan").get(pk=account.pk))
        if subscription is not None:
            data = subscription.to_dict()
            account.stripe_status = data.get("status") or ""
            items = (data.get("items") or {}).get("data") or [{}]
            account.seats = items[0].get("quantity") or data.get("quantity") or 0
            account.current_period_end = _when(data.get("current_period_end") or items[0].get("current_period_end"))
            account.cancel_at_period_end = bool(data.get("cancel_at_period_end"))
        if account.stripe_status in FAILING:
            account.past_due_since = account.past_due_since or now
        else:
            account.past_due_since = None
        account.refreshed_at = now
        account.save()
        agency = account.agency
        status = derive_status(stripe_status=account.stripe_status, comped=account.comped,
                               trial_ends_at=agency.trial_ends_at, past_due_since=account.past_due_since,
                               now=now, grace_days=settings.BILLING_GRACE_DAYS)
        if status != agency.status and not _suspended_by_operator(agency):
            agency.status = status
            agency.save(update_fields=["status"])  # a save: the host cache hears of it (tenants.signals)
            kind = AgencyEvent.Kind.SUSPENDED if status in Agency.READ_ONLY_STATUSES else AgencyEvent.Kind.REACTIVATED
            AgencyEvent.objects.unscoped().create(agency=agency, kind=kind, actor=ACTOR,
                                                  **event_text("agency_stripe_status", **{"from": account.stripe_status or "none", "to": status}))
            if status in (Agency.Status.PAST_DUE, Agency.Status.SUSPENDED) and account.stripe_subscription_id:
                _tell_admins(agency, status)
    return account


def _tell_admins(agency: Agency, status: str) -> None:
    """Dunning: the admins hear of a failed payment, and again when the agency is suspended."""
    from .tasks import notify_admins

    notify_admins.delay(agency.pk, status)  # a PlatformTask: sent once the change commits


def _suspended_by_operator(agency: Agency) -> bool:
    """An operator's suspension stands until an operator lifts it; billing never overrides it (nor a
    scheduled deletion, which only follows an operator's suspension)."""
    if agency.status == Agency.Status.DELETION_SCHEDULED:
        return True
    if agency.status != Agency.Status.SUSPENDED:
        return False
    last = (AgencyEvent.objects.unscoped().filter(agency=agency, kind=AgencyEvent.Kind.SUSPENDED)
            .order_by("-at", "-pk").first())
    return last is not None and last.actor != ACTOR


# --- webhooks -------------------------------------------------------------------------------------

def webhook_receive(*, payload: bytes, signature: str) -> StripeEvent | None:
    """Verify the signature and store the event once. Returns the new event to process, or None
    when this event id was already received (a replay or duplicate). Raises ValueError or
    ``stripe.SignatureVerificationError`` for a payload that is not Stripe's."""
    event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    obj = event.data.object.to_dict()
    customer = obj.get("customer") if obj.get("object") != "customer" else obj.get("id")
    with schema_context(get_public_schema_name()):
        stored, created = StripeEvent.objects.get_or_create(
            event_id=event.id, defaults={"type": event.type, "customer_id": customer or ""})
    return stored if created else None


def event_process(event_id: str) -> str:
    """Apply one stored event: refresh the agency whose Stripe customer it concerns. Idempotent."""
    with schema_context(get_public_schema_name()):
        event = StripeEvent.objects.get(event_id=event_id)
        if event.processed_at:
            return "done before"
        StripeEvent.objects.filter(pk=event.pk).update(attempts=event.attempts + 1)
        account = (BillingAccount.objects.unscoped().select_related("agency").filter(stripe_customer_id=event.customer_id)
                   .first() if event.customer_id else None)
    outcome = "no agency"
    if account is not None:
        refresh(account.agency)
        outcome = "refreshed"
    with schema_context(get_public_schema_name()):
        StripeEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now(), last_error="")
    return outcome
