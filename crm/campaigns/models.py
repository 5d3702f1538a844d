"""Marketing consent and e-mail campaigns (R-CAMP-2, R-CAMP-3)."""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.models import Contact, Customer

LANGUAGES = ("zh-hans", "en")


class Consent(models.Model):
    """A customer's consent to marketing e-mail. No row, or ``email_opt_in`` false: never mailed.

    An unsubscribe or a hard bounce is recorded here and wins over the opt-in until the customer
    opts in again (which clears both)."""

    class Source(models.TextChoices):
        STAFF = "staff", _("Recorded by staff")
        FORM = "form", _("Web form")
        IMPORT = "import", _("Import")
        API = "api", _("API")
        PORTAL = "portal", _("The customer, in the portal")

    customer = models.OneToOneField(Customer, primary_key=True, on_delete=models.CASCADE, related_name="consent")
    email_opt_in = models.BooleanField(_("marketing e-mail"), default=False)
    opted_in_at = models.DateTimeField(_("opted in"), null=True, blank=True)
    source = models.CharField(_("consent given via"), max_length=10, choices=Source.choices, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed"), null=True, blank=True)
    bounced_at = models.DateTimeField(_("e-mail bounced"), null=True, blank=True)
    bounce_reason = models.CharField(_("bounce reason"), max_length=300, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("marketing consent")
        verbose_name_plural = _("marketing consents")

    @property
    def may_email(self) -> bool:
        return self.email_opt_in and self.unsubscribed_at is None and self.bounced_at is None


class EmailTemplate(models.Model):
    """Subject and body of a campaign e-mail, in Chinese and English, with personal fields such as
    ``{{ first_name }}`` (``crm.campaigns.rendering.FIELDS``). Plain text: the HTML part is made from
    it when sending (links become tracked links)."""

    name = models.CharField(_("name"), max_length=120)
    subject_zh = models.CharField(_("subject (Chinese)"), max_length=200, blank=True)
    body_zh = models.TextField(_("body (Chinese)"), blank=True)
    subject_en = models.CharField(_("subject (English)"), max_length=200, blank=True)
    body_en = models.TextField(_("body (English)"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("e-mail template")
        verbose_name_plural = _("e-mail templates")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["name"], name="campaigns_template_name_unique")]

    def __str__(self):
        return self.name

    def content(self) -> dict:
        """``{language: {"subject", "body"}}`` for the languages that are written."""
        out = {}
        for language, suffix in (("zh-hans", "zh"), ("en", "en")):
            subject, body = getattr(self, f"subject_{suffix}"), getattr(self, f"body_{suffix}")
            if subject.strip() and body.strip():
                out[language] = {"subject": subject, "body": body}
        return out


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")

    name = models.CharField(_("name"), max_length=150)
    segment = models.ForeignKey("segments.Segment", verbose_name=_("segment"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="campaigns")
    template = models.ForeignKey(EmailTemplate, verbose_name=_("e-mail template"), on_delete=models.PROTECT,
                                 related_name="campaigns")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    control_share = models.PositiveSmallIntegerField(
        _("control group (%)"), default=0, validators=[MinValueValidator(0), MaxValueValidator(50)],
        help_text=_("Share of the audience held out at random and not mailed, to measure the lift (0–50 %)."))
    attribution_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"), default=30, validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("Trips confirmed this many days after the e-mail count for the campaign."))
    cost = models.DecimalField(_("cost"), max_digits=12, decimal_places=2, default=0)
    from_name = models.CharField(_("sender name"), max_length=100, blank=True,
                                 help_text=_("Shown as the sender; the agency's name if empty."))
    reply_to = models.EmailField(_("reply-to address"), blank=True,
                                 help_text=_("Where replies go, e.g. the agency's service mailbox."))
    rate_per_second = models.PositiveSmallIntegerField(
        _("sending rate (e-mails per second)"), default=300, validators=[MinValueValidator(1), MaxValueValidator(2000)])
    # Frozen when the campaign starts: what was sent does not change when the segment or template does.
    definition = models.JSONField(_("segment filters when started"), default=dict, blank=True, editable=False)
    content = models.JSONField(_("template when started"), default=dict, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    # Set by the sending worker after every batch; the minute job resumes a send whose worker went quiet.
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaigns_campaign_due")]

    def __str__(self):
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.SCHEDULED)


class Recipient(models.Model):
    """One customer of a started campaign: in the send group (mailed once) or the control group
    (held out, never mailed, measured all the same)."""

    class Group(models.TextChoices):
        SEND = "send", _("Send group")
        CONTROL = "control", _("Control group")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        BOUNCED = "bounced", _("Bounced")
        SKIPPED = "skipped", _("Skipped")
        HELD = "held", _("Held out (control group)")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="campaign_recipients")
    email = models.EmailField(_("e-mail"))
    language = models.CharField(_("language"), max_length=10)
    group = models.CharField(_("group"), max_length=7, choices=Group.choices)
    status = models.CharField(_("status"), max_length=7, choices=Status.choices)
    # A worker's claim on a pending row (see crm.campaigns.sending); cleared when the row is settled.
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed"), null=True, blank=True)
    bounced_at = models.DateTimeField(_("bounced"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    contact = models.OneToOneField(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   editable=False)

    class Meta:
        verbose_name = _("recipient")
        verbose_name_plural = _("recipients")
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "customer"], name="campaigns_recipient_once")]
        indexes = [
            models.Index(fields=["campaign", "id"], condition=models.Q(status="pending"),
                         name="campaigns_recipient_pending"),
            models.Index(fields=["customer"], name="campaigns_recipient_customer"),
            models.Index(fields=["campaign", "email"], name="campaigns_recipient_email"),
        ]
