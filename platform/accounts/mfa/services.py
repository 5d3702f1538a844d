"""Two-step sign-in, the sessions list and new-device mail (docs/two-step-sign-in.md).

Devices are django-otp's (``TOTPDevice``, ``StaticDevice`` for recovery codes) and
django-otp-webauthn's passkeys (``WebAuthnCredential``), in the schema of the user they belong to:
operators' in ``public``, staff's in their agency's schema, so a device of one agency finds no user
at another. A session is *signed in* once ``user.is_verified()`` (the second step passed) or, for
someone with no device who need not have one, right after the password.
"""
import logging
import secrets
import time

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.middleware import OTPMiddleware
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.roles import Cap
from caravan.tenancy import current_agency

from .models import KnownDevice, SessionRecord

try:
    from caravan.clients import client_address
except ImportError:  # pragma: no cover - before caravan.clients existed
    from crm.pipeline.intake import client_address

log = logging.getLogger(__name__)

RECOVERY_CODES = 10
TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
DEVICE_COOKIE = "caravan_device"
DEVICE_SALT = "caravan.mfa.device"
DEVICE_COOKIE_AGE = 2 * 365 * 24 * 3600
# The sessions list's "last seen" is written at most this often per session.
TOUCH_SECONDS = 300
# Session keys (besides django-otp's ``otp_device_id``).
RECORD_KEY = "mfa_record"  # the session key our SessionRecord holds
SEEN_KEY = "mfa_seen"  # when we last wrote last_seen (epoch seconds)
NO_DEVICE_KEY = "mfa_no_device"  # this user had no device when the session signed in


# --- who needs what ---------------------------------------------------------------------------------

def second_factor_required(user) -> bool:
    """Operators and agency admins always; everyone when their agency asks for it."""
    if not user.is_authenticated:
        return False
    if user.is_operator or user.can(Cap.STAFF_MANAGE) or user.can(Cap.SETTINGS_MANAGE):
        return True
    agency = current_agency()
    return bool(agency and agency.require_two_factor)


def has_device(user) -> bool:
    return user_has_device(user, confirmed=True)


def sign_in_state(request) -> str:
    """``anonymous``; ``verify`` (password done, second step due); ``enrol`` (a second step is
    required but the user has no device yet); ``done`` (signed in)."""
    user = request.user
    if not user.is_authenticated:
        return "anonymous"
    if not hasattr(user, "is_verified"):  # signed in during this request: OTPMiddleware ran before
        OTPMiddleware(lambda r: None)._verify_user_sync(request, user)
    if user.is_verified():
        return "done"
    required = second_factor_required(user)
    if request.session.get(NO_DEVICE_KEY) and not required:
        return "done"
    if has_device(user):
        return "verify"
    if required:
        return "enrol"
    request.session[NO_DEVICE_KEY] = True
    return "done"


# --- devices ----------------------------------------------------------------------------------------

def confirmed_totp(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def totp_pending(*, user) -> TOTPDevice:
    """The authenticator-app device being set up (unconfirmed), made once and shown until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)


def totp_uri(device: TOTPDevice, *, issuer: str) -> str:
    from urllib.parse import quote, urlencode

    label = quote(f"{issuer}:{device.user.email}")
    query = urlencode({"secret": manual_key(device), "issuer": issuer, "digits": device.digits,
                       "period": device.step, "algorithm": "SHA1"})
    return f"otpauth://totp/{label}?{query}"


def manual_key(device: TOTPDevice) -> str:
    from base64 import b32encode

    return b32encode(device.bin_key).decode().rstrip("=")


def recovery_codes_make(*, user) -> list[str]:
    """A fresh set of single-use recovery codes; the old ones stop working. Shown once."""
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
        StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def totp_confirm(*, request, device: TOTPDevice, code: str) -> list[str]:
    """Confirm the app with a first code; the session is then verified with it. Returns the new
    recovery codes (to be shown once)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=request.user)
        if not _verify_device(device, code):
            raise ValidationError({"code": [_("That code is not right. Enter the code your app shows now.")]})
        TOTPDevice.objects.filter(user=request.user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = recovery_codes_make(user=request.user)
    otp_login(request, device)
    request.session.pop(NO_DEVICE_KEY, None)
    return codes


def totp_disable(*, user, code: str) -> None:
    """Turning the app off takes a current code from it (or a recovery code)."""
    device = confirmed_totp(user)
    if device is None:
        return
    if verify_code(user=user, code=code) is None:
        raise ValidationError({"code": [_("That code is not right.")]})
    with transaction.atomic():
        device.delete()
        _tidy(user)


def passkeys(user):
    return WebAuthnCredential.objects.filter(user=user).order_by("created_at")


def passkey_remove(*, user, pk: int) -> None:
    with transaction.atomic():
        deleted, _ = WebAuthnCredential.objects.filter(user=user, pk=pk).delete()
        if not deleted:
            raise ValidationError(_("No such passkey."))
        _tidy(user)


def _tidy(user) -> None:
    """Recovery codes only stand in for a device: with neither app nor passkey left, they go too."""
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists() and not passkeys(user).exists():
        StaticDevice.objects.filter(user=user).delete()


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user).count()


