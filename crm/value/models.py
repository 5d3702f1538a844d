"""Customer value (R-VAL-1, R-VAL-3): each customer's RFM scores and lifetime value, written by the
nightly job (``services.value_run``) in a few set-based statements, and the agency's model fit."""
from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.models import Customer

MONEY = {"max_digits": 14, "decimal_places": 2}


class ValueSettings(models.Model):
    """One row per agency."""

    class Basis(models.TextChoices):
        REVENUE = "revenue", _("Revenue (sell price)")
        MARGIN = "margin", _("Margin (sell price − cost)")

    window_months = models.PositiveSmallIntegerField(_("RFM window (months)"), default=24)
    monetary_basis = models.CharField(_("monetary value"), max_length=10, choices=Basis.choices, default=Basis.MARGIN)
    late_days = models.PositiveSmallIntegerField(
        _("late payer after (days)"), default=14,
        help_text=_("Paying balances this many days late on average marks a late payer and lowers their value class."))
    # Early warnings (R-VAL-5).
    spend_drop_share = models.PositiveSmallIntegerField(
        _("spend drop warning (%)"), default=50,
        help_text=_("A key customer's last 12 months of value fell by more than this share of the 12 months before."))
    complaints_window_days = models.PositiveSmallIntegerField(_("complaint window (days)"), default=90)
    complaints_rise_min = models.PositiveSmallIntegerField(
        _("complaints that count as a rise"), default=2,
        help_text=_("At least this many complaints in the window, and more than in the window before."))
    dormant_days = models.PositiveSmallIntegerField(_("dormant after (days)"), default=180)
    at_risk_p_alive = models.PositiveSmallIntegerField(
        _("at risk below (% probability active)"), default=30,
        help_text=_("A repeat customer whose probability of still being active falls below this share."))
    last_run_at = models.DateTimeField(_("last computed"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("value settings")


class CustomerValue(models.Model):
    """Where one customer stands; a customer without a confirmed trip has no row."""

    class Segment(models.TextChoices):
        MOST_VALUABLE = "most_valuable", _("Most valuable")
        GROWTH = "growth", _("Growth")
        DECLINING = "declining", _("Declining")
        LOW = "low", _("Low value")

    class Quadrant(models.TextChoices):
        SMALL_LOW = "small_low", _("Small scale, low loyalty")
        SMALL_HIGH = "small_high", _("Small scale, high loyalty")
        LARGE_LOW = "large_low", _("Large scale, low loyalty")
        LARGE_HIGH = "large_high", _("Large scale, high loyalty")

    customer = models.OneToOneField(Customer, primary_key=True, on_delete=models.CASCADE, related_name="value")
    first_trip_at = models.DateTimeField(_("first trip"))
    last_trip_at = models.DateTimeField(_("last trip"))
    trips_total = models.PositiveIntegerField(_("trips in all"))
    revenue_total = models.DecimalField(_("revenue to date"), **MONEY)
    margin_total = models.DecimalField(_("margin to date"), **MONEY)
    # RFM over the window: scores 1–5 by quintiles within the agency; None when no trip in the window.
    frequency = models.PositiveIntegerField(_("trips in the window"), default=0)
    monetary = models.DecimalField(_("value in the window"), default=Decimal(0), **MONEY)
    r_score = models.PositiveSmallIntegerField(_("recency score"), null=True)
    f_score = models.PositiveSmallIntegerField(_("frequency score"), null=True)
    m_score = models.PositiveSmallIntegerField(_("monetary score"), null=True)
    # Payment behaviour: mean days late paying balances over the window (None: nothing was due).
    days_late = models.FloatField(_("days late paying, on average"), null=True)
    late_payer = models.BooleanField(_("late payer"), default=False)
    segment = models.CharField(_("value segment"), max_length=15, choices=Segment.choices, default=Segment.LOW)
    # None when not scored (no trip in the window): such a customer is in no quadrant, on any page or filter.
    quadrant = models.CharField(_("scale × loyalty"), max_length=10, choices=Quadrant.choices, null=True,
                                default=None)
    # Predicted (BG/NBD + Gamma-Gamma, fitted per agency): the next 12 months.
    p_alive = models.FloatField(_("probability still active"), null=True)
    expected_trips_12m = models.FloatField(_("expected trips, next 12 months"), null=True)
    expected_value_12m = models.DecimalField(_("expected value, next 12 months"), null=True, **MONEY)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("customer value")
        verbose_name_plural = _("customer values")
        indexes = [models.Index(fields=["r_score", "f_score", "m_score"], name="value_rfm"),
                   models.Index(fields=["segment"], name="value_segment"),
                   models.Index(fields=["quadrant"], name="value_quadrant")]

    @property
    def rfm(self) -> str:
        return "".join(str(s) for s in (self.r_score, self.f_score, self.m_score)) if self.r_score else ""


class ValueWarning(models.Model):
    """An early warning (R-VAL-5). Open while its condition holds: the nightly job opens it once (with a
    task for the account owner) and closes it when the condition clears, so it never fires twice for
    the same episode."""

    class Kind(models.TextChoices):
        SPEND_DROP = "spend_drop", _("Spend dropped")
        COMPLAINTS = "complaints", _("Complaints rising")
        DORMANT = "dormant", _("Gone dormant")
        AT_RISK = "at_risk", _("Probably lapsing")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="value_warnings")
    kind = models.CharField(_("warning"), max_length=12, choices=Kind.choices)
    opened_at = models.DateTimeField(_("raised"))
    closed_at = models.DateTimeField(_("cleared"), null=True, blank=True)
    details = models.JSONField(default=dict)  # the figures that raised it, for the list and the task
    task = models.ForeignKey("pipeline.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("value warning")
        verbose_name_plural = _("value warnings")
        ordering = ["-opened_at", "id"]
        constraints = [models.UniqueConstraint(fields=["customer", "kind"], condition=models.Q(closed_at__isnull=True),
                                               name="value_warning_open_once")]


class LifetimeFit(models.Model):
    """One fit of the agency's lifetime-value model (kept for the record; the newest is in use)."""

    fitted_at = models.DateTimeField(default=timezone.now)
    customers = models.PositiveIntegerField()
    repeat_customers = models.PositiveIntegerField()
    r = models.FloatField()
    alpha = models.FloatField()
    a = models.FloatField()
    b = models.FloatField()
    bg_log_likelihood = models.FloatField()
    p = models.FloatField(null=True)
    q = models.FloatField(null=True)
    gamma = models.FloatField(null=True)
    gg_log_likelihood = models.FloatField(null=True)
    actual_repeat_trips = models.PositiveIntegerField(help_text="In the fitting period.")
    expected_repeat_trips = models.FloatField(help_text="What the fitted model expects for the same customers' ages.")

    class Meta:
        ordering = ["-fitted_at"]
        get_latest_by = "fitted_at"
