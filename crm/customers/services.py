"""Customer writes. The page, the API, imports, merges and tasks all come through here, so every
path validates, de-duplicates and audits the same way (R-CUST-5/6/7).

A write to a merged-away customer is refused, naming the survivor (``customer_live``, ``MergedAway``):
here and in the other apps' services that take a customer (trips, complaints, leads).
"""
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import cycle

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap
from billing import services as billing_services
from caravan import texts
from caravan.db.prepared import execute_prepared
from caravan.tenancy import require_agency

from . import crypto, hooks, rows
from .models import (Address, ChangeLog, Contact, Customer, DocumentReveal, Email, Employment, FamilyDate, Handover,
                     LoyaltyMembership, Phone, Preferences, TravelDocument)
from .normalize import email_normal, passport_latin, phone_e164
from .snapshot import address_text, changes, customer_search_text, snapshot

EDITABLE = ("kind", "name", "latin_surname", "latin_given", "gender", "birthday", "language", "source", "owner",
            "tags", "notes", "industry", "external_ref")
Via = ChangeLog.Via


@dataclass
class DuplicateCustomer(Exception):
    """The phone, e-mail or document number belongs to a customer already on file."""

    matches: list = field(default_factory=list)  # [(customer, reason)]

    def __str__(self):
        return _("This customer may already exist: %(names)s") % {
            "names": ", ".join(f"{c.name} ({reason})" for c, reason in self.matches)}


class MergedAway(ValidationError):
    """A write to a customer merged into another is refused, naming the survivor: the change belongs
    there. Every write service raises it (``customer_live``); pages show the message and open the
    survivor's card, the API answers 409 with ``survivor`` (``conflict``, caravan.api.errors)."""

    def __init__(self, customer: Customer, survivor: Customer):
        self.customer, self.survivor = customer, survivor
        self.conflict = {"survivor": {"id": survivor.pk, "name": survivor.name, "url": f"/customers/{survivor.pk}/"}}
        super().__init__(_("%(name)s (#%(id)s) was merged into %(survivor)s (#%(survivor_id)s); make changes there.")
                         % {"name": customer.name, "id": customer.pk, "survivor": survivor.name,
                            "survivor_id": survivor.pk}, code="merged_away")


