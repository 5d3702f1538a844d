"""Normalising what people type: phones to E.164, e-mails to lower case, names for search."""
import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _


def phone_e164(raw: str, region: str = "CN") -> str:
    """'138 0013 8000', '+86-138-0013-8000', '0086 13800138000' → '+8613800138000'."""
    text = (raw or "").strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    fast = _cn_mobile(text, region)
    if fast is not None:
        return fast
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(_("“%(raw)s” is not a phone number."), code="invalid_phone", params={"raw": raw})
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise ValidationError(_("“%(raw)s” is not a valid phone number."), code="invalid_phone", params={"raw": raw})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# The shape most numbers in a Chinese agency's files have: a mainland mobile, bare or after +86, in
# groups of 3-4-4 with spaces or hyphens, the first group perhaps in brackets. Numbers starting 10, 11,
# 12 or 179 are not taken (CN's national prefix for parsing, ``(1(?:[12]\d|79)\d\d)|0``, may strip
# their first digits), nor anything else: phonenumbers reads those.
_CN_MOBILE = re.compile(r"(\+86[ -]?)?(?:(1[3-9][0-9])|\((1[3-9][0-9])\))[ -]?([0-9]{4})[ -]?([0-9]{4})", re.ASCII)
_CN_MOBILE_PATTERN = re.compile(phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern)


def _cn_mobile(text: str, region: str) -> str | None:
    """'+86…' for a valid mainland mobile in the common shape, else None (phonenumbers decides).

    phonenumbers.parse costs ~90 µs a number, 6× the rest of an import row's checks. For eleven
    digits 1[3-9]… in CN no fixed-line, toll-free, premium or shared-cost pattern can match, so such a
    number is valid exactly when the mobile pattern of phonenumbers' own metadata matches it (as
    is_valid_number decides); an invalid one goes the slow way, for its error.
    tests/test_import_speed.py checks that this agrees with phonenumbers on every prefix."""
    match = _CN_MOBILE.fullmatch(text)
    if match is None or (region != "CN" and not match[1]):
        return None
    digits = (match[2] or match[3]) + match[4] + match[5]
    if digits.startswith("179") or not _CN_MOBILE_PATTERN.fullmatch(digits):
        return None
    return "+86" + digits


def phone_display(e164: str) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def email_normal(raw: str) -> str:
    address = (raw or "").strip().lower()
    if len(address) <= 320 and _PLAIN_EMAIL.fullmatch(address):
        return address
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError(_("“%(raw)s” is not an e-mail address."), code="invalid_email", params={"raw": raw})
    return address


# A plain ASCII address that Django's validate_email accepts (a strict subset of its user and domain
# patterns), checked in ~1 µs instead of ~30; anything else is left to validate_email.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_EMAIL = re.compile(rf"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,63}}", re.ASCII)


def passport_latin(text: str) -> bool:
    """Written in Latin letters as a passport prints a name (spaces, hyphens and apostrophes allowed).

    All three are ASCII themselves, so the text is ASCII with or without them: one check, no copies."""
    return text.isascii()


# CJK ideographs, kana and hangul: written without spaces, so a space between two of them means nothing.
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
_SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")
_SPACE = re.compile(r"\s")


def collapse_cjk_spaces(text: str) -> str:
    """'李 娜' → '李娜': whitespace between two CJK characters is dropped; 'Li Na' keeps its space."""
    if _SPACE.search(text) is None:  # most names: a scan in C instead of the look-behind at every position
        return text
    return _SPACE_BETWEEN_CJK.sub("", text)


def search_text(*parts: str) -> str:
    """One lower-cased line of everything a search may match (names, phones, e-mails, companies)."""
    return " ".join(collapse_cjk_spaces(p.strip().lower()) for p in parts if p and p.strip())
