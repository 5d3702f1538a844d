"""The agency's own Stripe account and the payments its customers make online (issue 21).

``StripeAccount`` is one row per agency (``pk`` 1) in the agency's schema; its secret key and webhook
signing secret are encrypted with ``DOCUMENT_KEYS`` (``crm.customers.crypto``; ``rotate_document_keys``
re-encrypts them). ``OnlinePayment`` is one Stripe PaymentIntent made for a trip's deposit or balance;
its ``payment`` is the ``trips.Payment`` recorded once Stripe says it succeeded. ``OnlineRefund`` ties a
Stripe refund to the refund recorded on the trip, so each is recorded (and made) once.
``CheckoutEvent``: the agency's webhook events, by id, each processed once.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.models import Customer
from crm.trips.models import MONEY, Payment, Trip


class Method(models.TextChoices):
    """Stripe's payment method types an agency may offer, and how the trip records each."""

    CARD = "card", _("Card")
    ALIPAY = "alipay", _("Alipay")
    WECHAT_PAY = "wechat_pay", _("WeChat Pay")


# Stripe's payment method type → trips.Payment.Method.
RECORDED_AS = {Method.CARD: Payment.Method.CARD, Method.ALIPAY: Payment.Method.ALIPAY,
               Method.WECHAT_PAY: Payment.Method.WECHAT}


class StripeAccount(models.Model):
    publishable_key = models.CharField(_("publishable key"), max_length=200)
    secret_key_encrypted = models.TextField()
    webhook_secret_encrypted = models.TextField()
    key_hint = models.CharField(max_length=20, blank=True)  # "sk_test_…abcd": shown to staff, never the key
    methods = models.JSONField(default=list)  # Method values
    connected_at = models.DateTimeField(default=timezone.now)
    connected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    checked_at = models.DateTimeField(null=True, blank=True)
    check_result = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("Stripe account")
        verbose_name_plural = _("Stripe accounts")
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="checkout_account_one_row")]

    def __str__(self):
        return self.key_hint or "stripe"


class OnlinePayment(models.Model):
    class Kind(models.TextChoices):
        DEPOSIT = "deposit", _("Deposit")
        BALANCE = "balance", _("Balance")

    class Status(models.TextChoices):
        CREATED = "created", _("Waiting for payment")
        SUCCEEDED = "succeeded", _("Paid")
        FAILED = "failed", _("Failed")
        REFUNDED = "refunded", _("Refunded")

    trip = models.ForeignKey(Trip, on_delete=models.PROTECT, related_name="online_payments")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    intent_id = models.CharField(max_length=80, unique=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.CREATED)
    customer = models.ForeignKey(Customer, null=True, on_delete=models.SET_NULL, related_name="+",
                                 help_text=_("Who paid, signed in to the portal."))
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    payment = models.OneToOneField(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="online")

    class Meta:
        verbose_name = _("online payment")
        verbose_name_plural = _("online payments")
        indexes = [models.Index(fields=["trip", "kind", "status"])]

    def __str__(self):
        return self.intent_id


class OnlineRefund(models.Model):
    """A Stripe refund of an online payment and the refund recorded on the trip for it."""

    online_payment = models.ForeignKey(OnlinePayment, on_delete=models.PROTECT, related_name="refunds")
    refund_id = models.CharField(max_length=80, unique=True)
    amount = models.DecimalField(**MONEY)
    payment = models.OneToOneField(Payment, null=True, on_delete=models.PROTECT, related_name="online_refund")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("online refund")
        verbose_name_plural = _("online refunds")


class CheckoutEvent(models.Model):
    """A webhook event from the agency's Stripe account, stored by id so each is processed once."""

    event_id = models.CharField(max_length=80, unique=True)
    type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=80, blank=True)  # the intent or charge it concerns
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=40, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