def customer_live(customer: Customer) -> Customer:
    """Refuse a write to a merged-away customer (MergedAway). Called inside the write's transaction:
    the row is read FOR KEY SHARE (the lock a row referencing it takes anyway, so writers never wait
    for each other), which a merge's FOR UPDATE waits for and which waits for a merge in flight."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT merged_into_id FROM {connection.ops.quote_name(Customer._meta.db_table)} "
                       "WHERE id = %s FOR KEY SHARE", [customer.pk])
        row = cursor.fetchone()
    if row is not None and row[0] is not None:
        raise MergedAway(customer, customer_survivor(Customer.objects.get(pk=row[0])))
    return customer


# --- reading back what was typed ----------------------------------------------------------------

def _clean_phones(raw: list[str] | None) -> list[str] | None:
    if raw is None:
        return None
    region = require_agency().default_region
    numbers, errors = [], []
    for value in raw:
        if not (value or "").strip():
            continue
        try:
            number = phone_e164(value, region)
        except ValidationError as exc:
            errors.extend(exc.messages)
            continue
        if number not in numbers:
            numbers.append(number)
    if errors:
        raise ValidationError({"phones": errors})
    return numbers


def _clean_emails(raw: list[str] | None) -> list[str] | None:
    if raw is None:
        return None
    addresses, errors = [], []
    for value in raw:
        if not (value or "").strip():
            continue
        try:
            address = email_normal(value)
        except ValidationError as exc:
            errors.extend(exc.messages)
            continue
        if address not in addresses:
            addresses.append(address)
    if errors:
        raise ValidationError({"emails": errors})
    return addresses


def _clean_fields(fields: dict) -> dict:
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValueError(f"Not customer fields: {sorted(unknown)}")
    errors = {}
    if "name" in fields:
        fields["name"] = (fields["name"] or "").strip()
        if not fields["name"]:
            errors["name"] = [_("Enter the customer's name.")]
    if "kind" in fields and fields["kind"] not in Customer.Kind.values:
        errors["kind"] = [_("Choose individual or corporate account.")]
    if "source" in fields and fields["source"] not in Customer.Source.values:
        errors["source"] = [_("Choose a source channel.")]
    for key in ("latin_surname", "latin_given"):
        if key in fields:
            fields[key] = (fields[key] or "").strip()
            if fields[key] and not passport_latin(fields[key]):
                errors[key] = [_("Use Latin letters as printed in the passport.")]
    if "birthday" in fields and fields["birthday"] and fields["birthday"] > date.today():
        errors["birthday"] = [_("The birthday cannot be in the future.")]
    if "tags" in fields:
        fields["tags"] = sorted({t.strip() for t in fields["tags"] or [] if t and t.strip()})
    if errors:
        raise ValidationError(errors)
    return fields


# The owners of the phones, then of the e-mails, each in id order, in one statement: written out rather
# than built as a union of querysets each time, which cost more than the lookup itself.
_DUPLICATES_SQL = """
SELECT {columns}, 0 AS found_by, p.number AS found, p.id AS found_id
FROM {customer} c JOIN {phone} p ON p.customer_id = c.id WHERE p.number = ANY(%(phones)s::varchar[])
UNION ALL
SELECT {columns}, 1, e.address, e.id
FROM {customer} c JOIN {email} e ON e.customer_id = c.id WHERE e.address = ANY(%(emails)s::varchar[])
ORDER BY found_by, found_id""".format(columns=rows.columns(Customer, "c"), customer=Customer._meta.db_table,
                                      phone=Phone._meta.db_table, email=Email._meta.db_table)


_DUPLICATES_LIST_SQL = _DUPLICATES_SQL.replace("%(phones)s", "%s").replace("%(emails)s", "%s")


def find_duplicates(*, phones=(), emails=(), exclude: Customer | None = None) -> list:
    """Live customers owning any of these (normalised) phones or e-mails, with the reason."""
    phones, emails = list(phones), list(emails)
    if not phones and not emails:
        return []
    with connection.cursor() as cursor:
        execute_prepared(cursor, _DUPLICATES_LIST_SQL, [phones, emails])
        found = cursor.fetchall()
    return duplicates_read(found, exclude=exclude)


def duplicates_read(found: list[tuple], *, exclude: Customer | None = None) -> list:
    """:func:`find_duplicates`'s answer from the rows of its statement."""
    matches = {}
    for *values, found_by, found_as, _found_id in found:
        why = (_("phone %(number)s") % {"number": found_as} if found_by == 0
               else _("e-mail %(address)s") % {"address": found_as})
        matches.setdefault(rows.from_row(Customer, values), why)
    return [(c, why) for c, why in matches.items() if exclude is None or c.pk != exclude.pk]


@dataclass
class DuplicatesAhead:
    """:func:`find_duplicates` for the contacts a new customer will be given, read ahead in a caller's own
    round trip (the website webhook's, with its event claim): ``sql`` and ``params`` to run,
    ``matches`` set from its rows (:func:`duplicates_read`), and :func:`customer_create` uses them in
    place of its own read when its cleaned phones and e-mails are these."""

    phones: list
    emails: list
    sql: str = _DUPLICATES_LIST_SQL
    matches: list | None = None

    @property
    def params(self) -> list:
        return [self.phones, self.emails]


def duplicates_ahead(*, phones=(), emails=()) -> DuplicatesAhead | None:
    """The read ahead for these phones and e-mails as given (cleaned as :func:`customer_create` cleans
    them); None when there is nothing to read or one of them does not clean (customer_create reports it)."""
    try:
        phones, emails = _clean_phones(list(phones)), _clean_emails(list(emails))
    except ValidationError:
        return None
    return DuplicatesAhead(phones, emails) if phones or emails else None


# --- audit ----------------------------------------------------------------------------------

def _snapshot(customer: Customer) -> dict:
    owner = customer.owner.email if customer.owner_id else ""
    if not customer.pk:
        return snapshot(customer, owner=owner)
    return snapshot(customer, owner=owner, phones=customer.phones.values_list("number", flat=True),
                    emails=customer.emails.values_list("address", flat=True),
                    addresses=[address_text(line, city) for line, city in customer.addresses.values_list("line", "city")])


