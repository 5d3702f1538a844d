"""Online payments with the agency's own Stripe account (issue 21).

Every Stripe call uses the **agency's** secret key, given per call through a ``stripe.StripeClient``
(never the global ``stripe.api_key``, which is the platform's billing key); ``STRIPE_API_BASE`` points
it at localstripe in development and tests, as billing does. Stripe is read back rather than trusted:
a webhook or the return page only says *which* intent to look at; :func:`payment_succeeded` retrieves it
and records it once, whatever the order or repetition of deliveries. Keys never reach a log.
"""
import contextvars
import logging
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap
from caravan.formatting import money as money_display
from caravan.lazy import lazy_module
from caravan.texts import Text
from crm.customers import crypto
from crm.customers.models import Contact, Customer
from crm.customers.services import timeline_add
from crm.trips.models import Payment, Trip
from crm.trips.services import payment_record, refundable

from . import selectors
from .models import RECORDED_AS, CheckoutEvent, Method, OnlinePayment, OnlineRefund, StripeAccount

stripe = lazy_module("stripe")  # about 30 MB: imported by the first Stripe call, not by every web worker

log = logging.getLogger(__name__)

# Currencies Stripe counts in whole units (no cents).
ZERO_DECIMAL = {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF",
                "XOF", "XPF"}
# Set while a refund made in Stripe is recorded, so the refund hook does not refund it at Stripe again.
_from_stripe = contextvars.ContextVar("checkout_refund_from_stripe", default=False)
REUSABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


class NotConnected(ValueError):
    """The agency has no Stripe account connected."""


def _client(secret_key: str) -> "stripe.StripeClient":
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else {}
    return stripe.StripeClient(secret_key, base_addresses=base, max_network_retries=2)


def client() -> "stripe.StripeClient":
    """A Stripe client with the agency's own secret key."""
    account = selectors.account()
    if account is None:
        raise NotConnected("no Stripe account")
    return _client(crypto.decrypt(account.secret_key_encrypted))


def to_cents(amount: Decimal, currency: str) -> int:
    factor = 1 if currency.upper() in ZERO_DECIMAL else 100
    return int((Decimal(amount) * factor).to_integral_value())


def from_cents(cents: int, currency: str) -> Decimal:
    factor = 1 if currency.upper() in ZERO_DECIMAL else 100
    return (Decimal(cents) / factor).quantize(Decimal("0.01"))


def _plain(stripe_object) -> dict:
    return stripe_object.to_dict() if stripe_object is not None else {}


def _hint(secret_key: str) -> str:
    return f"{secret_key[:8]}…{secret_key[-4:]}"


# --- the account ------------------------------------------------------------------------------------

def account_connect(*, actor: User, publishable_key: str, secret_key: str, webhook_secret: str,
                    methods: list[str]) -> StripeAccount:
    """Connect (or change) the agency's Stripe account. Blank secrets keep the stored ones. The secret key
    is checked with one call to Stripe (the account's balance) before anything is stored."""
    if not actor.can(Cap.SETTINGS_MANAGE):
        raise PermissionDenied
    stored = selectors.account()
    publishable_key, secret_key, webhook_secret = (v.strip() for v in (publishable_key, secret_key, webhook_secret))
    errors = {}
    if not publishable_key.startswith("pk_"):
        errors["publishable_key"] = [_("A publishable key starts with pk_test_ or pk_live_.")]
    if not secret_key and stored is None or secret_key and not secret_key.startswith(("sk_", "rk_")):
        errors["secret_key"] = [_("A secret key starts with sk_ (or a restricted key with rk_).")]
    if not webhook_secret and stored is None or webhook_secret and not webhook_secret.startswith("whsec_"):
        errors["webhook_secret"] = [_("A webhook signing secret starts with whsec_.")]
    methods = [m for m in Method.values if m in set(methods or [])]
    if not methods:
        errors["methods"] = [_("Choose at least one way to pay.")]
    if errors:
        raise ValidationError(errors)
    secret_key = secret_key or crypto.decrypt(stored.secret_key_encrypted)
    live = publishable_key.startswith("pk_live_")
    if live != ("_live_" in secret_key):
        raise ValidationError({"secret_key": [_("The two keys are of different modes: both test or both live.")]})
    try:
        _client(secret_key).v1.balance.retrieve()
    except stripe.AuthenticationError:
        raise ValidationError({"secret_key": [_("Stripe refused this secret key.")]})
    except stripe.StripeError:
        raise ValidationError({"secret_key": [_("Stripe could not be reached to check the key; please try again.")]})
    fields = {"publishable_key": publishable_key, "secret_key_encrypted": crypto.encrypt(secret_key),
              "key_hint": _hint(secret_key), "methods": methods, "connected_at": timezone.now(), "connected_by": actor,
              "checked_at": timezone.now(), "check_result": "ok"}
    if webhook_secret:
        fields["webhook_secret_encrypted"] = crypto.encrypt(webhook_secret)
    account, _created = StripeAccount.objects.update_or_create(pk=1, defaults=fields)
    log.info("Stripe account connected (%s mode)", "live" if live else "test")
    return account


