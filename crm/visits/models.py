"""Key-account visits (R-TIER-4): a fixed visit slot per account and owner, and the visit records
(the 大客户沟通记录表 of the seeds: who met whom, topics, concerns, next steps).

Slots are not stored: ``services.plan_slots`` computes them from the plan, and the daily job turns
the next few weeks of them into ``pipeline.Task`` rows of kind *visit* (key ``visit:<plan>:<date>``),
which is what staff see in their task list and calendar. A slot is *missed* when its task is still
undone after its day; recording a visit completes the slot's task.
"""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.models import Contact, Customer


class VisitPlan(models.Model):
    class Cadence(models.TextChoices):
        WEEKLY = "weekly", _("Weekly")
        FORTNIGHTLY = "fortnightly", _("Every two weeks")
        MONTHLY = "monthly", _("Monthly")

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    class WeekOfMonth(models.IntegerChoices):
        FIRST = 1, _("First")
        SECOND = 2, _("Second")
        THIRD = 3, _("Third")
        FOURTH = 4, _("Fourth")
        LAST = 5, _("Last")

    account = models.ForeignKey(Customer, verbose_name=_("account"), on_delete=models.CASCADE, related_name="visit_plans")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("visited by"), on_delete=models.PROTECT,
                              related_name="visit_plans")
    cadence = models.CharField(_("cadence"), max_length=12, choices=Cadence.choices, default=Cadence.WEEKLY)
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices, default=Weekday.TUESDAY)
    week_of_month = models.PositiveSmallIntegerField(_("week of the month"), choices=WeekOfMonth.choices, null=True,
                                                     blank=True, help_text=_("Monthly plans only."))
    time_of_day = models.TimeField(_("time"), help_text=_("In the agency's time zone."))
    duration_minutes = models.PositiveSmallIntegerField(_("duration (minutes)"), default=60,
                                                        validators=[MinValueValidator(15), MaxValueValidator(600)])
    starts_on = models.DateField(_("first week"))
    ends_on = models.DateField(_("last day"), null=True, blank=True)
    location = models.CharField(_("location"), max_length=200, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("visit plan")
        verbose_name_plural = _("visit plans")
        ordering = ["account__name", "id"]
        indexes = [models.Index(fields=["owner"], condition=Q(active=True), name="visits_plan_active_owner")]

    def __str__(self):
        return f"{self.account} · {self.get_cadence_display()}"

    def task_key(self, day) -> str:
        return f"visit:{self.pk}:{day.isoformat()}"


class Visit(models.Model):
    """One visit to a key account, planned (``task``) or not."""

    account = models.ForeignKey(Customer, verbose_name=_("account"), on_delete=models.CASCADE, related_name="visits")
    plan = models.ForeignKey(VisitPlan, null=True, blank=True, on_delete=models.SET_NULL, related_name="visits")
    task = models.OneToOneField("pipeline.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="visit")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("account manager"), null=True,
                              on_delete=models.SET_NULL, related_name="+",
                              help_text=_("Who the visit counts for: the plan's owner, else who recorded it."))
    visited_at = models.DateTimeField(_("when"))
    staff = models.ManyToManyField(settings.AUTH_USER_MODEL, verbose_name=_("our people"), related_name="+")
    met_people = models.ManyToManyField(Customer, verbose_name=_("their people"), blank=True, related_name="+")
    met_others = models.CharField(_("also met"), max_length=300, blank=True,
                                  help_text=_("Names and titles of people not on file, e.g. 王总 (CFO)."))
    executive_ours = models.BooleanField(_("one of our executives took part"), default=False)
    executive_theirs = models.BooleanField(_("one of their executives took part"), default=False)
    topics = models.TextField(_("topics"))
    concerns = models.TextField(_("concerns and complaints"), blank=True)
    next_steps = models.TextField(_("next steps"), blank=True)
    next_step_due = models.DateField(_("next step due"), null=True, blank=True)
    satisfaction = models.PositiveSmallIntegerField(_("satisfaction (1–5)"), null=True, blank=True,
                                                    validators=[MinValueValidator(1), MaxValueValidator(5)])
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("visit")
        verbose_name_plural = _("visits")
        ordering = ["-visited_at", "-id"]
        indexes = [models.Index(fields=["account", "-visited_at"], name="visits_visit_account"),
                   models.Index(fields=["visited_at"], name="visits_visit_at")]

    def __str__(self):
        return f"{self.account} · {self.visited_at:%Y-%m-%d}"

    @property
    def is_executive(self) -> bool:
        return self.executive_ours or self.executive_theirs