def _audit(customer: Customer, before: dict, actor: User | None, via: str) -> None:
    ChangeLog.objects.bulk_create([
        ChangeLog(customer=customer, actor=actor, via=via, field=name, old=old, new=new)
        for name, old, new in changes(before, _snapshot(customer))
    ])


def refresh_search_text(customer: Customer) -> None:
    companies = []
    if customer.kind == Customer.Kind.PERSON and customer.pk:
        companies = list(Employment.objects.filter(person=customer).values_list("company__name", flat=True))
    customer.search_text = customer_search_text(
        name=customer.name, latin_surname=customer.latin_surname, latin_given=customer.latin_given,
        emails=customer.emails.values_list("address", flat=True) if customer.pk else (), companies=companies)
    Customer.objects.filter(pk=customer.pk).update(search_text=customer.search_text)


def _replace_contacts(customer: Customer, phones, emails, addresses) -> None:
    if phones is not None:
        customer.phones.exclude(number__in=phones).delete()
        have = set(customer.phones.values_list("number", flat=True))
        Phone.objects.bulk_create([Phone(customer=customer, number=n) for n in phones if n not in have])
    if emails is not None:
        customer.emails.exclude(address__in=emails).delete()
        have = set(customer.emails.values_list("address", flat=True))
        Email.objects.bulk_create([Email(customer=customer, address=a) for a in emails if a not in have])
    if addresses is not None:
        customer.addresses.all().delete()
        Address.objects.bulk_create([Address(customer=customer, **a) for a in addresses if a.get("line")])


def _save_guarded(fn):
    """Turn a unique-constraint race (two people saving the same phone at once) into a duplicate."""
    try:
        with transaction.atomic():
            return fn()
    except IntegrityError as exc:
        if "crm_phone_unique" in str(exc) or "crm_email_unique" in str(exc) or "crm_document_unique" in str(exc):
            raise DuplicateCustomer([]) from exc
        raise


# --- customers ------------------------------------------------------------------------------

def customer_survivor(customer: Customer) -> Customer:
    """A merged-away record stands for the customer it was merged into: writes go there."""
    seen = 0
    while customer.merged_into_id and seen < 20:
        customer, seen = customer.merged_into, seen + 1
    return customer


def _clean_all(fields: dict, phones, emails) -> tuple[dict, list | None, list | None]:
    """Clean fields, phones and e-mails together so every field error is reported at once."""
    errors: dict[str, list] = {}
    results = []
    for clean, value in ((_clean_fields, fields), (_clean_phones, phones), (_clean_emails, emails)):
        try:
            results.append(clean(value))
        except ValidationError as exc:
            errors.update(exc.message_dict)
            results.append(None)
    if errors:
        raise ValidationError(errors)
    return results[0], results[1], results[2]


# A new customer with its phones, e-mails and change log (``Customer``, then ``Phone`` / ``Email`` /
# ``ChangeLog`` rows in the given order), in one statement: ``{customer}`` is the customer's INSERT
# (crm.customers.rows), its parameters first. A phone or e-mail that someone else saved since
# find_duplicates looked (their transaction committed first: the unique index makes this one wait for it)
# is not inserted (``ON CONFLICT DO NOTHING``): the counts say so, and the customer is undone
# (_NEW_CUSTOMER_UNDO_SQL). Prepared once per connection (``execute_prepared``: its parameters are typed
# by their columns or by the casts).
_NEW_CUSTOMER_ROWS_SQL = """
WITH customer AS ({{customer}} RETURNING id),
phones AS (
    INSERT INTO {phone} (customer_id, number, label)
    SELECT customer.id, t.number, '' FROM customer, unnest(%s::varchar[]) WITH ORDINALITY AS t(number, n) ORDER BY t.n
    ON CONFLICT DO NOTHING RETURNING 1),
emails AS (
    INSERT INTO {email} (customer_id, address, label)
    SELECT customer.id, t.address, '' FROM customer, unnest(%s::varchar[]) WITH ORDINALITY AS t(address, n) ORDER BY t.n
    ON CONFLICT DO NOTHING RETURNING 1),
log AS (
    INSERT INTO {log} (customer_id, actor_id, via, field, old, new, at)
    SELECT customer.id, %s::bigint, %s::varchar, t.field, t.old, t.new, %s::timestamptz
    FROM customer, unnest(%s::varchar[], %s::text[], %s::text[]) WITH ORDINALITY AS t(field, old, new, n)
    ORDER BY t.n)
SELECT (SELECT id FROM customer), (SELECT count(*) FROM phones), (SELECT count(*) FROM emails)""".format(
    phone=Phone._meta.db_table, email=Email._meta.db_table, log=ChangeLog._meta.db_table)
