"""Signing customers in without a password, and the agency's portal settings (issue 21).

A customer asks for a link on the sign-in page with an e-mail address; when the address is on a person's
card (``crm.customers.Email``, unique per agency) a ``SignInLink`` is made and mailed: a link and, for mail
clients that open links before the reader does, a six-digit code. Both are single-use, short-lived and
stored hashed; the code allows ``CODE_TRIES`` guesses. Staff send the same e-mail as an invitation from the
card or a trip (longer-lived, opening the trip). What happens for an unknown address is indistinguishable
from a known one: the page always says "if the address is ours, a link is on its way".
"""
import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap
from caravan.clients import rate_hit
from caravan.tenancy import require_agency
from caravan.texts import Text
from crm.customers.models import Contact, Customer, Email
from crm.customers.normalize import email_normal
from crm.customers.services import timeline_add

from .models import PortalSettings, SignInLink

REQUEST_TTL = timedelta(minutes=20)
INVITATION_TTL = timedelta(days=3)
CODE_TRIES = 5
# Links mailed per address and sign-in tries per client address, in a window (caravan.clients.rate_hit).
PER_EMAIL = (3, 15 * 60)
PER_CLIENT = (20, 15 * 60)
SESSION_AGE = 12 * 60 * 60  # a portal session lasts twelve hours


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


class LinkInvalid(Exception):
    """The link or code is unknown, used, expired, or its customer can no longer sign in."""


# --- settings -------------------------------------------------------------------------------------

def portal_settings() -> PortalSettings:
    settings_row = PortalSettings.objects.filter(pk=1).first()
    if settings_row is None:
        settings_row, _created = PortalSettings.objects.get_or_create(pk=1)
    return settings_row


def brand_name(settings_row: PortalSettings | None = None) -> str:
    settings_row = settings_row or portal_settings()
    return settings_row.brand_name or require_agency().name


LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}
LOGO_MAX_BYTES = 300 * 1024


def _logo_type(data: bytes) -> str | None:
    for magic, kind in LOGO_TYPES.items():
        if data.startswith(magic) and (kind != "image/webp" or data[8:12] == b"WEBP"):
            return kind
    return None


@transaction.atomic
def settings_update(*, actor: User, logo: bytes | None = None, remove_logo: bool = False, **fields) -> PortalSettings:
    """Change the portal's settings (admins: ``Cap.SETTINGS_MANAGE``). A logo is PNG, JPEG or WebP up to
    300 KB, recognised by its first bytes (never SVG: it can carry script)."""
    if not actor.can(Cap.SETTINGS_MANAGE):
        raise PermissionDenied
    row = PortalSettings.objects.select_for_update().get(pk=portal_settings().pk)
    for name, value in fields.items():
        setattr(row, name, value)
    errors = {}
    for name in ("primary_colour", "accent_colour"):
        value = (getattr(row, name) or "").strip().lower()
        if len(value) != 7 or value[0] != "#" or any(c not in "0123456789abcdef" for c in value[1:]):
            errors[name] = [_("Give a colour as # and six hexadecimal digits, e.g. #1f5f8b.")]
        setattr(row, name, value)
    if logo is not None:
        kind = _logo_type(logo)
        if len(logo) > LOGO_MAX_BYTES:
            errors["logo"] = [_("The logo is larger than 300 KB.")]
        elif kind is None:
            errors["logo"] = [_("Upload the logo as a PNG, JPEG or WebP image.")]
        else:
            row.logo, row.logo_type = logo, kind
    elif remove_logo:
        row.logo, row.logo_type = None, ""
    if errors:
        raise ValidationError(errors)
    row.full_clean(exclude=["logo"])
    row.save()
    return row


# --- who may sign in --------------------------------------------------------------------------------

def customer_for_email(address: str) -> Customer | None:
    """The person whose card holds ``address``, if they may sign in: a person (a corporate account's
    own address signs nobody in; its bookers sign in as themselves), not merged away."""
    try:
        address = email_normal(address)
    except ValidationError:
        return None
    row = (Email.objects.filter(address=address, customer__kind=Customer.Kind.PERSON,
                                customer__merged_into__isnull=True)
           .select_related("customer").first())
    return row.customer if row else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _code_hash(link_token_hash: str, code: str) -> str:
    return salted_hmac("caravan.portal.code", f"{link_token_hash}:{code}").hexdigest()


def _make_link(customer: Customer, email: str, purpose: str, *, next_path: str = "", sent_by: User | None = None
               ) -> tuple[SignInLink, str, str]:
    # A customer's dead links go when they get a new one (kept a day after they died, for the card's list).
    SignInLink.objects.filter(customer=customer, expires_at__lt=timezone.now() - timedelta(days=1)).delete()
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(10 ** 6):06d}"
    ttl = INVITATION_TTL if purpose == SignInLink.Purpose.INVITATION else REQUEST_TTL
    token_hash = _token_hash(token)
    link = SignInLink.objects.create(customer=customer, email=email, purpose=purpose, token_hash=token_hash,
                                     code_hash=_code_hash(token_hash, code), next_path=next_path, sent_by=sent_by,
                                     expires_at=timezone.now() + ttl)
    return link, token, code


def link_url(token: str) -> str:
    return require_agency().url(reverse("portal:link", args=[token]))