def account_disconnect(*, actor: User) -> None:
    """Forget the agency's keys: customers see the bank-transfer line again. Payments already made stay."""
    if not actor.can(Cap.SETTINGS_MANAGE):
        raise PermissionDenied
    StripeAccount.objects.filter(pk=1).delete()
    log.info("Stripe account disconnected")


# --- paying ------------------------------------------------------------------------------------------

def _fresh(online: OnlinePayment) -> OnlinePayment | None:
    """An intent made before for the same amount, still waiting to be paid: reused, not made again."""
    try:
        intent = client().v1.payment_intents.retrieve(online.intent_id)
    except stripe.StripeError:
        return None
    return online if intent.status in REUSABLE and intent.amount == to_cents(online.amount, online.currency) else None


@transaction.atomic
def intent_create(*, customer: Customer, trip: Trip, kind: str) -> OnlinePayment:
    """The PaymentIntent for what the schedule says is due now of ``kind``. The amount comes from the
    schedule, never from the browser; an open intent for the same amount is reused."""
    account = selectors.account()
    if account is None:
        raise ValidationError({"kind": [_("This agency does not take payments online.")]})
    trip = Trip.objects.select_for_update().get(pk=trip.pk)
    line = selectors.line_of(trip, kind)
    if line is None or not line.payable or line.to_pay <= 0:
        raise ValidationError({"kind": [_("Nothing of this is due to be paid now.")]})
    waiting = (OnlinePayment.objects.filter(trip=trip, kind=kind, amount=line.to_pay, currency=trip.currency,
                                            status=OnlinePayment.Status.CREATED)
               .order_by("-created_at").first())
    if waiting is not None and _fresh(waiting):
        return waiting
    try:
        intent = client().v1.payment_intents.create({
            "amount": to_cents(line.to_pay, trip.currency), "currency": trip.currency.lower(),
            "payment_method_types": list(account.methods),
            "metadata": {"schema": connection.schema_name, "trip": str(trip.pk), "kind": kind}})
    except stripe.StripeError:
        log.warning("Stripe refused a payment intent", exc_info=True)
        raise ValidationError({"kind": [_("The payment could not be started; please try again later.")]})
    return OnlinePayment.objects.create(trip=trip, kind=kind, amount=line.to_pay, currency=trip.currency,
                                        intent_id=intent.id, customer=customer)


def setup_secret() -> str:
    """A SetupIntent's client secret: the pay page's card form turns the card into a PaymentMethod in the
    browser with it (``stripe.confirmCardSetup``; the card number never reaches Caravan)."""
    return client().v1.setup_intents.create({"payment_method_types": ["card"], "usage": "on_session"}).client_secret


def intent_pay(*, online: OnlinePayment, payment_method: str) -> str:
    """Confirm the intent with the PaymentMethod made in the browser (server-side confirmation). Returns
    Stripe's status; "succeeded" is recorded at once; "requires_action": the browser completes 3-D Secure."""
    if not (payment_method or "").startswith(("pm_", "card_", "src_")):
        raise ValidationError({"payment_method": [_("The card details did not reach Stripe; please try again.")]})
    v1 = client().v1
    try:
        v1.payment_intents.update(online.intent_id, {"payment_method": payment_method})
        intent = v1.payment_intents.confirm(online.intent_id)
    except stripe.CardError as exc:
        # A declined intent is given up (cancelled at Stripe); the next try gets a new one.
        OnlinePayment.objects.filter(pk=online.pk, status=OnlinePayment.Status.CREATED).update(
            status=OnlinePayment.Status.FAILED)
        try:
            v1.payment_intents.cancel(online.intent_id)
        except stripe.StripeError:
            pass
        raise ValidationError({"payment_method": [_("The card was declined: %(reason)s")
                                                  % {"reason": exc.user_message or exc.code or ""}]})
    except stripe.StripeError:
        log.warning("Stripe refused to confirm a payment intent", exc_info=True)
        raise ValidationError({"payment_method": [_("The payment could not be made; please try again.")]})
    if intent.status == "succeeded":
        payment_succeeded(online.intent_id)
    return intent.status