_NEW_CUSTOMER_UNDO_SQL = """
WITH log AS (DELETE FROM {log} WHERE customer_id = %(customer)s),
phones AS (DELETE FROM {phone} WHERE customer_id = %(customer)s),
emails AS (DELETE FROM {email} WHERE customer_id = %(customer)s),
addresses AS (DELETE FROM {address} WHERE customer_id = %(customer)s)
DELETE FROM {customer} WHERE id = %(customer)s""".format(
    log=ChangeLog._meta.db_table, phone=Phone._meta.db_table, email=Email._meta.db_table,
    address=Address._meta.db_table, customer=Customer._meta.db_table)


def customer_create(*, actor: User | None, via: str, phones=(), emails=(), addresses=(),
                    ahead: DuplicatesAhead | None = None, **fields) -> Customer:
    """``ahead``: the duplicates for these contacts, read already (:func:`duplicates_ahead`)."""
    if not fields.get("name"):
        fields["name"] = ""
    fields, phones, emails = _clean_all({"kind": Customer.Kind.PERSON, **fields}, list(phones), list(emails))
    if ahead is not None and ahead.matches is not None and (ahead.phones, ahead.emails) == (phones, emails):
        duplicates = ahead.matches
    else:
        duplicates = find_duplicates(phones=phones, emails=emails)
    if duplicates:
        raise DuplicateCustomer(duplicates)
    if via in (ChangeLog.Via.PAGE, ChangeLog.Via.API):  # staff's own additions count against the plan
        billing_services.customers_available(require_agency())
    addresses = [a for a in addresses if a.get("line")]
    # A new customer has no rows to read back: its contacts, search text and change log are written
    # from what was given (as _replace_contacts, refresh_search_text and _audit would), without a
    # savepoint: a lost race is seen in the counts, undone, and raised after the block.
    with transaction.atomic(savepoint=False):
        customer = Customer(**fields)
        customer.search_text = customer_search_text(name=customer.name, latin_surname=customer.latin_surname,
                                                     latin_given=customer.latin_given, emails=emails)
        to_add = [Address(**a) for a in addresses]
        after = snapshot(customer, owner=customer.owner.email if customer.owner_id else "", phones=phones, emails=emails,
                         addresses=[address_text(a.line, a.city) for a in to_add])
        logged = changes({}, after)
        insert, params = rows.insert_sql(customer)
        with connection.cursor() as cursor:
            execute_prepared(cursor, _NEW_CUSTOMER_ROWS_SQL.format(customer=insert), [
                *params, phones, emails, actor.pk if actor else None, via, timezone.now(),
                [name for name, _old, _new in logged], [old for _name, old, _new in logged],
                [new for _name, _old, new in logged]])
            pk, *counts = cursor.fetchone()
            rows.inserted(customer, pk)
            lost = tuple(counts) != (len(phones), len(emails))
            if lost:
                cursor.execute(_NEW_CUSTOMER_UNDO_SQL, {"customer": customer.pk})
        if not lost:
            for address in to_add:
                address.customer = customer
            Address.objects.bulk_create(to_add)
    if lost:  # on file since find_duplicates looked: the caller finds who (customer_for_contact's _on_file)
        raise DuplicateCustomer([])
    return customer


@transaction.atomic
def customer_update(*, actor: User | None, via: str, customer: Customer, phones=None, emails=None, addresses=None,
                    **fields) -> Customer:
    customer_live(customer)
    fields, phones, emails = _clean_all(dict(fields), phones, emails)
    duplicates = find_duplicates(phones=phones or (), emails=emails or (), exclude=customer)
    if duplicates:
        raise DuplicateCustomer(duplicates)

    def write():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        before = _snapshot(locked)
        for key, value in fields.items():
            setattr(locked, key, value)
        locked.save()
        _replace_contacts(locked, phones, emails, addresses)
        refresh_search_text(locked)
        if locked.kind == Customer.Kind.COMPANY and before["name"] != locked.name:
            for link in Employment.objects.filter(company=locked).select_related("person"):
                refresh_search_text(link.person)
        _audit(locked, before, actor, via)
        return locked

    return _save_guarded(write)


