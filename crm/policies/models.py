"""Corporate travel policies (R-POL-1 … R-POL-3). Tenant schema.

- ``TravelPolicy``: one per corporate account; its rules live in ``PolicyVersion`` rows, which are
  never edited: saving a change makes a new version, and a booking is judged by the version in
  force when it was made (``effective_from``).
- ``ExchangeRate``: what one unit of a currency is worth in the agency's currency (``fx``).
- ``BookingCheck``: a trip item judged for a traveler (what the compliance report counts).
- ``Approval``: an out-of-policy booking waiting for, or given, the approver's decision.
"""
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.models import Customer

MONEY = {"max_digits": 12, "decimal_places": 2}


class TravelPolicy(models.Model):
    account = models.OneToOneField(Customer, verbose_name=_("corporate account"), on_delete=models.CASCADE,
                                   related_name="travel_policy", limit_choices_to={"kind": Customer.Kind.COMPANY})
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("travel policy")
        verbose_name_plural = _("travel policies")

    def __str__(self):
        return str(self.account)


class PolicyVersion(models.Model):
    """One version of the rules: a JSON document that round-trips to ``engine.Policy``
    (see ``crm.policies.documents``). Never edited once saved."""

    class OutOfPolicy(models.TextChoices):
        ALLOWED_WITH_APPROVAL = "allowed_with_approval", _("Allowed with approval")
        FORBIDDEN = "forbidden", _("Forbidden")

    policy = models.ForeignKey(TravelPolicy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    effective_from = models.DateTimeField(_("in force from"))
    rules = models.JSONField(_("rules"))
    currency = models.CharField(_("currency"), max_length=3)
    travel_manager = models.ForeignKey(Customer, verbose_name=_("travel manager"), null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="+",
                                       limit_choices_to={"kind": Customer.Kind.PERSON})
    note = models.CharField(_("what changed and why"), max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(_("saved"), default=timezone.now)

    class Meta:
        verbose_name = _("policy version")
        verbose_name_plural = _("policy versions")
        ordering = ["policy", "-number"]
        constraints = [models.UniqueConstraint(fields=["policy", "number"], name="policies_version_number")]
        indexes = [models.Index(fields=["policy", "-effective_from"], name="policies_version_in_force")]

    def __str__(self):
        return f"{self.policy} v{self.number}"


class ExchangeRate(models.Model):
    """One unit of ``currency`` is worth ``rate`` units of the agency's currency."""

    currency = models.CharField(_("currency"), max_length=3, unique=True)
    rate = models.DecimalField(_("rate"), max_digits=18, decimal_places=8)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        ordering = ["currency"]
        constraints = [models.CheckConstraint(condition=Q(rate__gt=0), name="policies_rate_positive")]


class BookingCheck(models.Model):
    """A trip item judged against the account's policy for one traveler. Amounts in ``currency``
    (the policy's). A newer check of the same item and traveler supersedes it (``is_current``)."""

    class Kind(models.TextChoices):
        FLIGHT = "flight", _("Flight")
        HOTEL = "hotel", _("Hotel")

    trip = models.ForeignKey("trips.Trip", on_delete=models.CASCADE, related_name="policy_checks")
    item = models.ForeignKey("trips.ItineraryItem", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="policy_checks")
    account = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="policy_checks")
    traveler = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    grade = models.CharField(_("job grade"), max_length=20, blank=True)
    department = models.CharField(_("department"), max_length=100, blank=True)
    version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="checks")
    kind = models.CharField(_("kind"), max_length=6, choices=Kind.choices)
    compliant = models.BooleanField(_("in policy"))
    forbidden = models.BooleanField(_("blocked"), default=False)
    failed_codes = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    price = models.DecimalField(_("price"), **MONEY, help_text="Flight fare, or the stay (nightly rate × nights).")
    cheapest_price = models.DecimalField(_("cheapest compliant price"), null=True, blank=True, **MONEY)
    missed_saving = models.DecimalField(_("missed saving"), default=0, **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    offer = models.JSONField(default=dict)
    results = models.JSONField(default=list, help_text="[{rule, passed, code, params}]")
    booked_at = models.DateTimeField(_("booked"))
    checked_at = models.DateTimeField(_("checked"), default=timezone.now)
    checked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    is_current = models.BooleanField(default=True, editable=False)

    class Meta:
        verbose_name = _("policy check")
        verbose_name_plural = _("policy checks")
        ordering = ["-checked_at", "-id"]
        indexes = [
            models.Index(fields=["account", "checked_at"], condition=Q(is_current=True), name="policies_check_report"),
            models.Index(fields=["trip"], name="policies_check_trip"),
        ]


class Approval(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    class Approver(models.TextChoices):
        TRAVELER_MANAGER = "traveler_manager", _("The traveler's manager")
        TRAVEL_MANAGER = "travel_manager", _("The account's travel manager")

    class Via(models.TextChoices):
        APP = "app", _("In the app")
        EMAIL = "email", _("By e-mail link")

    booking_check = models.OneToOneField(BookingCheck, on_delete=models.CASCADE, related_name="approval")
    trip = models.ForeignKey("trips.Trip", on_delete=models.CASCADE, related_name="policy_approvals")
    account = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="policy_approvals")
    traveler = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    approver_kind = models.CharField(_("approver"), max_length=20, choices=Approver.choices)
    approver = models.ForeignKey(Customer, verbose_name=_("approver"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    approver_email = models.EmailField(_("approver's e-mail"), blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    requested_at = models.DateTimeField(_("requested"), default=timezone.now)
    email_sent_at = models.DateTimeField(_("e-mailed"), null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("decided by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    decided_by_person = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_via = models.CharField(_("decided"), max_length=5, choices=Via.choices, blank=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)

    class Meta:
        verbose_name = _("approval")
        verbose_name_plural = _("approvals")
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["status", "-requested_at"], name="policies_approval_status")]

    def __str__(self):
        return f"{self.get_status_display()} · {self.traveler}"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING

    @property
    def decider(self) -> str:
        if self.decided_by_id:
            return str(self.decided_by)
        return self.decided_by_person.name if self.decided_by_person_id else ""
