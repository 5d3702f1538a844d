"""Encryption of document numbers at rest, with key rotation (R-CUST-2).

- ``DOCUMENT_KEYS``: comma-separated Fernet keys, newest first. New values are encrypted with the
  first; any listed key decrypts. Rotate by putting a new key first and running
  ``manage.py rotate_document_keys`` (re-encrypts every agency's documents with the first key).
- ``DOCUMENT_HASH_KEY``: HMAC key for the lookup hashes (duplicates, last-four search). The hash
  is per agency (keyed with the schema name too), so equal numbers at two agencies hash apart.
"""
import hashlib
import hmac
import re

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection


def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.DOCUMENT_KEYS.split(",") if k.strip()]
    if not keys:
        raise ImproperlyConfigured("DOCUMENT_KEYS is not set (comma-separated Fernet keys, newest first).")
    return MultiFernet([Fernet(k) for k in keys])


def normalise_number(number: str) -> str:
    """Upper-case letters and digits only: 'e 1234-5678' → 'E12345678'."""
    return re.sub(r"[^0-9A-Za-z]", "", number or "").upper()


def encrypt(number: str) -> str:
    return _fernet().encrypt(number.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    return _fernet().rotate(token.encode()).decode()


def lookup_hash(value: str) -> str:
    key = (settings.DOCUMENT_HASH_KEY + ":" + connection.schema_name).encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def mask(number: str) -> str:
    """Show at most the first half (and never more than five characters): E12345678 → E1234****."""
    visible = min(5, (len(number) + 1) // 2)
    return number[:visible] + "*" * (len(number) - visible)
