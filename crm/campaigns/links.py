"""Signed public links in campaign e-mails: unsubscribe, open pixel, tracked click.

Each token is the recipient id (and, for a click, the link's position) signed with a salt that
names the link's purpose and the agency's schema: a token works only for what it was made for, and
only on the host of the agency that sent it. The signature is the secret; the ids are not.
They do not expire: an unsubscribe link must keep working for as long as the e-mail is read.
"""
from django.urls import reverse

from caravan import signing

UNSUBSCRIBE, OPEN, CLICK = "unsubscribe", "open", "click"


def _signer(kind: str):
    return signing.signer(f"campaigns.{kind}")


def make(kind: str, recipient_id: int, index: int | None = None) -> str:
    value = str(recipient_id) if index is None else f"{recipient_id}.{index}"
    return _signer(kind).sign(value)


def read(kind: str, token: str) -> tuple[int, int | None] | None:
    """(recipient id, link index or None), or None for a bad, foreign or mangled token."""
    try:
        value = _signer(kind).unsign(token)
    except signing.BadSignature:
        return None
    head, _, tail = value.partition(".")
    if not head.isdigit() or (tail and not tail.isdigit()):
        return None
    return int(head), (int(tail) if tail else None)


def path(kind: str, token: str) -> str:
    """The URL path of a token (the public pages of frontend/urls/campaigns.py)."""
    return reverse(f"campaign_{kind}", args=[token])
