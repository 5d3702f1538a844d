"""Billing (R-BILL-1), in the public schema: the operators' plans, each agency's billing account,
and the Stripe events received.

Stripe is the record of money: subscriptions, invoices and payment methods live there and are read
back, never copied by hand. What is kept here is what the platform needs without a network call
(the plan's limits, the agency's seats and Stripe status for the read-only rule) and the ids that
link an agency to its Stripe objects.
"""
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from caravan.tenancy.scoping import AgencyScopedManager
from tenants.models import Agency


class Interval(models.TextChoices):
    MONTH = "month", _("Monthly")
    YEAR = "year", _("Yearly")


class Plan(models.Model):
    """An operator-defined plan: a price per staff seat per month or year, included limits, features.

    Kept in step with Stripe by ``services.plan_sync``: one Product per plan and one Stripe Plan
    (a recurring per-seat price) per interval. A Stripe Plan's amount cannot change, so a new price
    gets a new Stripe Plan id (``<code>-<interval>-<amount>``); subscriptions move to it on their
    next change."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=80)
    currency = models.CharField(_("currency"), max_length=3, default="cny")
    seat_price_month = models.DecimalField(_("price per seat per month"), max_digits=10, decimal_places=2)
    seat_price_year = models.DecimalField(_("price per seat per year"), max_digits=10, decimal_places=2)
    max_seats = models.PositiveIntegerField(_("seat limit"), null=True, blank=True,
                                            help_text=_("Active staff allowed; empty for no limit."))
    max_customers = models.PositiveIntegerField(_("customer limit"), null=True, blank=True)
    campaign_emails_month = models.PositiveIntegerField(_("campaign e-mails per month"), null=True, blank=True)
    supplier_feeds = models.PositiveIntegerField(_("supplier feeds"), null=True, blank=True)
    api_requests_per_minute = models.PositiveIntegerField(
        _("API requests per minute"), null=True, blank=True,
        help_text=_("For the whole agency; empty for the platform default (API_RATE_PER_MINUTE)."))
    features = models.JSONField(_("features"), default=list, blank=True)
    active = models.BooleanField(_("offered"), default=True)
    stripe_product_id = models.CharField(max_length=80, blank=True, editable=False)
    stripe_plan_month_id = models.CharField(max_length=120, blank=True, editable=False)
    stripe_plan_year_id = models.CharField(max_length=120, blank=True, editable=False)
    synced_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["seat_price_month", "code"]

    def __str__(self):
        return self.name

    def price(self, interval: str):
        return self.seat_price_year if interval == Interval.YEAR else self.seat_price_month

    def stripe_plan_id(self, interval: str) -> str:
        return self.stripe_plan_year_id if interval == Interval.YEAR else self.stripe_plan_month_id


class BillingAccount(models.Model):
    """One agency's link to Stripe and the last subscription state read from it."""

    agency = models.OneToOneField(Agency, on_delete=models.CASCADE, related_name="billing")
    stripe_customer_id = models.CharField(max_length=80, blank=True)
    stripe_subscription_id = models.CharField(max_length=80, blank=True)
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts")
    interval = models.CharField(_("billing interval"), max_length=5, choices=Interval.choices, default=Interval.MONTH)
    seats = models.PositiveIntegerField(_("seats"), default=0)
    stripe_status = models.CharField(_("Stripe status"), max_length=24, blank=True)
    current_period_end = models.DateTimeField(_("paid until"), null=True, blank=True)
    cancel_at_period_end = models.BooleanField(_("cancels at period end"), default=False)
    past_due_since = models.DateTimeField(_("payment failing since"), null=True, blank=True)
    comped = models.BooleanField(_("free of charge"), default=False,
                                 help_text=_("Granted by an operator: active without a subscription."))
    refreshed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AgencyScopedManager()  # the active agency's account; platform code uses .unscoped()

    class Meta:
        verbose_name = _("billing account")
        verbose_name_plural = _("billing accounts")

    def __str__(self):
        return f"{self.agency.slug}: {self.stripe_status or '-'}"

    @property
    def plan_label(self) -> str:
        """The plan as pages name it (``services.plan_label``, the one rule)."""
        from .services import plan_label

        return plan_label(self.agency, self)


class StripeEvent(models.Model):
    """A webhook event received, stored by id so each is processed once however often it comes."""

    event_id = models.CharField(max_length=80, unique=True)
    type = models.CharField(max_length=80)
    customer_id = models.CharField(max_length=80, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("Stripe event")
        verbose_name_plural = _("Stripe events")
        indexes = [models.Index(fields=["processed_at", "received_at"], name="billing_event_pending")]

    def __str__(self):
        return f"{self.event_id} {self.type}"
