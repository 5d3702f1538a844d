"""Agency lifecycle: onboard, change settings, suspend, reactivate, delete. Public schema.

Every function here is the one path for its action, whether it comes from the operator
console, the operator API or ``manage.py onboard_agency``.
"""
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, schema_context, schema_exists, tenant_context

from accounts.roles import Role

from .models import Agency, AgencyEvent, Domain, event_text, validate_slug

TRIAL_DAYS = 14


@dataclass(frozen=True)
class Onboarded:
    agency: Agency
    admin_email: str
    invitation_url: str


def offered_plans() -> dict[str, str]:
    """Plan code → name: the operators' plans on offer (billing), or the three built-in codes while
    none is defined."""
    from billing.models import Plan

    offered = dict(Plan.objects.filter(active=True).values_list("code", "name"))
    return offered or {code: str(label) for code, label in Agency.Plan.choices}


def _platform_domain() -> str:
    from django.conf import settings

    return settings.PLATFORM_DOMAIN


def agency_onboard(
    *,
    name: str,
    slug: str,
    plan: str,
    admin_email: str,
    admin_name: str = "",
    language: str = "zh-hans",
    actor: str = "system",
    schema_method: str = "auto",
    first_admin: bool = True,
) -> Onboarded:
    """Create an agency in one step: schema (a pooled copy of the template, or its snapshot replayed),
    domain, first admin with an invitation.

    All of it happens in one transaction (PostgreSQL DDL is transactional), so a failure at any
    step leaves no agency row, domain, schema or user behind. ``schema_method`` ("auto", "pool",
    "snapshot", "clone" or "migrate"; tenants/schemas.py) exists for the benches, which compare them. ``first_admin=False``
    makes the agency without its first admin (no e-mail needed, no invitation): a restore brings the
    staff from the archive (tenants.portability).
    """
    from accounts.services import invitation_url, staff_invite

    slug = (slug or "").strip().lower()
    admin_email = (admin_email or "").strip().lower()
    errors: dict[str, list[str]] = {}
    if not (name or "").strip():
        errors["name"] = [_("Enter the agency's name.")]
    try:
        validate_slug(slug)
        if Agency.objects.filter(slug=slug).exists() or schema_exists(slug.replace("-", "_")):
            raise ValidationError(_("An agency with this slug already exists."), code="duplicate_slug")
    except ValidationError as exc:
        errors["slug"] = exc.messages
    if plan not in offered_plans():
        errors["plan"] = [_("Choose one of the plans.")]
    try:
        if first_admin or admin_email:
            validate_email(admin_email)
    except ValidationError:
        errors["admin_email"] = [_("Enter a valid e-mail address.")]
    if errors:
        raise ValidationError(errors)

    connection.set_schema_to_public()
    with transaction.atomic():
        agency = Agency(
            name=name.strip(),
            slug=slug,
            schema_name=slug.replace("-", "_"),
            plan=plan,
            language=language,
            status=Agency.Status.TRIAL,
            trial_ends_at=timezone.now() + timezone.timedelta(days=TRIAL_DAYS),
        )
        agency.schema_method = schema_method
        agency.save()  # creates the schema (Agency.create_schema clones the template)
        Domain.objects.create(domain=f"{slug}.{_platform_domain()}", tenant=agency, is_primary=True)
        AgencyEvent.objects.unscoped().create(agency=agency, kind=AgencyEvent.Kind.ONBOARDED, actor=actor,
                                              **event_text("agency_onboarded", plan=plan, admin=admin_email))
        url = ""
        with tenant_context(agency):
            admin = first_admin and staff_invite(actor=None, email=admin_email, full_name=admin_name or admin_email.split("@")[0],
                                 role=Role.ADMIN, language=language)
            if admin:
                url = invitation_url(admin)
        _refill_schema_pool_on_commit(agency)
    connection.set_schema_to_public()
    return Onboarded(agency=agency, admin_email=admin_email, invitation_url=url)


