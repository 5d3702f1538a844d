"""Agencies (tenants) and their domains. Public schema.

Public tables never hold foreign keys into tenant tables: an agency's staff, customers and
everything else live in its own schema and point nowhere outside it.
"""
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.utils import get_public_schema_name, schema_exists

from caravan.tenancy.scoping import AgencyScopedManager

SLUG_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?$")
RESERVED_SLUGS = frozenset(
    """www api admin static media assets app apps console operator operators platform public
    mail email smtp imap pop ftp ssh status help support docs blog billing login logout auth
    account accounts signup register dashboard cdn test demo template agency_template root
    system internal localhost caravan webhook webhooks""".split()
)


def validate_slug(slug: str) -> None:
    """DNS-safe label (a-z, 0-9, hyphen; starts with a letter; 2–30 chars) and not reserved."""
    if not SLUG_RE.match(slug or "") or len(slug) < 2 or "--" in slug:
        raise ValidationError(
            _("Use 2–30 lowercase letters, digits or single hyphens, starting with a letter."),
            code="invalid_slug",
        )
    if slug in RESERVED_SLUGS:
        raise ValidationError(_("“%(slug)s” is reserved; choose another name."), code="reserved_slug", params={"slug": slug})


def validate_time_zone(value: str) -> None:
    import zoneinfo

    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Unknown time zone; use a name such as Asia/Shanghai."), code="invalid_time_zone")


def validate_region(value: str) -> None:
    import phonenumbers

    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(_("Use a two-letter country code such as CN."), code="invalid_region")


def validate_currency(value: str) -> None:
    if not re.fullmatch(r"[A-Z]{3}", value or ""):
        raise ValidationError(_("Use a three-letter currency code such as CNY."), code="invalid_currency")


class AgencyQuerySet(models.QuerySet):
    def agencies(self):
        """Real agencies: everything but the public (platform) row."""
        return self.exclude(schema_name=get_public_schema_name())

    def live(self):
        """Agencies whose scheduled work should run."""
        return self.agencies().filter(status__in=Agency.LIVE_STATUSES)


class Agency(TenantMixin):
    class Status(models.TextChoices):
        TRIAL = "trial", _("Trial")
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Past due")
        SUSPENDED = "suspended", _("Suspended")
        CANCELLED = "cancelled", _("Cancelled")
        DELETION_SCHEDULED = "deletion_scheduled", _("Scheduled for deletion")

    class Plan(models.TextChoices):
        STARTER = "starter", _("Starter")
        PROFESSIONAL = "professional", _("Professional")
        ENTERPRISE = "enterprise", _("Enterprise")

    LIVE_STATUSES = (Status.TRIAL, Status.ACTIVE, Status.PAST_DUE)
    READ_ONLY_STATUSES = (Status.SUSPENDED, Status.CANCELLED, Status.DELETION_SCHEDULED)

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=30, unique=True, validators=[validate_slug])
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.TRIAL)
    # A code of billing's Plan table (operator-defined); ``Plan`` above are the codes offered before
    # any plan is defined there.
    plan = models.CharField(_("plan"), max_length=40, default=Plan.STARTER)
    trial_ends_at = models.DateTimeField(_("trial ends"), null=True, blank=True)
    # Agency settings that staff-facing code reads every day.
    default_region = models.CharField(
        _("default phone region"), max_length=2, default="CN", validators=[validate_region],
        help_text=_("Two-letter country code used to read phone numbers written without +country code."),
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY", validators=[validate_currency])
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_time_zone])
    language = models.CharField(_("default language"), max_length=10, choices=settings.LANGUAGES, default="zh-hans")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # Set while the agency is scheduled for deletion: the day the purge job drops it (tenants.portability).
    deletion_due_at = models.DateTimeField(_("to be deleted on"), null=True, blank=True)
    # Admins always need a second factor (accounts.mfa); with this on, every staff member does.
    require_two_factor = models.BooleanField(
        _("require two-step sign-in for all staff"), default=False, db_default=False,
        help_text=_("Admins always sign in with a second step; this asks it of everyone."))

    auto_create_schema = True
    auto_drop_schema = False  # dropping is an explicit, confirmed operator action

    objects = AgencyQuerySet.as_manager()

    class Meta:
        verbose_name = _("agency")
        verbose_name_plural = _("agencies")
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def plan_name(self) -> str:
        from billing.models import Plan as BillingPlan

        plan = BillingPlan.objects.filter(code=self.plan).only("name").first()
        if plan is not None:
            return plan.name
        return str(self.Plan(self.plan).label) if self.plan in self.Plan.values else self.plan

    @property
    def is_read_only(self) -> bool:
        return self.status in self.READ_ONLY_STATUSES

    @property
    def is_platform(self) -> bool:
        return self.schema_name == get_public_schema_name()

    def create_schema(self, check_if_exists=False, sync_schema=True, verbosity=1):
        """Called by ``save()`` for a new agency: replay the template snapshot (see schemas.py)."""
        from .schemas import create_agency_schema

        if check_if_exists and schema_exists(self.schema_name):
            return False
        if sync_schema:
            self.schema_method = create_agency_schema(
                self.schema_name, method=getattr(self, "schema_method", "auto"), verbosity=verbosity
            )
        return True

    def url(self, path: str = "/") -> str:
        port = f":{settings.PLATFORM_PORT}" if settings.PLATFORM_PORT else ""
        return f"{settings.PLATFORM_SCHEME}://{self.get_primary_domain().domain}{port}{path}"


