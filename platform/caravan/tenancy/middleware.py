"""Request-side tenancy: pick the agency by host, then fence what the request may do."""
import sentry_sdk
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_public_schema_name, schema_context

from . import current_agency


HOST_CACHE_SECONDS = 60


def _host_key(hostname: str) -> str:
    return f"tenancy:host:{hostname}"


def forget_hosts(hostnames) -> None:
    """Drop cached host → agency entries (agency or domain changed); again after commit, so a
    request racing the transaction cannot keep the old agency cached."""
    keys = [_host_key(h) for h in hostnames]
    if not keys:
        return

    def forget():
        with schema_context(get_public_schema_name()):  # the keys were written on the public side
            cache.delete_many(keys)

    forget()
    transaction.on_commit(forget)


class AgencyMainMiddleware(TenantMainMiddleware):
    """django-tenants' host → schema switch, with a friendly page for unknown subdomains.

    The agency of a host is cached (Redis, 60 s): looking it up was a quarter of the time of a
    small API call. ``tenants.signals`` drops the entry whenever the agency or its domains change,
    so suspension and deletion still apply at once. Unknown hosts are not cached."""

    def get_tenant(self, domain_model, hostname):
        key = _host_key(hostname)
        agency = cache.get(key)  # connection is on the public schema here
        if agency is None:
            agency = super().get_tenant(domain_model, hostname)
            cache.set(key, agency, HOST_CACHE_SECONDS)
        return agency

    def no_tenant_found(self, request, hostname):
        translation.activate(translation.get_language_from_request(request))
        return render(request, "errors/no_agency.html", {"hostname": hostname}, status=404)


class AgencyContextMiddleware:
    """Puts the agency's time zone and default language in place and tags error reports.

    Language: the person's own choice (cookie, or their account) wins; without one, the agency's
    default language applies rather than the browser's.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        agency = current_agency()
        scope = sentry_sdk.get_isolation_scope()
        if agency is not None:
            timezone.activate(agency.time_zone)
            scope.set_tag("agency", agency.slug)
            if settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
                user = getattr(request, "user", None)
                language = (getattr(user, "language", "") if user and user.is_authenticated else "") or agency.language
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
        else:
            timezone.deactivate()
            scope.set_tag("agency", "platform")
        return self.get_response(request)


# Paths that stay writable for a read-only agency: signing in and out, choosing a language, paying.
_ALWAYS_ALLOWED_PREFIXES = ("/accounts/login/", "/accounts/logout/", "/i18n/", "/accounts/password/",
                            # the second step of signing in, and signing one's other sessions out (accounts.mfa)
                            "/accounts/two-step/", "/accounts/passkeys/authentication/", "/accounts/security/",
                            "/accounts/invitation/", "/api/v1/auth/token/",
                            "/settings/billing/",  # paying must work while suspended
                            "/settings/export/",  # and taking one's data out (R-PLAT-2)
                            # customers signing in and out of the portal, and choosing its language
                            "/portal/sign-in/", "/portal/link/", "/portal/sign-out/", "/portal/language/")


class ReadOnlyAgencyMiddleware:
    """A suspended or cancelled agency can sign in and read; every write is refused, clearly."""

    SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        agency = current_agency()
        if (
            agency is not None
            and agency.is_read_only
            and request.method not in self.SAFE_METHODS
            and not request.path.startswith(_ALWAYS_ALLOWED_PREFIXES)
        ):
            if agency.status == agency.Status.CANCELLED:
                message = _(
                    "This agency's subscription is cancelled: you can sign in, read and export, but "
                    "changes are refused. Please contact your agency administrator or Caravan support."
                )
            else:
                message = _(
                    "This agency is suspended: you can sign in, read and export, but changes are "
                    "refused. Please contact your agency administrator or Caravan support."
                )
            if request.path.startswith("/api/"):
                from caravan.api.errors import error_response

                return error_response("agency_read_only", message, status=403)
            return render(request, "errors/read_only.html", {"message": message}, status=403)
        return self.get_response(request)