def _refill_schema_pool_on_commit(agency: Agency) -> None:
    """The agency took a ready schema from the pool (tenants/schemas.py): make another, after commit."""
    from django.conf import settings

    from .tasks import fill_schema_pool

    if settings.SCHEMA_POOL_SIZE > 0 and getattr(agency, "schema_method", "") in ("pool", "snapshot"):
        fill_schema_pool.delay()  # a PlatformTask: sent once the onboarding commits


def agency_update_settings(*, agency: Agency, actor: str, **fields) -> Agency:
    allowed = {"name", "default_region", "currency", "time_zone", "language", "require_two_factor"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"Not agency settings: {sorted(unknown)}")
    for key, value in fields.items():
        setattr(agency, key, value)
    agency.full_clean(exclude=["schema_name", "slug"])
    with schema_context(get_public_schema_name()):
        with transaction.atomic():
            agency.save(update_fields=list(fields))
            AgencyEvent.objects.unscoped().create(agency=agency, kind=AgencyEvent.Kind.SETTINGS_CHANGED, actor=actor,
                                                  **event_text("agency_settings", fields=", ".join(sorted(fields))))
    if "time_zone" in fields:
        _local_clock_jobs_due(agency)
    return agency


def _local_clock_jobs_due(agency: Agency) -> None:
    """The jobs that act at a local hour computed their next run in the old time zone: run them now,
    and they compute the next one in the new zone (tenants/jobs)."""
    from .jobs.services import JOBS, due

    with tenant_context(agency), transaction.atomic():
        for job in ("tiers.assign_nightly", "loyalty.greetings", "care.after_trip"):
            if job in JOBS:
                due(job)


def agency_suspend(*, agency: Agency, actor: str, note: str = "") -> Agency:
    """Make the agency read-only: staff can still sign in and read; every write is refused."""
    if agency.is_platform:
        raise ValidationError(_("The platform itself cannot be suspended."))
    return _set_status(agency, Agency.Status.SUSPENDED, AgencyEvent.Kind.SUSPENDED, actor, note)


def agency_reactivate(*, agency: Agency, actor: str, note: str = "") -> Agency:
    if agency.status == Agency.Status.DELETION_SCHEDULED:
        raise ValidationError(_("Cancel the scheduled deletion before reactivating the agency."))
    status = Agency.Status.TRIAL if agency.trial_ends_at and agency.trial_ends_at > timezone.now() else Agency.Status.ACTIVE
    return _set_status(agency, status, AgencyEvent.Kind.REACTIVATED, actor, note)


def _set_status(agency: Agency, status: str, kind: str, actor: str, note: str) -> Agency:
    with schema_context(get_public_schema_name()), transaction.atomic():
        agency.status = status
        agency.save(update_fields=["status"])  # a save, so the host cache hears of it (tenants.signals)
        AgencyEvent.objects.unscoped().create(agency=agency, kind=kind, actor=actor, note=note)
    return agency


def agency_delete(*, agency: Agency, confirm_slug: str, actor: str) -> None:
    """Delete the agency with its schema and every row in it. Needs the slug typed back."""
    if agency.is_platform:
        raise ValidationError(_("The platform itself cannot be deleted."))
    if confirm_slug != agency.slug:
        raise ValidationError({"confirm_slug": [_("Type the agency's slug exactly to confirm deletion.")]})
    import logging

    from tenants.portability.services import purge

    logging.getLogger("caravan.tenants").info("Agency %s deleted by %s", agency.slug, actor)
    # The same purge as a scheduled deletion: schema, every shared row keyed by the agency (set-based),
    # files, cache entries and export archives, so a later agency given the same slug finds none of it.
    purge(agency=agency, actor=actor)


def platform_ensure(*, domain: str | None = None) -> Agency:
    """The public "tenant" row that maps the platform domain to the operator console."""
    public = get_public_schema_name()
    with schema_context(public):
        platform, _created = Agency.objects.get_or_create(
            schema_name=public,
            defaults={"name": "Caravan", "slug": "platform", "status": Agency.Status.ACTIVE},
        )
        Domain.objects.get_or_create(domain=domain or _platform_domain(),
                                     defaults={"tenant": platform, "is_primary": True})
    return platform
