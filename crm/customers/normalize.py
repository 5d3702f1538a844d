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
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(_("“%(raw)s” is not a phone number."), code="invalid_phone", params={"raw": raw})
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise ValidationError(_("“%(raw)s” is not a valid phone number."), code="invalid_phone", params={"raw": raw})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_display(e164: str) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def email_normal(raw: str) -> str:
    address = (raw or "").strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError(_("“%(raw)s” is not an e-mail address."), code="invalid_email", params={"raw": raw})
    return address


def passport_latin(text: str) -> bool:
    """Written in Latin letters as a passport prints a name (spaces, hyphens and apostrophes allowed)."""
    return text.replace(" ", "").replace("-", "").replace("'", "").isascii()


# CJK ideographs, kana and hangul: written without spaces, so a space between two of them means nothing.
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
_SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")


def collapse_cjk_spaces(text: str) -> str:
    """'李 娜' → '李娜': whitespace between two CJK characters is dropped; 'Li Na' keeps its space."""
    return _SPACE_BETWEEN_CJK.sub("", text)


def search_text(*parts: str) -> str:
    """One lower-cased line of everything a search may match (names, phones, e-mails, companies)."""
    return " ".join(collapse_cjk_spaces(p.strip().lower()) for p in parts if p and p.strip())