def _pref_text(value) -> str:
    """A preference as the change log shows it: lists joined, empty as ""."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


@transaction.atomic
def customer_preferences_set(*, actor: User | None, customer: Customer, via: str = Via.PAGE, **values) -> Preferences:
    """Set travel preferences; each changed one is in the change log as ``preferences.<name>`` (staff and the
    customer in the portal alike, ``via`` saying which)."""
    customer_live(customer)
    prefs, _created = Preferences.objects.select_for_update().get_or_create(customer=customer)
    before = {key: _pref_text(getattr(prefs, key)) for key in values}
    for key, value in values.items():
        setattr(prefs, key, value)
    if "airlines" in values:
        prefs.airlines = sorted({a.strip().upper() for a in prefs.airlines if a.strip()})
        bad = [a for a in prefs.airlines if len(a) != 2 or not a.isalnum()]
        if bad:
            raise ValidationError({"airlines": [_("Use two-character IATA airline codes, e.g. CA, MU, CZ.")]})
    prefs.full_clean()
    prefs.save()
    ChangeLog.objects.bulk_create([
        ChangeLog(customer=customer, actor=actor, via=via, field=f"preferences.{key}", old=old,
                  new=_pref_text(getattr(prefs, key)))
        for key, old in before.items() if old != _pref_text(getattr(prefs, key))])
    return prefs


@transaction.atomic
def employment_set(*, actor: User | None, company: Customer, person: Customer, **values) -> Employment:
    for customer in sorted((company, person), key=lambda c: c.pk):  # locked in one order, as merges do
        customer_live(customer)
    if company.kind != Customer.Kind.COMPANY or person.kind != Customer.Kind.PERSON:
        raise ValidationError(_("Link a person to a corporate account."))
    link, _created = Employment.objects.update_or_create(company=company, person=person, defaults=values)
    refresh_search_text(person)
    return link


@transaction.atomic
def customers_bulk_update(*, actor: User, via: str, customers, owner: User | None = None, add_tag: str = "") -> int:
    """Assign an owner and/or add a tag to many customers at once, audited per customer."""
    count = 0
    for customer in customers.select_for_update(of=("self",)).select_related("owner").order_by("pk"):
        if customer.merged_into_id:
            raise MergedAway(customer, customer_survivor(customer))
        before = _snapshot(customer)
        if owner is not None:
            customer.owner = owner
        if add_tag and add_tag not in customer.tags:
            customer.tags = sorted([*customer.tags, add_tag.strip()])
        customer.save(update_fields=["owner", "tags", "updated_at"])
        _audit(customer, before, actor, via)
        count += 1
    return count


@transaction.atomic
def customers_handover(*, actor: User, from_user: User, to_users: list[User]) -> Handover:
    """Give every customer of ``from_user`` to the colleagues in ``to_users``, in turn (R-CUST-5)."""
    to_users = [u for u in to_users if u.pk != from_user.pk]
    if not to_users:
        raise ValidationError({"to_users": [_("Choose at least one colleague to hand over to.")]})
    if any(not u.is_active for u in to_users):
        raise ValidationError({"to_users": [_("Hand over only to active colleagues.")]})
    ids = list(Customer.objects.select_for_update().filter(owner=from_user, merged_into__isnull=True)
               .order_by("pk").values_list("pk", flat=True))
    share: dict[int, list[int]] = {u.pk: [] for u in to_users}
    for customer_id, user in zip(ids, cycle(to_users)):
        share[user.pk].append(customer_id)
    emails = {u.pk: u.email for u in to_users}
    logs = []
    for user_id, customer_ids in share.items():
        Customer.objects.filter(pk__in=customer_ids).update(owner_id=user_id, updated_at=timezone.now())
        logs += [ChangeLog(customer_id=c, actor=actor, via=Via.HANDOVER, field="owner", old=from_user.email,
                           new=emails[user_id]) for c in customer_ids]
    ChangeLog.objects.bulk_create(logs, batch_size=1000)
    return Handover.objects.create(from_user=from_user, actor=actor,
                                   summary={str(k): len(v) for k, v in share.items()})


@transaction.atomic
def customer_merge(*, actor: User, keep: Customer, drop: Customer, via: str = Via.PAGE) -> Customer:
    """Join ``drop`` into ``keep``: every phone, e-mail, document, contact, preference and history
    entry moves to ``keep``; blanks on ``keep`` are filled from ``drop``; ``drop`` stays only as a
    pointer (``merged_into``) so old links still resolve. Recorded on both."""
    if keep.pk == drop.pk:
        raise ValidationError(_("Choose two different customers."))
    locked = {c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=[keep.pk, drop.pk]).order_by("pk")}
    keep, drop = locked[keep.pk], locked[drop.pk]
    for customer in (drop, keep):
        if customer.merged_into_id:
            raise MergedAway(customer, customer_survivor(customer))
    if keep.kind != drop.kind:
        raise ValidationError(_("An individual and a corporate account cannot be merged."))
    before = _snapshot(keep)
    for model in (Phone, Email, Address, FamilyDate, TravelDocument, Contact, ChangeLog):
        model.objects.filter(customer=drop).update(customer=keep)
    for link in Employment.objects.filter(person=drop):
        if Employment.objects.filter(company=link.company, person=keep).exists():
            link.delete()
        else:
            Employment.objects.filter(pk=link.pk).update(person=keep)
    for link in Employment.objects.filter(company=drop):
        if Employment.objects.filter(company=keep, person=link.person).exists():
            link.delete()
        else:
            Employment.objects.filter(pk=link.pk).update(company=keep)
    kept_programmes = set(keep.loyalty.values_list("programme", flat=True))
    drop.loyalty.exclude(programme__in=kept_programmes).update(customer=keep)
    _merge_preferences(keep, drop)
    for name in ("latin_surname", "latin_given", "gender", "birthday", "owner", "industry", "external_ref"):
        if not getattr(keep, name) and getattr(drop, name):
            setattr(keep, name, getattr(drop, name))
    keep.tags = sorted(set(keep.tags) | set(drop.tags))
    if drop.notes:
        keep.notes = "\n\n".join(n for n in (keep.notes, drop.notes) if n)
    keep.save()
    drop.merged_into = keep
    drop.save(update_fields=["merged_into", "updated_at"])
    refresh_search_text(keep)
    Customer.objects.filter(pk=drop.pk).update(search_text="")
    _audit(keep, before, actor, via)
    ChangeLog.objects.create(customer=keep, actor=actor, via=via, field="merged",
                             old=f"{drop.name} (#{drop.pk})", new=f"{keep.name} (#{keep.pk})")
    return keep


def _merge_preferences(keep: Customer, drop: Customer) -> None:
    theirs = Preferences.objects.filter(customer=drop).first()
    if theirs is None:
        return
    mine = Preferences.objects.filter(customer=keep).first()
    if mine is None:
        Preferences.objects.filter(pk=theirs.pk).update(customer=keep)
        return
    for name in ("seat", "meal", "cabin", "aircraft_size", "room_type", "price_sensitivity", "budget_per_trip"):
        if not getattr(mine, name) and getattr(theirs, name):
            setattr(mine, name, getattr(theirs, name))
    for name in ("airlines", "hotel_chains", "interests"):
        setattr(mine, name, sorted(set(getattr(mine, name)) | set(getattr(theirs, name))))
    mine.save()
    theirs.delete()


# --- documents --------------------------------------------------------------------------------

EXPIRY_WARNING = timedelta(days=183)  # six months


@transaction.atomic
def document_add(*, actor: User | None, customer: Customer, kind: str, issuing_country: str, number: str,
                 via: str, expires_on=None, issued_on=None, valid_for: str = "") -> TravelDocument:
    customer_live(customer)
    clean = crypto.normalise_number(number)
    errors = {}
    if kind not in TravelDocument.Kind.values:
        errors["kind"] = [_("Choose the kind of document.")]
    if not 5 <= len(clean) <= 20:
        errors["number"] = [_("A document number has 5 to 20 letters and digits.")]
    if len(issuing_country or "") != 2:
        errors["issuing_country"] = [_("Use the two-letter country code, e.g. CN.")]
    if expires_on and issued_on and expires_on <= issued_on:
        errors["expires_on"] = [_("The expiry date must come after the issue date.")]
    if errors:
        raise ValidationError(errors)
    issuing_country = issuing_country.upper()
    number_hash = crypto.lookup_hash(f"{kind}:{issuing_country}:{clean}")
    existing = TravelDocument.objects.filter(number_hash=number_hash).select_related("customer").first()
    if existing is not None:
        raise DuplicateCustomer([(existing.customer, _("document %(number)s") % {"number": existing.masked})])

    def write():
        document = TravelDocument.objects.create(
            customer=customer, kind=kind, issuing_country=issuing_country, valid_for=(valid_for or "").upper(),
            number_encrypted=crypto.encrypt(clean), number_hash=number_hash,
            tail_hash=crypto.lookup_hash("tail:" + clean[-4:]), masked=crypto.mask(clean),
            expires_on=expires_on, issued_on=issued_on)
        ChangeLog.objects.create(customer=customer, actor=actor, via=via, field="documents",
                                 new=f"{document.get_kind_display()} {document.masked}")
        return document

    return _save_guarded(write)


def document_reveal(*, actor: User, document: TravelDocument, via: str) -> str:
    """The full number, for roles allowed to see it; every reveal is recorded."""
    if not actor.can(Cap.DOCUMENTS_REVEAL):
        raise PermissionDenied
    DocumentReveal.objects.create(document=document, user=actor, via=via)
    hooks.customer_data_seen(user=actor, customer_id=document.customer_id, what=hooks.Seen.DOCUMENT_REVEAL, via=via,
                             detail=f"{document.kind} {document.masked}")
    return crypto.decrypt(document.number_encrypted)


def document_expiry(document: TravelDocument, *, on: date | None = None) -> str:
    """'expired', 'expiring' (within six months of ``on``, default today) or ''."""
    if document.expires_on is None:
        return ""
    on = on or timezone.localdate()
    if document.expires_on < on:
        return "expired"
    if document.expires_on < on + EXPIRY_WARNING:
        return "expiring"
    return ""


# --- contacts ---------------------------------------------------------------------------------

def contact_add(*, actor: User, customer: Customer, channel: str, summary: "str | texts.Text", direction: str = "out",
                next_step: str = "", next_step_due=None, at=None, lead: bool = False) -> Contact:
    """Log a contact on the customer's timeline. ``lead``: the enquiry of a lead being taken in
    (``crm.pipeline.services.lead_intake``), which calls this inside its own transaction after checking
    the customer live in it: no savepoint and no second check, and the tiers start the lead's clock
    for it rather than a request clock (``contact_added`` with ``lead=True``)."""
    with transaction.atomic(savepoint=not lead):
        if not lead:
            customer_live(customer)
        contact = contact_build(actor=actor, customer=customer, channel=channel, summary=summary, direction=direction,
                                next_step=next_step, next_step_due=next_step_due, at=at)
        insert, params = rows.insert_sql(contact)  # as Contact.objects.create, without its compiler's cost
        with connection.cursor() as cursor:
            cursor.execute(f"{insert} RETURNING id", params)
            rows.inserted(contact, cursor.fetchone()[0])
        contact_announce(contact, lead=lead)
        return contact


def contact_build(*, actor: User | None, customer: Customer, channel: str, summary: "str | texts.Text",
                  direction: str = "out", next_step: str = "", next_step_due=None, at=None) -> Contact:
    """:func:`contact_add`'s checks and its unsaved ``Contact``, for a caller that writes the row as part of
    a statement of its own (a lead's enquiry, with its opportunity: ``crm.pipeline.services``) and then
    calls :func:`contact_announce`, as ``contact_add`` does."""
    errors = {}
    if channel not in Contact.Channel.values:
        errors["channel"] = [_("Choose a channel.")]
    if direction not in Contact.Direction.values:
        errors["direction"] = [_("Choose a direction.")]
    text_kind, text_params = "", {}
    if isinstance(summary, texts.Text):  # the system writes it: shown in each reader's language
        text_kind, text_params, summary = summary.kind, summary.params, str(summary)
    if not (summary or "").strip():
        errors["summary"] = [_("Write what was said or done.")]
    if next_step_due and not (next_step or "").strip():
        errors["next_step"] = [_("Say what the next step is.")]
    if errors:
        raise ValidationError(errors)
    return Contact(customer=customer, staff=actor, channel=channel, direction=direction,
                   summary=summary.strip(), text_kind=text_kind, text_params=text_params,
                   next_step=(next_step or "").strip(), next_step_due=next_step_due, at=at or timezone.now())


def contact_announce(contact: Contact, *, lead: bool = False) -> None:
    """A contact was written: tell the apps (tiers: a response stops service-level clocks; a request starts one)."""
    hooks.contact_added(contact=contact, lead=lead)


def timeline_add(*, customer: Customer, **entry) -> Contact:
    """An entry another record writes on its customer's timeline (a trip's payment, a complaint's status,
    a survey sent…): it belongs on the person's card, so on the survivor when that customer was merged
    away since (trips, complaints and surveys stay with the record they were made for). Staff writing
    to a customer they chose use ``contact_add``, which refuses a merged-away one."""
    return contact_add(customer=customer_survivor(customer), **entry)


def complaint_resolve(*, actor: User, contact: Contact) -> Contact:
    if contact.channel != Contact.Channel.COMPLAINT:
        raise ValidationError(_("Only complaints are resolved."))
    Contact.objects.filter(pk=contact.pk).update(resolved=True)
    contact.resolved = True
    return contact


def _loyalty_text(membership: LoyaltyMembership | None) -> str:
    if membership is None:
        return ""
    return f"{membership.number} ({membership.tier})" if membership.tier else membership.number


@transaction.atomic
def loyalty_set(*, actor: User | None, customer: Customer, programme: str, number: str, tier: str = "",
                via: str = Via.PAGE) -> LoyaltyMembership:
    """Add or change a loyalty number; in the change log as ``loyalty.<programme>``."""
    customer_live(customer)
    if not programme.strip() or not number.strip():
        raise ValidationError({"number": [_("Give the programme and the member number.")]})
    before = LoyaltyMembership.objects.filter(customer=customer, programme=programme.strip()).first()
    membership, _created = LoyaltyMembership.objects.update_or_create(
        customer=customer, programme=programme.strip(), defaults={"number": number.strip(), "tier": tier.strip()})
    if _loyalty_text(before) != _loyalty_text(membership):
        ChangeLog.objects.create(customer=customer, actor=actor, via=via, field=f"loyalty.{membership.programme}",
                                 old=_loyalty_text(before), new=_loyalty_text(membership))
    return membership


@transaction.atomic
def loyalty_remove(*, actor: User | None, customer: Customer, membership: LoyaltyMembership,
                   via: str = Via.PAGE) -> None:
    customer_live(customer)
    if membership.customer_id != customer.pk:
        raise ValidationError({"programme": [_("This loyalty number is not on this customer's card.")]})
    membership.delete()
    ChangeLog.objects.create(customer=customer, actor=actor, via=via, field=f"loyalty.{membership.programme}",
                             old=_loyalty_text(membership), new="")


@transaction.atomic
def family_date_add(*, actor: User | None, customer: Customer, label: str, date, via: str = Via.PAGE) -> FamilyDate:
    customer_live(customer)
    if not (label or "").strip():
        raise ValidationError({"label": [_("Name the occasion.")]})
    row = FamilyDate.objects.create(customer=customer, label=label.strip(), date=date)
    ChangeLog.objects.create(customer=customer, actor=actor, via=via, field="family_dates", old="",
                             new=f"{row.label}: {row.date}")
    return row


@transaction.atomic
def family_date_remove(*, actor: User | None, customer: Customer, family_date: FamilyDate, via: str = Via.PAGE) -> None:
    customer_live(customer)
    if family_date.customer_id != customer.pk:
        raise ValidationError({"label": [_("This date is not on this customer's card.")]})
    family_date.delete()
    ChangeLog.objects.create(customer=customer, actor=actor, via=via, field="family_dates",
                             old=f"{family_date.label}: {family_date.date}", new="")