def _verify_device(device, code: str) -> bool:
    """django-otp's check: throttled after failures, and a TOTP code (a time step) counts once."""
    token = "".join((code or "").split()).replace("-", "").lower()
    if not token:
        return False
    with transaction.atomic():
        device = type(device).objects.select_for_update().get(pk=device.pk)
        return device.verify_token(token)


def verify_code(*, user, code: str):
    """The device that accepts this code (an app code or a recovery code, which is then used up), or None."""
    token = "".join((code or "").split()).replace("-", "")
    candidates = [d for d in devices_for_user(user, confirmed=True)
                  if isinstance(d, (TOTPDevice if token.isdigit() and len(token) <= 8 else StaticDevice))]
    for device in candidates:
        if _verify_device(device, token):
            return device
    return None


def verify_request(*, request, code: str):
    """The second step of a sign-in: the session is verified with the device that took the code."""
    device = verify_code(user=request.user, code=code)
    if device is None:
        raise ValidationError({"code": [_("That code is not right, or it was already used. Wait for the next "
                                          "code and try again.")]})
    otp_login(request, device)
    return device


def second_factor_reset(*, actor, user) -> None:
    """An admin clears someone's devices (lost phone): they enrol again at their next sign-in.
    Their sessions end, so nobody keeps a session verified with the old device."""
    if user.pk == actor.pk:
        raise ValidationError(_("You cannot reset your own two-step sign-in; ask another admin."))
    with transaction.atomic():
        for model in (TOTPDevice, StaticDevice, WebAuthnCredential):
            model.objects.filter(user=user).delete()
        sessions_end_all(user=user)
    log.info("second factor reset for user %s by user %s", user.pk, actor.pk)


# --- sessions ---------------------------------------------------------------------------------------

def describe_agent(agent: str) -> str:
    """'Chrome 120 · Windows 10' from a user agent string."""
    if not agent:
        return ""
    from user_agents import parse

    parsed = parse(agent[:512])
    browser = " ".join(p for p in (parsed.browser.family, parsed.browser.version_string.split(".")[0]) if p)
    system = " ".join(p for p in (parsed.os.family, parsed.os.version_string) if p)
    if parsed.browser.family == "Other" and parsed.os.family == "Other":
        return agent[:120]
    return f"{browser} · {system}" if system else browser  # stored, so no language of its own


def session_seen(request, response) -> None:
    """Bookkeeping for a signed-in request: the session's record (made on its first signed-in
    request, its key followed when Django cycles it, ``last_seen`` written at most every
    ``TOUCH_SECONDS``), and on that first request the device check and mail."""
    session = request.session
    key = session.session_key
    if not key:
        return
    now = time.time()
    recorded = session.get(RECORD_KEY)
    if recorded == key and now - session.get(SEEN_KEY, 0) < TOUCH_SECONDS:
        return
    user = request.user
    stamp = timezone.now()
    if recorded is None:
        record, _ = SessionRecord.objects.update_or_create(session_key=key, defaults={
            "user": user, "device": describe_agent(request.META.get("HTTP_USER_AGENT", "")),
            "address": client_address(request.META, settings.PROXY_COUNT)[:64],
            "first_seen": stamp, "last_seen": stamp})
        _device_check(request, response, record)
    else:
        if recorded != key:
            SessionRecord.objects.filter(session_key=recorded, user=user).update(session_key=key)
        updated = SessionRecord.objects.filter(session_key=key, user=user).update(
            last_seen=stamp, address=client_address(request.META, settings.PROXY_COUNT)[:64])
        if not updated:  # the record went (signed out elsewhere races, old data): make it again
            SessionRecord.objects.update_or_create(session_key=key, defaults={
                "user": user, "device": describe_agent(request.META.get("HTTP_USER_AGENT", "")),
                "address": client_address(request.META, settings.PROXY_COUNT)[:64], "last_seen": stamp})
    session[RECORD_KEY] = key
    session[SEEN_KEY] = now