def _method_of(v1, intent) -> str:
    try:
        method_id = _plain(intent).get("payment_method")
        kind = v1.payment_methods.retrieve(method_id).type if method_id else Method.CARD
    except stripe.StripeError:
        kind = Method.CARD
    return RECORDED_AS.get(kind, Payment.Method.CARD)


def payment_succeeded(intent_id: str) -> str:
    """The one path from Stripe to the trip: retrieve the intent with the agency's key and, when Stripe
    says it succeeded, record it once through ``crm.trips.services.payment_record`` (the deposit's stage
    move and same-day task included). Repeated or out-of-order calls change nothing. An intent this
    agency did not make (another agency's event on the same Stripe) is ignored."""
    online = OnlinePayment.objects.filter(intent_id=intent_id).first()
    if online is None or selectors.account() is None:
        return "not ours"
    if online.payment_id:
        return "recorded before"
    v1 = client().v1
    intent = v1.payment_intents.retrieve(intent_id)
    if _plain(intent).get("metadata", {}).get("schema") != connection.schema_name:
        return "not ours"
    if intent.status != "succeeded":
        return "not paid"
    method = _method_of(v1, intent)
    with transaction.atomic():
        trip = Trip.objects.select_for_update().get(pk=online.trip_id)  # locks in one order: trip, then payment
        online = (OnlinePayment.objects.select_for_update(of=("self",)).select_related("trip", "customer")
                  .get(pk=online.pk))
        if online.payment_id or online.status == OnlinePayment.Status.REFUNDED:
            return "recorded before"
        amount = from_cents(intent.amount, online.currency)
        line = selectors.line_of(trip, online.kind)
        try:
            if line is None or line.paid:
                raise ValidationError({"kind": [_("This is paid already.")]})
            with transaction.atomic():
                payment = payment_record(actor=None, trip=online.trip, kind=online.kind, amount=amount, method=method,
                                         received_on=timezone.localdate(), reference=intent_id)
        except ValidationError:
            # Paid twice at once (two tabs), or the trip changed: the money goes back at once.
            v1.refunds.create({"payment_intent": intent_id}, {"idempotency_key": f"overpaid-{intent_id}"})
            online.status = OnlinePayment.Status.REFUNDED
            online.save(update_fields=["status"])
            log.warning("An online payment could not be recorded on its trip and was refunded at Stripe")
            return "refunded"
        online.payment, online.status, online.paid_at = payment, OnlinePayment.Status.SUCCEEDED, timezone.now()
        online.save(update_fields=["payment", "status", "paid_at"])
        payer = online.customer or online.trip.customer
        timeline_add(actor=None, customer=online.trip.customer, channel=Contact.Channel.PORTAL,
                     direction=Contact.Direction.INBOUND,
                     summary=Text("portal_paid", kind=online.kind, amount=money_display(amount, online.currency),
                                  name=payer.name, trip=online.trip.title, intent=intent_id))
    return "recorded"


def payment_failed(intent_id: str) -> str:
    updated = OnlinePayment.objects.filter(intent_id=intent_id, status=OnlinePayment.Status.CREATED).update(
        status=OnlinePayment.Status.FAILED)
    return "failed" if updated else "nothing to do"


# --- refunds -------------------------------------------------------------------------------------------

