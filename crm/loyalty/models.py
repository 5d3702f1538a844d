"""Customer care automation (R-CARE-3 … R-CARE-5, R-CAMP-4).

- ``Occasion``: what the agency greets customers for (birthdays, family dates, Chinese festivals,
  fixed days of its own), when (``days_before``), how (e-mail to customers who may be mailed,
  a task for the account manager, or both) and with which words (Chinese and English).
- ``Greeting``: the log, one row per customer, occasion and occasion date, so the daily job
  greets nobody twice.
- ``Suggestion``: "last year you travelled at Spring Festival" — one per customer, festival and
  year, with the destinations customers who went to the same place also booked.
- ``WinBack``: a lapsed customer's case (why identified, the reason they left, the offer, the outcome).
- ``Referral``: who referred whom, and the referrer's reward.
"""
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.customers.festivals import FESTIVAL_CHOICES, FESTIVALS
from crm.customers.models import Customer

MONEY = {"max_digits": 12, "decimal_places": 2}


class LoyaltySettings(models.Model):
    """One row per agency: when greetings go out and when customers count as lapsed."""

    greeting_hour = models.PositiveSmallIntegerField(
        _("greetings go out from (hour)"), default=8, validators=[MaxValueValidator(23)],
        help_text=_("In the agency's time zone. The daily job sends the day's greetings from this hour."))
    suggestion_days_before = models.PositiveSmallIntegerField(
        _("holiday suggestions (days before the break)"), default=45,
        validators=[MinValueValidator(1), MaxValueValidator(180)],
        help_text=_("How long before a festival's break customers who travelled at it last year are suggested a trip."))
    dormant_days = models.PositiveSmallIntegerField(
        _("lapsed after (days without a trip)"), default=365, validators=[MinValueValidator(30), MaxValueValidator(3650)])
    dormant_min_trips = models.PositiveSmallIntegerField(
        _("only customers with at least (trips)"), default=2, validators=[MinValueValidator(1), MaxValueValidator(100)])
    win_back_declining = models.BooleanField(
        _("also open a case for declining valuable customers"), default=True,
        help_text=_("Customers the value model puts in the “declining” segment, even before they are lapsed."))
    last_run_on = models.DateField(_("last daily run"), null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("care automation settings")

    @classmethod
    def load(cls) -> "LoyaltySettings":
        row, _created = cls.objects.get_or_create(pk=1)
        return row


class Occasion(models.Model):
    class Kind(models.TextChoices):
        BIRTHDAY = "birthday", _("Birthday")
        FAMILY_DATE = "family_date", _("Family dates (anniversaries, family birthdays)")
        FESTIVAL = "festival", _("Festival")
        CUSTOM = "custom", _("A fixed day of the year")

    name = models.CharField(_("name"), max_length=100, help_text=_("For staff, e.g. 中秋节问候 Mid-Autumn greeting."))
    kind = models.CharField(_("occasion"), max_length=12, choices=Kind.choices)
    festival = models.CharField(_("festival"), max_length=20, choices=FESTIVAL_CHOICES, blank=True,
                                help_text=_("Dates from the holidays library: lunar festivals move every year."))
    month = models.PositiveSmallIntegerField(_("month"), null=True, blank=True,
                                             validators=[MinValueValidator(1), MaxValueValidator(12)])
    day = models.PositiveSmallIntegerField(_("day"), null=True, blank=True,
                                           validators=[MinValueValidator(1), MaxValueValidator(31)])
    days_before = models.PositiveSmallIntegerField(
        _("send days before"), default=0, validators=[MaxValueValidator(60)],
        help_text=_("0 = on the day. Greetings are sent no earlier than this and never after the day."))
    subject_zh = models.CharField(_("subject (Chinese)"), max_length=200, blank=True)
    body_zh = models.TextField(_("message (Chinese)"), blank=True)
    subject_en = models.CharField(_("subject (English)"), max_length=200, blank=True)
    body_en = models.TextField(_("message (English)"), blank=True)
    send_email = models.BooleanField(_("e-mail the customer"), default=True,
                                     help_text=_("Only customers who agreed to receive e-mail from us."))
    make_task = models.BooleanField(_("task for the account manager"), default=False,
                                    help_text=_("A reminder to call or message the customer personally."))
    active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    LANGUAGE_FIELDS = {"zh-hans": ("subject_zh", "body_zh"), "en": ("subject_en", "body_en")}

    class Meta:
        verbose_name = _("occasion")
        verbose_name_plural = _("occasions")
        ordering = ["-active", "kind", "month", "day", "name"]
        constraints = [
            # One active birthday, family-date and per-festival occasion: nobody is greeted twice for one day.
            models.UniqueConstraint(fields=["kind", "festival"], condition=Q(active=True) & ~Q(kind="custom"),
                                    name="loyalty_occasion_one_active"),
        ]

    def __str__(self):
        return self.name

    @property
    def festival_label(self) -> str:
        return FESTIVALS[self.festival][0] if self.festival in FESTIVALS else ""

    def texts(self, language: str) -> tuple[str, str]:
        """Subject and body in ``language``, else in the other language."""
        order = [language] + [code for code in self.LANGUAGE_FIELDS if code != language]
        for code in order:
            subject_field, body_field = self.LANGUAGE_FIELDS.get(code, (None, None))
            if subject_field and getattr(self, subject_field).strip() and getattr(self, body_field).strip():
                return getattr(self, subject_field), getattr(self, body_field)
        return "", ""


class Greeting(models.Model):
    """One customer greeted for one occasion date: the e-mail (if they may be mailed) and/or the
    owner's task. Unique, so the daily job greets nobody twice however often it runs."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        TASK = "task", _("Task for the account manager")
        BOTH = "both", _("E-mail and task")

    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="greetings")
    occasion = models.ForeignKey(Occasion, verbose_name=_("occasion"), on_delete=models.PROTECT, related_name="greetings")
    occasion_date = models.DateField(_("for the day of"))
    label = models.CharField(_("greeted for"), max_length=100)
    channel = models.CharField(_("channel"), max_length=5, choices=Channel.choices)
    language = models.CharField(_("language"), max_length=10)
    email = models.CharField(_("e-mail"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    sent_at = models.DateTimeField(_("e-mail sent"), null=True, blank=True)
    task = models.ForeignKey("pipeline.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("greeting")
        verbose_name_plural = _("greetings")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["customer", "occasion", "occasion_date"],
                                               name="loyalty_greeting_once")]
        indexes = [models.Index(fields=["occasion", "-occasion_date"], name="loyalty_greeting_occasion"),
                   models.Index(fields=["created_at"], name="loyalty_greeting_unsent",
                                condition=Q(sent_at__isnull=True) & ~Q(channel="task"))]

    def __str__(self):
        return f"{self.customer} · {self.label} · {self.occasion_date}"

    @property
    def wants_email(self) -> bool:
        return self.channel in (self.Channel.EMAIL, self.Channel.BOTH)


class Suggestion(models.Model):
    """R-CAMP-4: the customer travelled at this festival last year and has nothing booked this year."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DISMISSED = "dismissed", _("Dismissed")
        LEAD = "lead", _("Turned into a lead")

    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE,
                                 related_name="holiday_suggestions")
    festival = models.CharField(_("festival"), max_length=20, choices=FESTIVAL_CHOICES)
    year = models.PositiveSmallIntegerField(_("year"))
    break_starts_on = models.DateField(_("break starts"))
    break_ends_on = models.DateField(_("break ends"))
    last_trip = models.ForeignKey("trips.Trip", verbose_name=_("last year's trip"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    last_destination = models.CharField(_("last year's destination"), max_length=120, blank=True)
    last_departed_on = models.DateField(_("last year's departure"), null=True, blank=True)
    destinations = ArrayField(models.CharField(max_length=120), verbose_name=_("suggested destinations"),
                              default=list, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    opportunity = models.ForeignKey("pipeline.Opportunity", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    task = models.ForeignKey("pipeline.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")

    class Meta:
        verbose_name = _("holiday suggestion")
        verbose_name_plural = _("holiday suggestions")
        ordering = ["break_starts_on", "-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["customer", "festival", "year"], name="loyalty_suggestion_once")]
        indexes = [models.Index(fields=["status", "break_starts_on"], name="loyalty_suggestion_status")]

    def __str__(self):
        return f"{self.customer} · {self.get_festival_display()} {self.year}"


class WinBack(models.Model):
    """R-CARE-4: a customer who left (or is leaving), the reason, the offer, the outcome."""

    class Why(models.TextChoices):
        DORMANT = "dormant", _("No trip for a long time")
        DECLINING = "declining", _("Valuable customer, declining")

    class Reason(models.TextChoices):
        PRICE = "price", _("Price")
        SERVICE = "service", _("Service")
        COMPETITOR = "competitor", _("Went to a competitor")
        CHANGED_NEEDS = "changed_needs", _("Moved or needs changed")
        NOT_TRAVELLING = "not_travelling", _("No longer travelling")
        UNKNOWN = "unknown", _("Unknown")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        OFFERED = "offered", _("Offer made")
        WON_BACK = "won_back", _("Won back")
        LOST = "lost", pgettext_lazy("win-back", "Lost")  # not won back (a lost deal is another word in Chinese)

    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="win_backs")
    identified_at = models.DateTimeField(_("identified"), default=timezone.now)
    why = models.CharField(_("identified because"), max_length=10, choices=Why.choices)
    trips_before = models.PositiveIntegerField(_("trips until then"), default=0)
    last_trip_on = models.DateField(_("last trip"), null=True, blank=True)
    reason = models.CharField(_("reason for leaving"), max_length=15, choices=Reason.choices, blank=True)
    reason_note = models.TextField(_("what the customer said"), blank=True)
    reason_recorded_at = models.DateTimeField(null=True, blank=True)
    reason_recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="+")
    offer = models.TextField(_("offer"), blank=True)
    offer_value = models.DecimalField(_("offer value"), null=True, blank=True, **MONEY)
    offered_at = models.DateTimeField(_("offered"), null=True, blank=True)
    offered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", help_text=_("Empty when the customer's new trip closed it."))
    won_trip = models.ForeignKey("trips.Trip", verbose_name=_("trip that won them back"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    task = models.ForeignKey("pipeline.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    OPEN_STATUSES = (Status.OPEN, Status.OFFERED)

    class Meta:
        verbose_name = _("win-back case")
        verbose_name_plural = _("win-back cases")
        ordering = ["-identified_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["customer"], condition=Q(status__in=["open", "offered"]),
                                               name="loyalty_winback_one_open")]
        indexes = [models.Index(fields=["status", "-identified_at"], name="loyalty_winback_status"),
                   models.Index(fields=["customer", "-identified_at"], name="loyalty_winback_customer")]

    def __str__(self):
        return f"{self.customer} · {self.get_status_display()}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class Referral(models.Model):
    """R-CARE-5: ``referrer`` brought ``referred`` to us. Qualified by the referred customer's first
    confirmed trip; the referrer's reward is recorded when given."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a first trip")
        QUALIFIED = "qualified", _("Qualified: reward due")
        REWARDED = "rewarded", _("Rewarded")

    referrer = models.ForeignKey(Customer, verbose_name=_("referred by"), on_delete=models.CASCADE,
                                 related_name="referrals_made")
    referred = models.OneToOneField(Customer, verbose_name=_("referred customer"), on_delete=models.CASCADE,
                                    related_name="referral")
    note = models.CharField(_("note"), max_length=300, blank=True)
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    qualified_at = models.DateTimeField(_("qualified"), null=True, blank=True)
    qualifying_trip = models.ForeignKey("trips.Trip", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reward_description = models.CharField(_("reward"), max_length=300, blank=True)
    reward_value = models.DecimalField(_("reward value"), null=True, blank=True, **MONEY)
    rewarded_at = models.DateTimeField(_("rewarded"), null=True, blank=True)
    rewarded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    task = models.ForeignKey("pipeline.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["-recorded_at", "-id"]
        constraints = [models.CheckConstraint(condition=~Q(referrer=F("referred")), name="loyalty_referral_not_self")]
        indexes = [models.Index(fields=["referrer"], name="loyalty_referral_referrer"),
                   models.Index(fields=["status"], name="loyalty_referral_status")]

    def __str__(self):
        return f"{self.referrer} → {self.referred}"