class Domain(DomainMixin):
    class Meta:
        verbose_name = _("domain")
        verbose_name_plural = _("domains")


class AgencyEvent(models.Model):
    """What happened to an agency on the platform side: onboarded, suspended, reactivated…

    A shared table keyed by agency, so ``objects`` is scoped: inside an agency it shows that
    agency's events only, and without one it refuses; the console uses ``unscoped()``.
    """

    class Kind(models.TextChoices):
        ONBOARDED = "onboarded", _("Onboarded")
        SUSPENDED = "suspended", _("Suspended")
        REACTIVATED = "reactivated", _("Reactivated")
        SETTINGS_CHANGED = "settings_changed", _("Settings changed")
        DELETION_SCHEDULED = "deletion_scheduled", _("Deletion scheduled")
        DELETION_CANCELLED = "deletion_cancelled", _("Deletion cancelled")
        EXPORT_REQUESTED = "export_requested", _("Export requested")
        EXPORT_DOWNLOADED = "export_downloaded", _("Export downloaded")
        RESTORED = "restored", _("Restored from an export")

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    actor = models.CharField(max_length=254, help_text="E-mail of the operator or staff member, or 'system'.")
    note = models.TextField(blank=True)
    # A note the system wrote: its kind and params (caravan.texts), shown in the reader's language.
    text_kind = models.CharField(max_length=40, blank=True, default="", db_default="", editable=False)
    text_params = models.JSONField(default=dict, blank=True, editable=False,
                                   db_default=models.Value({}, output_field=models.JSONField()))
    at = models.DateTimeField(default=timezone.now)

    objects = AgencyScopedManager()

    @property
    def note_shown(self) -> str:
        from caravan import texts

        return texts.display(self.text_kind, self.text_params, self.note)

    class Meta:
        ordering = ["-at"]


def event_text(kind: str, /, **params) -> dict:
    """``AgencyEvent(..., **event_text(kind, …))``: a note the system writes, as kind + params (shown in the
    reader's language) and its English rendering as the stored fallback."""
    from django.utils import translation

    from caravan import texts

    text_kind, text_params = texts.store(kind, **params)
    with translation.override("en"):
        return {"text_kind": text_kind, "text_params": text_params, "note": texts.render(text_kind, text_params)}

