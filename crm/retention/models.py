"""Erasure and retention of customers' personal data. Tenant schema.

- ``RetentionPolicy``: one row per agency: how long travel document numbers are kept after a
  customer's last trip, and whether (after how many years) inactive customers are anonymised.
- ``Erasure``: the log of every customer anonymised (by an admin, the API or the retention job):
  who, when, which customer id, why. No personal data: the customer's row is anonymised itself.
- ``RetentionRun``: the report of one retention run (counts only), shown to admins and e-mailed.
"""
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.models import Customer


class RetentionPolicy(models.Model):
    """One row (``pk=1``), made with the defaults on first use."""

    # None: keep document numbers (never delete them by age).
    document_months = models.PositiveSmallIntegerField(
        _("delete travel documents after (months)"), null=True, blank=True, default=24,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text=_("Document numbers and scans are deleted this long after the customer's last trip. "
                    "Empty: never."))
    # None: off (the default): inactive customers are kept as they are.
    inactive_years = models.PositiveSmallIntegerField(
        _("anonymise customers inactive for (years)"), null=True, blank=True, default=None,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text=_("Customers with no trip, contact, enquiry or change for this long are anonymised; "
                    "their trips and payments stay for the accounts. Empty: off."))
    email_report = models.BooleanField(_("e-mail each run's report to the admins"), default=False)
    updated_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)

    class Meta:
        verbose_name = _("retention policy")
        verbose_name_plural = _("retention policies")

    @classmethod
    def load(cls) -> "RetentionPolicy":
        return cls.objects.get_or_create(pk=1)[0]


class Erasure(models.Model):
    """One customer anonymised. ``customer`` is the record erased; ``customer_ids`` adds the records
    merged into it (the same person), anonymised with it."""

    class Reason(models.TextChoices):
        REQUEST = "request", _("The customer asked for erasure")
        CONSENT_WITHDRAWN = "consent_withdrawn", _("Consent withdrawn, no other ground to keep the data")
        NOT_NEEDED = "not_needed", _("No longer needed for the purpose it was collected for")
        UNLAWFUL = "unlawful", _("Processed unlawfully")
        LEGAL_OBLIGATION = "legal_obligation", _("A legal obligation or an authority's order")
        RETENTION = "retention", _("Retention policy: customer inactive")

    class Via(models.TextChoices):
        PAGE = "page", _("Web page")
        API = "api", _("API")
        RETENTION = "retention", _("Retention job")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    customer_ids = ArrayField(models.IntegerField(), default=list,
                              help_text="Every record anonymised: the customer and the records merged into it.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text="Empty for the retention job.")
    via = models.CharField(_("via"), max_length=10, choices=Via.choices)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    at = models.DateTimeField(_("erased"), default=timezone.now)
    counts = models.JSONField(default=dict, help_text="{model label: rows deleted or anonymised}")
    files_deleted = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("erasure")
        verbose_name_plural = _("erasures")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["-at"], name="retention_erasure_at")]


class RetentionRun(models.Model):
    """What one run of the retention policy did: counts, never names."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Scheduled")
        MANUAL = "manual", _("Run by an admin")

    trigger = models.CharField(_("run"), max_length=10, choices=Trigger.choices)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    # The policy as it was applied.
    document_months = models.PositiveSmallIntegerField(null=True, blank=True)
    inactive_years = models.PositiveSmallIntegerField(null=True, blank=True)
    documents_cutoff = models.DateField(_("documents of customers whose last trip ended before"), null=True, blank=True)
    inactive_cutoff = models.DateTimeField(_("customers inactive since before"), null=True, blank=True)
    documents_deleted = models.PositiveIntegerField(_("travel documents deleted"), default=0)
    files_deleted = models.PositiveIntegerField(_("files deleted"), default=0)
    customers_anonymised = models.PositiveIntegerField(_("customers anonymised"), default=0)
    remaining = models.PositiveIntegerField(_("left for the next run"), default=0,
                                            help_text=_("Customers due but beyond this run's batch."))
    emailed_at = models.DateTimeField(_("report e-mailed"), null=True, blank=True)

    class Meta:
        verbose_name = _("retention run")
        verbose_name_plural = _("retention runs")
        ordering = ["-started_at", "-id"]