def _send_link(link: SignInLink, token: str, code: str, *, trip=None, note: str = "") -> None:
    agency = require_agency()
    customer = link.customer
    row = portal_settings()
    with translation.override(customer.language or agency.language), timezone.override(agency.time_zone):
        context = {"customer": customer, "agency": agency, "brand": brand_name(row), "portal": row,
                   "url": link_url(token), "code": code, "link": link, "trip": trip, "note": note,
                   "minutes": int(REQUEST_TTL.total_seconds() // 60), "days": INVITATION_TTL.days,
                   "invitation": link.purpose == SignInLink.Purpose.INVITATION}
        subject = render_to_string("portal/email/sign_in_subject.txt", context).strip()
        body = render_to_string("portal/email/sign_in.txt", context)
    message = EmailMultiAlternatives(subject, body, None, [link.email],
                                     reply_to=[row.contact_email] if row.contact_email else None)
    message.send()


def link_request(*, email: str, client: str) -> None:
    """The sign-in page's request. Quietly does nothing for an address that is not on a card (the page
    says the same either way); ``RateLimited`` when this address or client asked too often."""
    wait = rate_hit(f"portal-client:{client}", limit=PER_CLIENT[0], window=PER_CLIENT[1])
    clean = (email or "").strip().lower()
    if not wait and clean:
        wait = rate_hit(f"portal-email:{hashlib.sha256(clean.encode()).hexdigest()}", limit=PER_EMAIL[0],
                        window=PER_EMAIL[1])
    if wait:
        raise RateLimited(wait)
    if not portal_settings().enabled:
        return
    customer = customer_for_email(clean)
    if customer is None:
        return
    with transaction.atomic():
        link, token, code = _make_link(customer, email_normal(clean), SignInLink.Purpose.REQUEST)
    _send_link(link, token, code)
    return link


def invitation_send(*, actor: User, customer: Customer, email: str = "", trip=None, note: str = "") -> SignInLink:
    """Staff invite a customer into the portal (from the card: ``Cap.CUSTOMERS_EDIT``; from a trip:
    ``Cap.PIPELINE_WORK``). Only to an address on the customer's card; the link opens ``trip`` if given."""
    if not (actor.can(Cap.CUSTOMERS_EDIT) or (trip is not None and actor.can(Cap.PIPELINE_WORK))):
        raise PermissionDenied
    if not portal_settings().enabled:
        raise ValidationError({"email": [_("The customer portal is switched off in the portal settings.")]})
    if customer.kind != Customer.Kind.PERSON:
        raise ValidationError({"customer": [_("Invite a person: a corporate account's bookers and travelers sign in "
                                              "as themselves.")]})
    addresses = list(customer.emails.values_list("address", flat=True))
    if not addresses:
        raise ValidationError({"email": [_("This customer has no e-mail address on the card.")]})
    email = email_normal(email) if email else addresses[0]
    if email not in addresses:
        raise ValidationError({"email": [_("Send the invitation to an address on the customer's card.")]})
    next_path = reverse("portal:trip", args=[trip.pk]) if trip is not None else ""
    with transaction.atomic():
        link, token, code = _make_link(customer, email, SignInLink.Purpose.INVITATION, next_path=next_path,
                                       sent_by=actor)
        timeline_add(actor=actor, customer=customer, channel=Contact.Channel.PORTAL, direction=Contact.Direction.OUTBOUND,
                     summary=Text("portal_invited_trip", email=email, trip=trip.title) if trip is not None
                     else Text("portal_invited", email=email))
    _send_link(link, token, code, trip=trip, note=note)
    return link


# --- using a link or a code ----------------------------------------------------------------------------

def _usable(link: SignInLink | None) -> SignInLink:
    if link is None or not link.live:
        raise LinkInvalid
    customer = link.customer
    if customer.merged_into_id is not None or not customer.emails.filter(address=link.email).exists() \
            or not portal_settings().enabled:
        raise LinkInvalid  # the address left the card, or the portal was closed, after the link was sent
    return link


def link_peek(token: str) -> SignInLink:
    """The link a token names, if it can still be used (the confirmation page: nothing is spent by a GET,
    so a mail scanner that opens the link does not use it up)."""
    return _usable(SignInLink.objects.select_related("customer").filter(token_hash=_token_hash(token)).first())


@transaction.atomic
def link_use(*, token: str, client: str) -> SignInLink:
    """Spend a link (the confirmation page's button). Single use: the row is locked and marked."""
    link = _usable(SignInLink.objects.select_for_update().select_related("customer")
                   .filter(token_hash=_token_hash(token)).first())
    link.used_at, link.used_from = timezone.now(), client or None
    link.save(update_fields=["used_at", "used_from"])
    return link


def code_use(*, link_id: int, code: str, client: str) -> SignInLink:
    """Spend a link by its six-digit code, typed on the page that asked for it (the link's id is in that
    browser's portal session). A wrong code counts (committed, not rolled back with the error); after
    ``CODE_TRIES`` wrong codes the link is dead."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    with transaction.atomic():
        link = _usable(SignInLink.objects.select_for_update().select_related("customer").filter(pk=link_id).first())
        if link.code_tries >= CODE_TRIES:
            raise LinkInvalid
        right = len(code) == 6 and constant_time_compare(_code_hash(link.token_hash, code), link.code_hash)
        if right:
            link.used_at, link.used_from = timezone.now(), client or None
            link.save(update_fields=["used_at", "used_from"])
        else:
            link.code_tries += 1
            link.save(update_fields=["code_tries"])
    if not right:
        raise ValidationError({"code": [_("That code is not right. Check the latest e-mail and try again.")]})
    return link
