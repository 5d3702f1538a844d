"""Service tiers (R-TIER-1 … R-TIER-3): what each tier promises, who is in which tier, and the
service-level clocks that measure the promise. Tenant schema.

- ``ServiceTier`` — the agency's tiers, ordered by ``rank`` (1 is the highest), with entry
  criteria (any combination; a tier without criteria is the default tier) and the service.
- ``TierSettings`` — one row: hysteresis margin, minimum days before a downgrade, notifications.
- ``CustomerTier`` — one row per customer: the tier in force (``tier``), the tier the criteria
  give (``computed_tier``, with hysteresis), the measures of the last run and a manual override.
- ``TierChange`` — every change of the tier in force: from, to, why, measures, by, at.
- ``ServiceClock`` — one first-response clock per lead, request or complaint.
"""
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from caravan.leases import Leased
from crm.customers.models import Customer
from crm.value.models import CustomerValue

MONEY = {"max_digits": 14, "decimal_places": 2}


class ServiceTier(models.Model):
    class AppliesTo(models.TextChoices):
        BOTH = "both", _("Individuals and corporate accounts")
        PERSON = "person", _("Individuals only")
        COMPANY = "company", _("Corporate accounts only")

    class Cadence(models.TextChoices):
        NONE = "", _("No regular visits")
        WEEKLY = "weekly", _("Weekly")
        FORTNIGHTLY = "fortnightly", _("Every two weeks")
        MONTHLY = "monthly", _("Monthly")
        QUARTERLY = "quarterly", _("Quarterly")

    name = models.CharField(_("name"), max_length=60, unique=True)
    rank = models.PositiveSmallIntegerField(_("rank"), help_text=_("1 is the highest tier."))
    color = models.CharField(_("badge colour"), max_length=7, default="#64748b", help_text=_("A colour such as #c9a227."))
    # Entry criteria: every one that is set must be met. None set: the default tier.
    applies_to = models.CharField(_("applies to"), max_length=10, choices=AppliesTo.choices, default=AppliesTo.BOTH)
    min_spend_12m = models.DecimalField(_("minimum spend, last 12 months"), null=True, blank=True, **MONEY)
    min_spend_month = models.DecimalField(_("minimum spend, last full month"), null=True, blank=True, **MONEY)
    min_trips_12m = models.PositiveIntegerField(_("minimum trips, last 12 months"), null=True, blank=True)
    value_segments = ArrayField(
        models.CharField(max_length=15, choices=CustomerValue.Segment.choices), verbose_name=_("value segments"),
        default=list, blank=True,
        help_text=_("Only customers in one of these value segments (customer value, computed nightly); none: any."))
    # The service.
    dedicated_manager = models.BooleanField(_("dedicated account manager"), default=False)
    lead_response_hours = models.PositiveSmallIntegerField(_("first response to a lead (hours)"), null=True, blank=True)
    request_response_hours = models.PositiveSmallIntegerField(_("first response to a request (hours)"), null=True,
                                                              blank=True)
    complaint_response_hours = models.PositiveSmallIntegerField(_("first response to a complaint (hours)"), null=True,
                                                                blank=True)
    visit_cadence = models.CharField(_("visits to key accounts"), max_length=12, choices=Cadence.choices, blank=True,
                                     default=Cadence.NONE)
    outreach_days = models.PositiveSmallIntegerField(_("proactive outreach every (days)"), null=True, blank=True)
    perks = models.TextField(_("perks"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("service tier")
        verbose_name_plural = _("service tiers")
        ordering = ["rank"]
        constraints = [
            # Deferred, so reordering can swap ranks inside one transaction.
            models.UniqueConstraint(fields=["rank"], name="tiers_tier_rank_unique",
                                    deferrable=models.Deferrable.DEFERRED),
            models.CheckConstraint(condition=Q(rank__gte=1), name="tiers_tier_rank_positive"),
            models.CheckConstraint(condition=Q(min_spend_12m__isnull=True) | Q(min_spend_12m__gte=0),
                                   name="tiers_tier_spend_12m_positive"),
            models.CheckConstraint(condition=Q(min_spend_month__isnull=True) | Q(min_spend_month__gte=0),
                                   name="tiers_tier_spend_month_positive"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_default(self) -> bool:
        """No criteria at all: everybody qualifies."""
        return (self.applies_to == self.AppliesTo.BOTH and self.min_spend_12m is None
                and self.min_spend_month is None and self.min_trips_12m is None and not self.value_segments)

    @property
    def value_segment_labels(self) -> list[str]:
        labels = dict(CustomerValue.Segment.choices)
        return [str(labels.get(segment, segment)) for segment in self.value_segments]

    def target_hours(self, kind: str) -> int | None:
        """The first-response target for a clock kind (``ServiceClock.Kind``), or None."""
        return {ServiceClock.Kind.LEAD: self.lead_response_hours,
                ServiceClock.Kind.REQUEST: self.request_response_hours,
                ServiceClock.Kind.COMPLAINT: self.complaint_response_hours}[kind]


class TierSettings(models.Model):
    """The agency's tier rules. One row (``pk=1``), made on first use."""

    hysteresis_percent = models.PositiveSmallIntegerField(
        _("hysteresis margin (%)"), default=10,
        help_text=_("A customer leaves a tier only when the measures fall this far below its thresholds."))
    min_days_in_tier = models.PositiveSmallIntegerField(
        _("minimum days in a tier before a downgrade"), default=30)
    notify_owner = models.BooleanField(_("tell the account manager when a tier changes"), default=True)
    last_run_at = models.DateTimeField(_("last assignment"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("tier settings")
        verbose_name_plural = _("tier settings")
        constraints = [models.CheckConstraint(condition=Q(hysteresis_percent__lte=100), name="tiers_settings_margin")]

    @classmethod
    def load(cls) -> "TierSettings":
        return cls.objects.get_or_create(pk=1)[0]


class CustomerTier(models.Model):
    """Where one customer stands. Written by the nightly assignment (set-based SQL) and by overrides."""

    customer = models.OneToOneField(Customer, primary_key=True, on_delete=models.CASCADE, related_name="tier_status")
    tier = models.ForeignKey(ServiceTier, verbose_name=_("tier"), null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", help_text=_("The tier in force: the override, else the computed tier."))
    since = models.DateTimeField(_("since"), default=timezone.now)
    computed_tier = models.ForeignKey(ServiceTier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    computed_since = models.DateTimeField(default=timezone.now)
    # The measures as of the last run (``TierSettings.last_run_at``), in the agency currency.
    spend_12m = models.DecimalField(_("spend, last 12 months"), default=Decimal(0), **MONEY)
    spend_month = models.DecimalField(_("spend, last full month"), default=Decimal(0), **MONEY)
    trips_12m = models.PositiveIntegerField(_("trips, last 12 months"), default=0)
    # A manager's override: wins over the computed tier until ``override_until`` (a date, agency time).
    override_tier = models.ForeignKey(ServiceTier, verbose_name=_("override tier"), null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="+")
    override_reason = models.CharField(_("reason"), max_length=300, blank=True)
    override_until = models.DateField(_("until"), null=True, blank=True)
    override_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    override_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("customer tier")
        verbose_name_plural = _("customer tiers")
        indexes = [
            models.Index(fields=["tier"], name="tiers_customertier_tier"),
            models.Index(fields=["override_until"], condition=Q(override_tier__isnull=False),
                         name="tiers_customertier_override"),
        ]

    @property
    def has_override(self) -> bool:
        return self.override_tier_id is not None


class TierChange(models.Model):
    """One change of a customer's tier in force, with the reason and the measures at the time."""

    class Why(models.TextChoices):
        AUTOMATIC = "automatic", _("Automatic (criteria)")
        OVERRIDE = "override", _("Manual override")
        OVERRIDE_ENDED = "override_ended", _("Override ended")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.ForeignKey(ServiceTier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_tier = models.ForeignKey(ServiceTier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Names at the time, so the history still reads after a tier is renamed or deleted.
    from_name = models.CharField(max_length=60, blank=True)
    to_name = models.CharField(max_length=60, blank=True)
    why = models.CharField(_("why"), max_length=20, choices=Why.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    spend_12m = models.DecimalField(default=Decimal(0), **MONEY)
    spend_month = models.DecimalField(default=Decimal(0), **MONEY)
    trips_12m = models.PositiveIntegerField(default=0)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["customer", "-at"], name="tiers_change_customer")]

    @property
    def is_upgrade(self) -> bool | None:
        if self.from_tier is None or self.to_tier is None:
            return None
        return self.to_tier.rank < self.from_tier.rank


class ServiceClock(models.Model):
    """A first-response clock: started with the target of the customer's tier at that moment."""

    class Kind(models.TextChoices):
        LEAD = "lead", _("Lead")
        REQUEST = "request", _("Request")
        COMPLAINT = "complaint", _("Complaint")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE,
                                 related_name="service_clocks")
    tier = models.ForeignKey(ServiceTier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tier_name = models.CharField(_("tier"), max_length=60)
    target_hours = models.PositiveSmallIntegerField(_("target (hours)"))
    started_at = models.DateTimeField(_("started"))
    due_at = models.DateTimeField(_("due"))
    responded_at = models.DateTimeField(_("responded"), null=True, blank=True)
    responded_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("responded by"), null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="service_clocks",
                              help_text=_("The person expected to respond."))
    near_notified_at = models.DateTimeField(null=True, blank=True)
    breached_notified_at = models.DateTimeField(null=True, blank=True)
    # What started it: one of these, and a unique key so starting twice makes one clock.
    opportunity = models.ForeignKey("pipeline.Opportunity", null=True, blank=True, on_delete=models.CASCADE,
                                    related_name="service_clocks")
    complaint = models.ForeignKey("care.Complaint", null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="service_clocks")
    contact = models.ForeignKey("crm.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    key = models.CharField(max_length=60, unique=True, editable=False)

    class Meta:
        verbose_name = _("service-level clock")
        verbose_name_plural = _("service-level clocks")
        ordering = ["due_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(due_at__gt=models.F("started_at")),
                                              name="tiers_clock_due_after_start")]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(responded_at__isnull=True), name="tiers_clock_running"),
            models.Index(fields=["customer"], condition=Q(responded_at__isnull=True), name="tiers_clock_customer_running"),
            models.Index(fields=["started_at"], name="tiers_clock_started"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.customer_id}"

    @property
    def is_running(self) -> bool:
        return self.responded_at is None

    @property
    def is_breached(self) -> bool:
        return (self.responded_at or timezone.now()) > self.due_at

    @property
    def response_time(self):
        return self.responded_at - self.started_at if self.responded_at else None

    @property
    def elapsed_share(self) -> float:
        """How much of the target has elapsed (1.0 = due now); for running clocks."""
        total = (self.due_at - self.started_at).total_seconds()
        return ((self.responded_at or timezone.now()) - self.started_at).total_seconds() / total


class TierRecompute(Leased):
    """A "recompute now" asked for by an admin, leased by its worker (caravan.leases). The assignment is
    one transaction: a run whose worker died wrote nothing and is simply run again by the watchdog."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Recomputing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
