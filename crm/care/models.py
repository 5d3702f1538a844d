"""After the trip (R-CARE-1, R-CARE-2): satisfaction surveys and complaints. Tenant schema."""
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.models import Customer

MONEY = {"max_digits": 12, "decimal_places": 2}


class Survey(models.Model):
    """One satisfaction survey per trip: sent once, answered once, through a signed link."""

    trip = models.OneToOneField("trips.Trip", on_delete=models.CASCADE, related_name="survey")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="surveys")
    email = models.EmailField(blank=True, help_text="Where it went.")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    csat = models.PositiveSmallIntegerField(_("satisfaction (1–5)"), null=True, blank=True)
    nps = models.PositiveSmallIntegerField(_("likely to recommend (0–10)"), null=True, blank=True)
    comment = models.TextField(_("comments"), blank=True)

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(csat__isnull=True) | Q(csat__gte=1, csat__lte=5), name="care_survey_csat_1_5"),
            models.CheckConstraint(condition=Q(nps__isnull=True) | Q(nps__lte=10), name="care_survey_nps_0_10"),
        ]
        indexes = [models.Index(fields=["answered_at"], name="care_survey_answered")]

    @property
    def is_low(self) -> bool:
        """A score that calls for a person: CSAT 1–2 or an NPS detractor (0–6)."""
        return (self.csat is not None and self.csat <= 2) or (self.nps is not None and self.nps <= 6)


class Complaint(models.Model):
    class Category(models.TextChoices):
        SERVICE = "service", _("Our service")
        FLIGHT = "flight", _("Flight")
        HOTEL = "hotel", _("Hotel")
        GUIDE = "guide", _("Guide or tour")
        TRANSFER = "transfer", _("Transfer")
        VISA = "visa", _("Visa")
        BILLING = "billing", _("Billing")
        OTHER = "other", _("Other")

    class Severity(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")
        CRITICAL = "critical", _("Critical")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        IN_PROGRESS = "in_progress", _("In progress")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")

    class Compensation(models.TextChoices):
        NONE = "", _("None")
        REFUND = "refund", _("Refund")
        VOUCHER = "voucher", _("Voucher")
        UPGRADE = "upgrade", _("Upgrade")
        GIFT = "gift", _("Gift")

    # Hours to resolve, by severity; the deadline is fixed when the complaint is logged.
    DEADLINE_HOURS = {Severity.CRITICAL: 4, Severity.HIGH: 24, Severity.MEDIUM: 72, Severity.LOW: 168}

    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="complaints")
    trip = models.ForeignKey("trips.Trip", verbose_name=_("trip"), null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="complaints")
    survey = models.ForeignKey(Survey, null=True, blank=True, on_delete=models.SET_NULL, related_name="complaints")
    category = models.CharField(_("category"), max_length=10, choices=Category.choices)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    description = models.TextField(_("what happened"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="complaints")
    deadline_at = models.DateTimeField(_("deadline"))
    escalated_at = models.DateTimeField(_("escalated"), null=True, blank=True)
    resolution = models.TextField(_("resolution"), blank=True)
    compensation = models.CharField(_("compensation"), max_length=10, choices=Compensation.choices, blank=True, default="")
    compensation_amount = models.DecimalField(_("compensation amount"), null=True, blank=True, **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("logged"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        ordering = ["deadline_at", "id"]
        indexes = [
            models.Index(fields=["deadline_at"], condition=Q(status__in=["open", "in_progress"], escalated_at__isnull=True),
                         name="care_complaint_to_escalate"),
            models.Index(fields=["customer", "-created_at"], name="care_complaint_customer"),
        ]

    def __str__(self):
        return f"{self.get_category_display()} · {self.customer}"

    @classmethod
    def deadline_for(cls, severity: str, start=None):
        return (start or timezone.now()) + timedelta(hours=cls.DEADLINE_HOURS[severity])

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.OPEN, self.Status.IN_PROGRESS)

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.deadline_at < timezone.now()
