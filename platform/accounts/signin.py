"""Sign-in protection with django-axes: lockout per account and per client address.

- Where: every ``authenticate(request, …)`` (the staff and operators' log-in page, ``POST
  auth/token/``) goes through ``axes.backends.AxesStandaloneBackend``; the password reset and the
  invitation/reset links are rate limited per address (and per e-mail) with ``caravan.clients``.
- Key: the account (e-mail, lower-cased) and, separately, the client address as Caravan's own
  proxies saw it (``caravan.clients.request_address``: an invented X-Forwarded-For changes nothing).
- Per agency: axes' tables are in every agency schema (and public, for operators), so failures at
  one agency never lock the same e-mail or address at another.
- Admins see who is locked out on the Staff page and unlock; operators do so in the console.
"""
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.db.models import Max, Sum
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from caravan.api.errors import error_response
from caravan.tenancy import current_agency


def cool_off() -> timedelta:
    return timedelta(minutes=settings.SIGNIN_LOCKOUT_MINUTES)


def username_of(request, credentials: dict | None) -> str:
    """AXES_USERNAME_CALLABLE: the e-mail as log-in compares it (trimmed, lower case)."""
    if credentials:
        value = credentials.get("username") or credentials.get("email")
    else:
        data = getattr(request, "data", None) or request.POST
        value = data.get("username") or data.get("email")
    return str(value or "").strip().lower()[:255] or None


def _recent():
    from axes.models import AccessAttempt

    return AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - cool_off())


def retry_after(*, username: str | None, ip_address: str | None) -> int:
    """Seconds until neither this account nor this address is locked any more (at least 1)."""
    from django.db.models import Q

    match = Q(pk__in=[])
    if username:
        match |= Q(username=username)
    if ip_address:
        match |= Q(ip_address=ip_address)
    last = _recent().filter(match).aggregate(last=Max("attempt_time"))["last"]
    if last is None:
        return 1
    return max(1, int((last + cool_off() - timezone.now()).total_seconds()) + 1)


def lockout_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    whom = (_("another operator can unlock it in the console") if current_agency() is None
            else _("your agency admin can unlock it on the Staff page"))
    return ngettext(
        "Too many failed sign-ins: signing in to this account or from this address is paused for %(minutes)d "
        "minute. Wait, then try again with the right password (or reset it), or ask for help: %(whom)s.",
        "Too many failed sign-ins: signing in to this account or from this address is paused for %(minutes)d "
        "minutes. Wait, then try again with the right password (or reset it), or ask for help: %(whom)s.",
        minutes) % {"minutes": minutes, "whom": whom}


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the log-in page again with the message, or the API's error body; 429
    and Retry-After either way."""
    from frontend.views.account import SignInForm

    seconds = retry_after(username=username_of(request, credentials),
                          ip_address=getattr(request, "axes_ip_address", None))
    message = lockout_message(seconds)
    if request.path.startswith("/api/"):
        response = error_response("locked_out", message, 429)
    else:
        response = render(request, "registration/login.html",
                          {"form": SignInForm(request), "locked_out": message,
                           "next": request.POST.get("next", "")}, status=429)
    response["Retry-After"] = str(seconds)
    return response


def locked_out() -> list[dict]:
    """Accounts and addresses locked out now in the active schema, for the unlock lists."""
    limit = settings.SIGNIN_FAILURE_LIMIT
    rows = []
    for kind, field in (("account", "username"), ("address", "ip_address")):
        groups = (_recent().exclude(**{f"{field}__isnull": True}).values(field)
                  .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
                  .filter(failures__gte=limit).order_by("-last"))
        for group in groups:
            if not group[field]:
                continue
            rows.append({"kind": kind, "value": group[field], "failures": group["failures"],
                         "until": group["last"] + cool_off()})
    return rows


def record_failure(request, username: str) -> bool:
    """Count a failed step of signing in that is not a password (a wrong second-factor code) like a
    wrong password: per account and per address. ``request`` is Django's (``drf_request._request``).
    Returns True when this failure locked the account or address (answer with ``lockout_response``)."""
    from django.contrib.auth.signals import user_login_failed

    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
    return bool(getattr(request, "axes_locked_out", False))


def is_locked(request, username: str) -> bool:
    """Is this account or the request's address locked out now (before checking anything else)?"""
    from axes.handlers.proxy import AxesProxyHandler

    return AxesProxyHandler.is_locked(request, {"username": username})


def forget_failures_of(sender, request, user, **kwargs):
    """A successful sign-in clears that account's failures, not its address's: otherwise anyone with one
    account could sign in to it between guesses at others and never be locked out by address."""
    from axes.handlers.proxy import AxesProxyHandler

    AxesProxyHandler.reset_attempts(username=user.get_username().strip().lower())


def signin_unlock(*, kind: str, value: str) -> int:
    """Forget the failures of one account (``kind="account"``) or address (``"address"``) in the active
    schema. The caller checks who may (staff managers; operators on the platform domain)."""
    from axes.handlers.proxy import AxesProxyHandler

    if kind == "account":
        return AxesProxyHandler.reset_attempts(username=value.strip().lower())
    if kind == "address":
        try:
            validate_ipv46_address(value.strip())
        except ValidationError:
            return 0  # not an address: nothing is locked under it
        return AxesProxyHandler.reset_attempts(ip_address=value.strip())
    raise ValueError(kind)
