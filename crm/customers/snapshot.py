"""What the change log records of a customer, and the line a search matches: one definition for the
services (a Customer) and the import's COPY path (a plain record per row, no model instance, no query).

Both take plain values: the caller reads the phones, e-mails, addresses and companies its own way
(the services with the ORM, the import with a few bulk queries per batch).
"""
from .normalize import search_text

# Identity and contact fields whose every change is recorded with who, when, old → new.
AUDITED = ("kind", "name", "latin_surname", "latin_given", "gender", "birthday", "owner", "phones", "emails", "addresses")
_OWN = tuple(name for name in AUDITED if name not in ("owner", "phones", "emails", "addresses"))


def address_text(line: str, city: str) -> str:
    """An address as the change log shows it: 'line, city'."""
    return line + (f", {city}" if city else "")


def snapshot(customer, *, owner: str = "", phones=(), emails=(), addresses=()) -> dict[str, str]:
    """The audited values as text. ``customer`` is anything with the identity attributes (a Customer, or
    the import's record); ``owner`` the account manager's e-mail; ``addresses`` ``address_text`` lines."""
    snap = {name: "" if getattr(customer, name) is None else str(getattr(customer, name)) for name in _OWN}
    snap.update(owner=owner, phones=", ".join(phones), emails=", ".join(emails), addresses=" | ".join(addresses))
    return snap


def changes(before: dict, after: dict) -> list[tuple[str, str, str]]:
    """(field, old, new) for every audited field that differs; ``before`` is {} for a new customer."""
    if not before:  # a new customer (most rows of an import): every field it has
        return [(name, "", new) for name in AUDITED if (new := after.get(name, ""))]
    found = []
    for name in AUDITED:
        old, new = before.get(name, ""), after.get(name, "")
        if old != new:
            found.append((name, old, new))
    return found


def customer_search_text(*, name: str, latin_surname: str = "", latin_given: str = "", emails=(),
                         companies=()) -> str:
    """What a search matches (besides phones and document tails, which have their own lookups): the
    name, the passport name both ways round, the e-mails and, for a person, their companies' names."""
    return search_text(name, latin_surname, latin_given, f"{latin_given} {latin_surname}", *emails, *companies)
