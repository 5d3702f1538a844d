"""Tenancy plumbing: which agency is active, and the fences that fail closed without one.

django-tenants sets ``connection.tenant`` per request (middleware) and per task
(tenant-schemas-celery). Everything here reads that one source of truth rather than keeping a
second "current agency" that could drift from the schema actually in use.
"""
from django.db import connection
from django_tenants.utils import get_public_schema_name


class NoAgencyError(RuntimeError):
    """Raised when agency-scoped work is attempted while no agency is active (public schema)."""


class AgencyActiveError(RuntimeError):
    """Raised when platform work (a :class:`~caravan.tenancy.tasks.PlatformTask`) would run inside an
    agency's schema instead of the public one."""


def current_agency():
    """The active agency, or None on the platform (public) schema."""
    tenant = getattr(connection, "tenant", None)
    if tenant is None or connection.schema_name == get_public_schema_name():
        return None
    return tenant


def require_agency():
    agency = current_agency()
    if agency is None:
        raise NoAgencyError("This needs an active agency, but the connection is on the public schema.")
    return agency


def agency_writable() -> bool:
    """May work that staff queued (an import, a campaign's sending) write now? Read fresh from the
    database: a worker keeps the agency it loaded for a while, and a suspension must stop queued
    work at once, as the read-only middleware stops requests."""
    from tenants.models import Agency

    status = Agency.objects.filter(pk=require_agency().pk).values_list("status", flat=True).first()
    return status is not None and status not in Agency.READ_ONLY_STATUSES