def _device_check(request, response, record: SessionRecord) -> None:
    """A browser that never signed in as this user: remember it (signed cookie) and mail the user."""
    from .tasks import new_device_mail, new_device_mail_platform

    user = request.user
    device_id = request.get_signed_cookie(DEVICE_COOKIE, default=None, salt=DEVICE_SALT)
    if device_id and KnownDevice.objects.filter(user=user, device_id=device_id).update(last_seen=timezone.now()):
        return
    device_id = device_id or secrets.token_urlsafe(24)
    KnownDevice.objects.get_or_create(user=user, device_id=device_id)
    response.set_signed_cookie(DEVICE_COOKIE, device_id, salt=DEVICE_SALT, max_age=DEVICE_COOKIE_AGE,
                               httponly=True, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)
    SessionRecord.objects.filter(pk=record.pk).update(new_device=True)
    if current_agency() is None:
        new_device_mail_platform.delay(record.pk)  # PlatformTask: sent on commit
    else:
        new_device_mail.delay(record.pk)  # AgencyTask: sent on commit


def new_device_mail_send(*, record_id: int, agency) -> bool:
    """Mail the user about a sign-in from a new device, once (claimed before sending)."""
    from caravan.mail import mail_each

    with transaction.atomic():
        claimed = SessionRecord.objects.filter(pk=record_id, new_device=True, mailed_at__isnull=True).update(
            mailed_at=timezone.now())
        if not claimed:
            return False
        record = SessionRecord.objects.select_related("user").get(pk=record_id)
        path = "/accounts/security/"
        if agency is not None:
            url = agency.url(path)
        else:
            port = f":{settings.PLATFORM_PORT}" if settings.PLATFORM_PORT else ""
            url = f"{settings.PLATFORM_SCHEME}://{settings.PLATFORM_DOMAIN}{port}{path}"
        zone = agency.time_zone if agency is not None else settings.TIME_ZONE
        mail_each([record.user], template="mfa/email/new_device", agency=agency,
                  context={"record": record, "url": url, "time_zone": zone})
    return True


def sessions_for(*, user):
    """The user's live sessions, most recent first (records of ended sessions are dropped here)."""
    live = Session.objects.filter(expire_date__gt=timezone.now()).values("session_key")
    SessionRecord.objects.filter(user=user).exclude(session_key__in=live).delete()
    return SessionRecord.objects.filter(user=user)


def session_end(*, user, record_id: int) -> None:
    record = SessionRecord.objects.filter(user=user, pk=record_id).first()
    if record is None:
        raise ValidationError(_("No such session."))
    with transaction.atomic():
        Session.objects.filter(session_key=record.session_key).delete()
        record.delete()


def sessions_end_others(*, user, keep: str | None) -> int:
    """Sign the user out everywhere but ``keep`` (this browser's session key)."""
    keys = set(SessionRecord.objects.filter(user=user).values_list("session_key", flat=True))
    # Sessions that have not been used since records began have none: found by reading them.
    unrecorded = Session.objects.filter(expire_date__gt=timezone.now()).exclude(
        session_key__in=SessionRecord.objects.values("session_key"))
    keys |= {s.session_key for s in unrecorded.iterator() if s.get_decoded().get("_auth_user_id") == str(user.pk)}
    keys.discard(keep)
    with transaction.atomic():
        deleted, _ = Session.objects.filter(session_key__in=keys).delete()
        SessionRecord.objects.filter(user=user, session_key__in=keys).delete()
    return deleted


def sessions_end_all(*, user) -> int:
    return sessions_end_others(user=user, keep=None)
