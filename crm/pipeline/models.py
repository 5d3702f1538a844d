"""Leads and opportunities (R-SALE-1, 2, 6; R-INT-4). Tenant schema.

A *lead* is an opportunity nobody has qualified yet: one table, so a lead never has to be copied
into an opportunity. Stages are the agency's own (rename, add, reorder), but each has a fixed
*kind* — open, deposit paid, won, lost — and the allowed moves are defined on kinds
(``crm.pipeline.services.ALLOWED``), so configuration can never create an illegal path.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from caravan import texts
from crm.customers.models import Customer


class Stage(models.Model):
    class Kind(models.TextChoices):
        OPEN = "open", _("Open")
        DEPOSIT = "deposit", _("Deposit paid")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    # The default stages are seeded with a ``code`` and no name, so they show in each reader's
    # language until an admin renames them.
    DEFAULT_NAMES = {"new": _("New"), "qualified": _("Qualified"), "quoted": _("Quoted"),
                     "deposit": _("Deposit paid"), "won": _("Won"), "lost": _("Lost")}

    name = models.CharField(_("name"), max_length=60, blank=True)
    code = models.CharField(max_length=20, blank=True, editable=False)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.OPEN)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    probability = models.PositiveSmallIntegerField(_("win probability (%)"), default=10)
    is_active = models.BooleanField(_("in use"), default=True)

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["position", "id"]
        constraints = [
            # One stage each of deposit / won / lost: the services find them by kind.
            models.UniqueConstraint(fields=["kind"], condition=~Q(kind="open"), name="pipeline_stage_one_closing_kind"),
        ]

    def __str__(self):
        return self.name or str(self.DEFAULT_NAMES.get(self.code, self.code))

    @property
    def is_closed(self) -> bool:
        return self.kind in (self.Kind.WON, self.Kind.LOST)


class Team(models.Model):
    name = models.CharField(_("name"), max_length=80, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, verbose_name=_("members"), related_name="teams", blank=True)
    # Round robin: the member who got the last lead; the next one goes to the member after.
    last_assigned = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self):
        return self.name


class AssignmentRule(models.Model):
    """Tried in ``position`` order when a lead arrives with no owner; the first that gives an owner wins."""

    class Kind(models.TextChoices):
        CUSTOMER_OWNER = "customer_owner", _("The customer's account manager")
        DESTINATION = "destination", _("Destination contains")
        ROUND_ROBIN = "round_robin", _("Round robin in a team")

    kind = models.CharField(_("rule"), max_length=20, choices=Kind.choices)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    destination = models.CharField(_("destination keyword"), max_length=80, blank=True,
                                   help_text=_("For destination rules, e.g. 日本 or Japan."))
    team = models.ForeignKey(Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("salesperson"), null=True, blank=True,
                             on_delete=models.CASCADE, related_name="+")
    is_active = models.BooleanField(_("in use"), default=True)

    class Meta:
        verbose_name = _("assignment rule")
        verbose_name_plural = _("assignment rules")
        ordering = ["position", "id"]


class Opportunity(models.Model):
    class Source(models.TextChoices):
        WEBSITE_FORM = "website_form", _("Website enquiry form")
        WEBSITE = "website", _("Website (webhook)")
        CALL_CENTER = "call_center", _("Call center")
        STAFF = "staff", _("Staff")

    class LostReason(models.TextChoices):
        PRICE = "price", _("Price")
        COMPETITOR = "competitor", _("Booked elsewhere")
        NO_RESPONSE = "no_response", _("No response")
        PLANS_CHANGED = "plans_changed", _("Plans changed")
        NOT_AVAILABLE = "not_available", _("Not available (sold out, visa refused…)")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="opportunities")
    title = models.CharField(_("title"), max_length=200)
    destination = models.CharField(_("destination"), max_length=120, blank=True)
    depart_on = models.DateField(_("departure"), null=True, blank=True)
    return_on = models.DateField(_("return"), null=True, blank=True)
    adults = models.PositiveSmallIntegerField(_("adults"), default=1)
    children = models.PositiveSmallIntegerField(_("children"), default=0)
    budget = models.DecimalField(_("budget"), max_digits=12, decimal_places=2, null=True, blank=True)
    value = models.DecimalField(_("expected value"), max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(_("currency"), max_length=3)
    message = models.TextField(_("enquiry"), blank=True)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices, default=Source.STAFF)
    is_key = models.BooleanField(_("key opportunity"), default=False)
    stage = models.ForeignKey(Stage, verbose_name=_("stage"), on_delete=models.PROTECT, related_name="opportunities")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="opportunities")
    assigned_at = models.DateTimeField(_("assigned"), null=True, blank=True)
    lost_reason = models.CharField(_("lost reason"), max_length=20, choices=LostReason.choices, blank=True)
    lost_note = models.CharField(_("lost note"), max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    stage_changed_at = models.DateTimeField(_("stage changed"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "stage"], name="pipeline_opp_owner_stage"),
            models.Index(fields=["stage", "-created_at"], name="pipeline_opp_stage_created"),
            models.Index(fields=["customer"], name="pipeline_opp_customer"),
        ]

    def __str__(self):
        return self.title

    @property
    def is_lead(self) -> bool:
        """Unowned and not yet closed: waiting for someone to take it."""
        return self.owner_id is None and not self.stage.is_closed


class StageChange(models.Model):
    """Every move of an opportunity, so conversion rates can be counted over any period."""

    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.ForeignKey(Stage, null=True, on_delete=models.PROTECT, related_name="+")
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["to_stage", "at"], name="pipeline_stagechange_to_at")]


class Task(models.Model):
    """A follow-up with a due date for one person: call back, send the quote, the after-trip call…

    Tasks made by jobs carry a ``key`` (unique), so a job that runs twice makes each task once.
    """

    class Kind(models.TextChoices):
        FOLLOW_UP = "follow_up", _("Follow-up")
        CALL = "call", _("Call")
        DEPOSIT_CALL = "deposit_call", _("Deposit received: call the customer")
        AFTER_TRIP_CALL = "after_trip_call", _("After-trip call")
        COMPLAINT = "complaint", _("Complaint")
        VISIT = "visit", _("Key-account visit")
        APPROVAL = "approval", _("Policy approval")
        SERVICE_LEVEL = "service_level", _("Service level at risk")
        TIER_CHANGE = "tier_change", _("Service tier changed")
        OUTREACH = "outreach", _("Proactive outreach")
        VALUE_WARNING = "value_warning", _("Customer value warning")
        GREETING = "greeting", _("Care greeting")
        SUGGESTION = "suggestion", _("Holiday trip suggestion")
        WIN_BACK = "win_back", _("Win-back")
        REFERRAL = "referral", _("Referral reward")
        OTHER = "other", _("Other")

    title = models.CharField(_("title"), max_length=200)  # as typed, or as written in the agency's language
    # A title the system wrote: shown from its kind and params in the reader's language (caravan.texts).
    text_kind = models.CharField(max_length=40, blank=True, default="", db_default="", editable=False)
    text_params = models.JSONField(default=dict, blank=True, editable=False,
                                   db_default=models.Value({}, output_field=models.JSONField()))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.FOLLOW_UP)
    notes = models.TextField(_("notes"), blank=True)  # as typed, or as written in the agency's language
    # Notes the system wrote: shown from their kind and params in the reader's language (caravan.texts).
    note_kind = models.CharField(max_length=40, blank=True, default="", db_default="", editable=False)
    note_params = models.JSONField(default=dict, blank=True, editable=False,
                                   db_default=models.Value({}, output_field=models.JSONField()))
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="tasks")
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="tasks")
    opportunity = models.ForeignKey(Opportunity, null=True, blank=True, on_delete=models.CASCADE, related_name="tasks")
    trip = models.ForeignKey("trips.Trip", null=True, blank=True, on_delete=models.CASCADE, related_name="tasks")
    due_at = models.DateTimeField(_("due"))
    remind_at = models.DateTimeField(_("remind at"), null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    key = models.CharField(max_length=80, null=True, blank=True, unique=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["owner", "due_at"], condition=Q(done_at__isnull=True), name="pipeline_task_open_owner"),
            models.Index(fields=["remind_at"], condition=Q(done_at__isnull=True, reminded_at__isnull=True),
                         name="pipeline_task_to_remind"),
        ]

    def __str__(self):
        return self.display_title

    @property
    def display_title(self) -> str:
        """The title in the active language: rendered from its kind when the system wrote it."""
        return texts.display(self.text_kind, self.text_params, self.title)

    @property
    def display_notes(self) -> str:
        """The notes in the active language: rendered from their kind when the system wrote them."""
        return texts.display(self.note_kind, self.note_params, self.notes)

    @property
    def is_overdue(self) -> bool:
        return self.done_at is None and self.due_at < timezone.now()


class IntakeSettings(models.Model):
    """The agency's lead intake: the website webhook secret (encrypted) and form options. One row."""

    webhook_secret = models.BinaryField(editable=False, default=bytes)  # Fernet token of the secret
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    form_enabled = models.BooleanField(_("public enquiry form on"), default=True)
    form_thanks = models.CharField(_("thank-you message"), max_length=300, blank=True)


class InboundEvent(models.Model):
    """A webhook delivery we accepted, by the sender's event id: a replay finds it and changes nothing."""

    event_id = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=40)
    received_at = models.DateTimeField(default=timezone.now)
    customer = models.ForeignKey(Customer, null=True, on_delete=models.SET_NULL, related_name="+")
    opportunity = models.ForeignKey(Opportunity, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-received_at"]
