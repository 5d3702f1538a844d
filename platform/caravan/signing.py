"""Signed tokens of an agency: the links we put in e-mails and pages (survey, approval, unsubscribe,
campaign open and click, calendar feed) and the enquiry form's time stamp.

Every token is signed with a salt that names its purpose AND the active agency's schema, so a token
opens only what it was made for, and only on the host of the agency that made it. Without an agency
(the public schema) nothing is signed or read: :class:`~caravan.tenancy.NoAgencyError`.

:data:`PURPOSES` is the one table of purposes and their salts. The salts are the ones links were
signed with before this module existed: links already sent keep working, so a salt is never changed.
A new purpose is a new row.

Signing that is not per agency stays with Django: the two-step sign-in's device cookie
(``accounts.mfa``, ``set_signed_cookie``) and the export manifest's ``Signer``
(``tenants.portability``) are platform-side.
"""
from functools import lru_cache

from django.core import signing

from caravan.tenancy import require_agency

BadSignature = signing.BadSignature  # SignatureExpired is a BadSignature too

PURPOSES: dict[str, str] = {
    "care.survey": "care.survey:{schema}",
    "policies.approval": "policies.approval:{schema}",
    "loyalty.unsubscribe": "loyalty.unsubscribe:{schema}",
    "campaigns.unsubscribe": "campaigns.unsubscribe:{schema}",
    "campaigns.open": "campaigns.open:{schema}",
    "campaigns.click": "campaigns.click:{schema}",
    "visits.ical": "visits.ical:{schema}",
    "pipeline.enquiry-form": "pipeline.enquiry-form:{schema}",
}
# Salts a purpose had before, still read (never written) until what they signed has expired.
# The enquiry form's stamp was not per agency and lives a day (pipeline.intake.FORM_MAX_AGE):
# remove this row from 2026-12-08 on.
READ_ALSO: dict[str, str] = {"pipeline.enquiry-form": "pipeline.enquiry-form"}


def salt(purpose: str) -> str:
    """The salt of ``purpose`` in the active agency; KeyError for a purpose not in the table."""
    return PURPOSES[purpose].format(schema=require_agency().schema_name)


def dumps(purpose: str, value, *, compress: bool = False) -> str:
    """``value`` (anything JSON can hold) as a signed, time-stamped token."""
    return signing.dumps(value, salt=salt(purpose), compress=compress)


def loads(purpose: str, token: str, max_age=None):
    """The value of a token from :func:`dumps`; :data:`BadSignature` when it was tampered with, is
    older than ``max_age`` (seconds or a timedelta), or was made for another purpose or agency."""
    try:
        return signing.loads(token, salt=salt(purpose), max_age=max_age)
    except BadSignature:
        if purpose not in READ_ALSO:
            raise
    return signing.loads(token, salt=READ_ALSO[purpose], max_age=max_age)


def signer(purpose: str) -> signing.Signer:
    """A plain ``Signer`` (no time stamp, token ``value:signature``) for tokens that never expire
    and must stay short (campaign e-mails: one per recipient and link)."""
    return _signer(salt(purpose))


@lru_cache(maxsize=256)
def _signer(salt: str) -> signing.Signer:
    return signing.Signer(salt=salt)