def refund_at_stripe(*, actor: User | None, refund: Payment) -> None:
    """``crm.trips.hooks.payment_refunded``: a refund staff record of an online payment is made at Stripe
    too, inside the recording transaction (Stripe refusing undoes the record). With no account connected
    any more, the refund is recorded only (staff pay it back themselves)."""
    if _from_stripe.get():
        return
    online = OnlinePayment.objects.select_for_update().filter(payment_id=refund.refund_of_id).first()
    if online is None or selectors.account() is None:
        return
    try:
        made = client().v1.refunds.create(
            {"payment_intent": online.intent_id, "amount": to_cents(refund.amount, online.currency),
             "metadata": {"schema": connection.schema_name, "payment": str(refund.pk)}},
            {"idempotency_key": f"refund-{connection.schema_name}-{refund.pk}"})
    except stripe.StripeError:
        log.warning("Stripe refused a refund", exc_info=True)
        raise ValidationError({"amount": [_("Stripe refused this refund; nothing was recorded. Try again, or refund "
                                            "it in Stripe's dashboard.")]})
    OnlineRefund.objects.create(online_payment=online, refund_id=made.id, amount=refund.amount, payment=refund)
    if refundable(refund.refund_of) <= 0:
        OnlinePayment.objects.filter(pk=online.pk).update(status=OnlinePayment.Status.REFUNDED)


def refunds_from_stripe(charge_id: str) -> str:
    """``charge.refunded``: the refunds made in Stripe's dashboard are recorded on the trip, each once."""
    if selectors.account() is None:
        return "not ours"
    v1 = client().v1
    charge = v1.charges.retrieve(charge_id)
    online = OnlinePayment.objects.filter(intent_id=_plain(charge).get("payment_intent") or "").first()
    if online is None or not online.payment_id:
        return "not ours"
    refunds = [r for r in v1.refunds.list({"charge": charge_id}).data if r.status in ("succeeded", "pending")]
    recorded = 0
    with transaction.atomic():
        Trip.objects.select_for_update().get(pk=online.trip_id)  # locks in one order: trip, then payment
        online = (OnlinePayment.objects.select_for_update(of=("self",)).select_related("trip", "payment")
                  .get(pk=online.pk))
        known = set(OnlineRefund.objects.filter(online_payment=online).values_list("refund_id", flat=True))
        token = _from_stripe.set(True)
        try:
            for made in sorted(refunds, key=lambda r: r.created):
                if made.id in known:
                    continue
                amount = from_cents(made.amount, online.currency)
                refund = payment_record(actor=None, trip=online.trip, kind=Payment.Kind.REFUND, amount=amount,
                                        method=online.payment.method, received_on=timezone.localdate(),
                                        reference=made.id, refund_of=online.payment)
                OnlineRefund.objects.create(online_payment=online, refund_id=made.id, amount=amount, payment=refund)
                timeline_add(actor=None, customer=online.trip.customer, channel=Contact.Channel.PORTAL,
                             direction=Contact.Direction.INTERNAL,
                             summary=Text("portal_refunded_at_stripe", amount=money_display(amount, online.currency),
                                          trip=online.trip.title, refund=made.id))
                recorded += 1
        finally:
            _from_stripe.reset(token)
        if refundable(online.payment) <= 0:
            OnlinePayment.objects.filter(pk=online.pk).update(status=OnlinePayment.Status.REFUNDED)
    return f"{recorded} refunds recorded"


# --- webhooks --------------------------------------------------------------------------------------------

def webhook_receive(*, payload: bytes, signature: str) -> CheckoutEvent | None:
    """Verify the event with the agency's own signing secret and store it once. Returns the new event to
    process, or None for one received before. Raises ValueError or ``stripe.SignatureVerificationError``."""
    account = selectors.account()
    if account is None:
        raise NotConnected("no Stripe account")
    event = stripe.Webhook.construct_event(payload, signature, crypto.decrypt(account.webhook_secret_encrypted))
    obj = event.data.object.to_dict()
    stored, created = CheckoutEvent.objects.get_or_create(
        event_id=event.id, defaults={"type": event.type, "object_id": str(obj.get("id") or "")[:80]})
    return stored if created else None


HANDLERS = {"payment_intent.succeeded": payment_succeeded, "payment_intent.payment_failed": payment_failed,
            "charge.refunded": refunds_from_stripe}


def event_process(event_id: str) -> str:
    """Apply one stored event (read back from Stripe by its object's id). Idempotent."""
    event = CheckoutEvent.objects.get(event_id=event_id)
    if event.processed_at:
        return "done before"
    CheckoutEvent.objects.filter(pk=event.pk).update(attempts=event.attempts + 1)
    handler = HANDLERS.get(event.type)
    outcome = handler(event.object_id) if handler and event.object_id else "ignored"
    CheckoutEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now(), outcome=outcome[:40], last_error="")
    return outcome
