"""Erasure (GDPR Art. 17, PIPL Art. 47) and retention of customers' personal data.

Erasure *anonymises* a person rather than deleting the customer row: trips, payments, surveys'
scores and every figure stay for the accounts and the reports, now pointing at "Erased customer #id".
What it does, in one transaction (files deleted and cache entries dropped once it commits):

1. The rows about the person are ``crm.privacy.collect.customer_record_ids`` — the same walk the
   per-customer export uses, so "everything" means the same thing for both. Each model reached has
   a rule in ``RULES``: delete the rows (contact details, documents, preferences, consent…), blank
   named fields (free text, e-mail addresses kept in send logs), or keep (figures, links).
   ``tests/test_erasure.py`` fails when a model the walk reaches has no rule.
2. In those rows, the person's name is replaced wherever it was typed (a trip's title, a task's
   title), and the customer records (the one erased and those merged into it) lose name, birthday,
   notes, tags and search text.
3. Identifiers no one else can have — phone numbers, e-mail addresses, document and member numbers —
   are replaced in every text column of every table of the agency's schema (``sweep``).
4. Uploaded import spreadsheets still on disk that hold the person are deleted.
5. An ``Erasure`` row records who, when, which customer id and why — and nothing personal.

Retention applies the agency's ``RetentionPolicy``: travel documents deleted a set time after the
customer's last trip, and (if the agency chose so) customers inactive for N years anonymised as
above. It runs as the periodic agency job ``retention.run`` and writes a ``RetentionRun`` report.
"""
import logging
import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.roles import Cap, Role
from caravan.mail import mail_each
from caravan.tenancy import require_agency
from crm.customers import crypto
from crm.customers.models import Customer, ImportJob, TravelDocument
from crm.privacy.collect import HOOKS, customer_record_ids, customer_roots
from tenants.jobs import services as agency_jobs

from . import sweep
from .models import Erasure, RetentionPolicy, RetentionRun

log = logging.getLogger(__name__)
JOB = "retention.run"
BATCH = 100  # inactive customers anonymised per run; the rest are due again in a few minutes
AGAIN_SOON = timedelta(minutes=5)


def erased_name(pk: int) -> str:
    return f"Erased customer #{pk}"


# --- cache ------------------------------------------------------------------------------------------

def customer_cache_key(customer_id: int, what: str) -> str:
    """The key for anything cached about one customer. Erasure drops every ``customer:<id>:*`` key
    of the agency (the cache's key function adds the schema)."""
    return f"customer:{customer_id}:{what}"


def _drop_cache(ids) -> None:
    for pk in ids:
        cache.delete_pattern(customer_cache_key(pk, "*"))


# --- the rules ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """What erasure does to a model's rows about the person: ``delete`` them, or ``blank`` these
    fields (empty text, NULL, [] or {}), for every row reached or, with ``where``, only rows whose
    relation named there points at an erased record. Neither: the rows are kept (say ``why``)."""

    delete: bool = False
    blank: tuple[str, ...] = ()
    where: tuple[str, ...] = ()
    why: str = ""


KEEP_FIGURES = Rule(why="figures, dates and links only; the customer they point at is anonymised")
RULES: dict[str, tuple[Rule, ...]] = {
    "crm.Phone": (Rule(delete=True),),
    "crm.Email": (Rule(delete=True),),
    "crm.Address": (Rule(delete=True),),
    "crm.FamilyDate": (Rule(delete=True),),
    "crm.Preferences": (Rule(delete=True),),
    "crm.LoyaltyMembership": (Rule(delete=True),),
    "crm.DocumentReveal": (Rule(delete=True),),
    "crm.TravelDocument": (Rule(delete=True),),
    "document_files.DocumentFile": (Rule(delete=True),),  # the scans (their files go on commit)
    "document_files.DocumentFileView": (Rule(delete=True),),
    "crm.Employment": (Rule(delete=True, where=("person",)),
                       Rule(why="the person's manager link (reports_to) stays on the colleague's row")),
    "crm.Contact": (Rule(blank=("summary", "next_step")),),
    "portal.Message": (Rule(delete=True),),  # the person's conversation with the agency in the portal
    "portal.SignInLink": (Rule(delete=True),),  # the person's sign-in links: an address, hashes, times
    # A proposal as sent is kept with the trip (what was offered, for the accounts); the names in its frozen copy
    # and note are replaced by the name sweep like any text about the person. The acceptance keeps when the
    # proposal was accepted, not who typed what from where.
    "proposals.Proposal": (Rule(blank=("recipient_email",)),),
    "proposals.Acceptance": (Rule(blank=("typed_name", "address", "user_agent")),),
    "checkout.OnlinePayment": (Rule(why="an online payment: amount, Stripe's id, kept for the accounts like the payment"),),
    "checkout.OnlineRefund": (Rule(why="a refund at Stripe: amount and id, kept for the accounts like the payment"),),
    "crm.ChangeLog": (Rule(blank=("old", "new")),),
    "campaigns.Consent": (Rule(delete=True),),
    "campaigns.Recipient": (Rule(blank=("email", "error")),),
    "care.Survey": (Rule(blank=("email", "comment"), where=("customer",)),),
    "care.Complaint": (Rule(blank=("description", "resolution"), where=("customer",)),),
    "loyalty.Greeting": (Rule(blank=("email", "subject", "label")),),
    "loyalty.Suggestion": (Rule(why="a past trip's destination and dates, kept like the trip"),),
    "loyalty.WinBack": (Rule(blank=("reason_note", "offer")),),
    "loyalty.Referral": (Rule(blank=("note",)),),
    "pipeline.Opportunity": (Rule(blank=("message",)),),
    "pipeline.Task": (Rule(blank=("notes",)),),
    "pipeline.InboundEvent": (Rule(why="the sender's event id and links only"),),
    "pipeline.StageChange": (KEEP_FIGURES,),
    "trips.Trip": (Rule(blank=("notes",)),),
    "trips.Traveler": (KEEP_FIGURES,),
    "trips.TripSummary": (KEEP_FIGURES,),
    "trips.ItineraryItem": (Rule(why="what was bought, kept for the accounts; the name is replaced where typed"),),
    "trips.Payment": (Rule(why="money movements, kept for the accounts; the name is replaced where typed"),),
    "trips.ChecklistItem": (Rule(blank=("note",)),),
    "policies.TravelPolicy": (Rule(why="a corporate account's policy, not the person's"),),
    "policies.PolicyVersion": (Rule(why="a corporate account's rules; the travel manager link names the anonymised record"),),
    "policies.BookingCheck": (KEEP_FIGURES,),
    "policies.Approval": (Rule(blank=("approver_email",), where=("approver", "decided_by_person")),
                          Rule(blank=("comment",), where=("traveler", "approver", "decided_by_person"))),
    "tiers.CustomerTier": (Rule(blank=("override_reason",)),),
    "tiers.TierChange": (Rule(blank=("note",)),),
    "tiers.ServiceClock": (KEEP_FIGURES,),
    "visits.VisitPlan": (Rule(blank=("notes", "location")),),
    "visits.Visit": (Rule(blank=("topics", "concerns", "next_steps", "met_others"), where=("account",)),),
    "visits.Visit_met_people": (KEEP_FIGURES,),
    "visits.Visit_staff": (KEEP_FIGURES,),
    "value.CustomerValue": (KEEP_FIGURES,),
    "value.ValueWarning": (KEEP_FIGURES,),
    "retention.Erasure": (Rule(why="the erasure log itself: ids, who, when, why"),),
    "privacy.AccessEntry": (Rule(why="the access log: who saw which customer id, when; documents masked"),),
}


def _blank_value(field: models.Field):
    if field.null:
        return None
    if isinstance(field, models.JSONField):
        return {}
    if field.get_internal_type() == "ArrayField":
        return []
    return ""


def _apply(model, ids: set, roots: list[int]) -> int:
    """Apply ``model``'s rules to its rows ``ids``; returns the rows deleted or changed."""
    done = 0
    for rule in RULES.get(model._meta.label, ()):
        rows = model._base_manager.filter(pk__in=sorted(ids))
        if rule.where:
            condition = models.Q()
            for name in rule.where:
                condition |= models.Q(**{f"{name}__in": roots})
            rows = rows.filter(condition)
        if rule.delete:
            done += rows.delete()[0]
        elif rule.blank:
            done += rows.update(**{name: _blank_value(model._meta.get_field(name)) for name in rule.blank})
    return done


# --- identifiers --------------------------------------------------------------------------------

@dataclass
class Identifiers:
    names: set  # names and member numbers: replaced only in the rows about the person
    exact: set  # patterns no one else can match: phones, e-mails, document numbers (every table)
    needles: set  # plain values, to find the person in uploaded spreadsheets

    def name_pattern(self) -> str | None:
        return sweep.combine(sweep.name_pattern(n) for n in self.names)

    def exact_pattern(self) -> str | None:
        return sweep.combine(self.exact)


def _identifiers(roots: list[int]) -> Identifiers:
    import phonenumbers

    customers = list(Customer._base_manager.filter(pk__in=roots))
    names = set()
    for c in customers:
        # The Latin names also one by one ("ZHEN/SHIYIN" on a ticket): only rows about the person are
        # searched for names, so a common surname elsewhere is never touched.
        names.update(n for n in (c.name, c.latin_name, f"{c.latin_given} {c.latin_surname}",
                                 f"{c.latin_surname} {c.latin_given}", c.latin_surname, c.latin_given)
                     if len(n.strip()) >= 2)
    needles = {" ".join(n.split()).lower() for n in names if " " in n.strip() or not n.isascii()}
    exact = set()
    from crm.customers.models import Email, LoyaltyMembership, Phone
    for number in Phone.objects.filter(customer__in=roots).values_list("number", flat=True):
        if _already_erased(number):
            continue
        try:
            national = str(phonenumbers.parse(number).national_number)
        except phonenumbers.NumberParseException:
            national = number
        exact.add(sweep.digits_pattern(national))
        needles.add(re.sub(r"\D", "", national))
    for address in Email.objects.filter(customer__in=roots).values_list("address", flat=True):
        if _already_erased(address):
            continue
        exact.add(sweep.literal_pattern(address))
        needles.add(address.lower())
    for token in TravelDocument.objects.filter(customer__in=roots).values_list("number_encrypted", flat=True):
        number = crypto.decrypt(token)
        exact.add(sweep.code_pattern(number))
        needles.add(number.lower())
    # Member numbers are not unique across customers (a family may share one): searched for in the
    # rows about the person only, like names.
    names.update(LoyaltyMembership.objects.filter(customer__in=roots).values_list("number", flat=True))
    # Never what an earlier erasure left behind: "[erased]" would match every erased row.
    names = {n for n in names if not _already_erased(n)}
    needles = {n for n in needles if n and not _already_erased(n)}
    return Identifiers(names=names, exact={p for p in exact if p}, needles=needles)


def _already_erased(text: str) -> bool:
    text = text.lower()
    return sweep.REPLACEMENT in text or "erased customer" in text or re.sub(r"[^a-z0-9]", "", text) == "erased"


def _files_of(found: dict) -> list[str]:
    """Stored file names held by any row about the person (e.g. document scans)."""
    names = []
    for model, ids in found.items():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.FileField):
                names += [n for n in model._base_manager.filter(pk__in=sorted(ids))
                          .values_list(field.attname, flat=True) if n]
    return names


def _spreadsheets_holding(needles: set) -> list[tuple[int, str]]:
    """Uploaded import files still on disk with a cell equal to a name, phone (digits), e-mail or
    document number of the person: (job id, file name)."""
    from crm.customers import imports

    held = []
    for job in ImportJob.objects.exclude(file="").only("pk", "file", "original_name"):
        try:
            _headers, rows = imports.read_rows(default_storage.path(job.file.name), job.original_name)
            for row in rows:
                cells = {str(v).strip().lower() for v in row.values() if v}
                cells |= {re.sub(r"\D", "", c) for c in cells}
                if cells & needles or any(c.endswith(n) and n.isdigit() for c in cells for n in needles):
                    held.append((job.pk, job.file.name))
                    break
        except (ValidationError, OSError):
            held.append((job.pk, job.file.name))  # unreadable: it may hold the person; drop it
    return held


# --- erasure --------------------------------------------------------------------------------------

def is_erased(customer: Customer) -> bool:
    return Erasure.objects.filter(customer_ids__contains=[customer.pk]).exists()


# What the erasure page calls the records of models without a translated name of their own (Django's default
# "phones", "visit-customer relationship" would show in English, or half in Chinese).
PREVIEW_LABELS = {
    "crm.Phone": gettext_lazy("Phones"), "crm.Email": gettext_lazy("E-mails"),
    "crm.Address": gettext_lazy("Addresses"), "crm.FamilyDate": gettext_lazy("Family dates"),
    "crm.Preferences": gettext_lazy("Preferences"), "crm.LoyaltyMembership": gettext_lazy("Loyalty programmes"),
    "crm.DocumentReveal": gettext_lazy("Document views"), "crm.TravelDocument": gettext_lazy("Travel documents"),
    "crm.Employment": gettext_lazy("Company links"), "crm.Contact": gettext_lazy("Contacts"),
    "crm.ChangeLog": gettext_lazy("Change history"), "pipeline.InboundEvent": gettext_lazy("Website enquiries"),
    "pipeline.StageChange": gettext_lazy("Stage changes"), "visits.Visit_met_people": gettext_lazy("People met"),
    "visits.Visit_staff": gettext_lazy("Staff on visits"),
}


def preview_label(model) -> str:
    return str(PREVIEW_LABELS.get(model._meta.label, model._meta.verbose_name_plural))


def erasure_preview(customer: Customer) -> dict:
    """What erasing ``customer`` deletes, anonymises and keeps: {translated name of the records: rows}, for the
    page."""
    from crm.customers.services import customer_survivor

    found = customer_record_ids(customer_survivor(customer))
    plan = {"delete": {}, "anonymise": {}, "keep": {}}
    for model, ids in found.items():
        if model is Customer:
            plan["anonymise"][preview_label(model)] = len(ids)
            continue
        rules = RULES.get(model._meta.label, ())
        bucket = "delete" if any(r.delete for r in rules) else "anonymise" if any(r.blank for r in rules) else "keep"
        plan[bucket][preview_label(model)] = len(ids)
    return plan


def customer_erase(*, actor: User, customer: Customer, reason: str, confirm: str, via: str) -> Erasure:
    """Anonymise ``customer`` — and the records merged into it — everywhere, irreversibly. The
    caller must type the customer's number as ``confirm``. Trips and payments stay."""
    if not actor.can(Cap.CUSTOMERS_ERASE):
        raise PermissionDenied
    errors = {}
    if reason not in Erasure.Reason.values or reason == Erasure.Reason.RETENTION:
        errors["reason"] = [_("Choose why the customer's data is erased.")]
    if str(confirm or "").strip().lstrip("#") != str(customer.pk):
        errors["confirm"] = [_("Type the customer number %(number)s to confirm.") % {"number": customer.pk}]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        erasure, pattern = _anonymise(customer, actor=actor, reason=reason, via=via)
        changed = sweep.replace(pattern)
        _add_counts(erasure, changed)
    return erasure


def _anonymise(customer: Customer, *, actor: User | None, reason: str, via: str) -> tuple[Erasure, str | None]:
    """Everything but the schema-wide sweep, which the caller runs (once per batch) with the
    returned pattern. Inside the caller's transaction."""
    from crm.customers.services import customer_survivor

    survivor = customer_survivor(customer)
    if survivor.kind != Customer.Kind.PERSON:
        raise ValidationError(_("Only individuals are erased; a corporate account is not personal data. "
                                "Erase the people linked to it."))
    roots = customer_roots(survivor)
    list(Customer._base_manager.select_for_update().filter(pk__in=roots).order_by("pk"))
    if Erasure.objects.filter(customer_ids__overlap=roots).exists():
        raise ValidationError(_("This customer has already been erased."))
    ids = _identifiers(roots)
    found = customer_record_ids(survivor)
    for hook in HOOKS:  # rows about the person that no foreign key leads to (as the export finds them)
        for model, queryset in hook(sorted(roots)):
            found.setdefault(model, set()).update(queryset.values_list("pk", flat=True))
    files = _files_of(found)
    counts: dict[str, int] = {}
    # Rows with dependents first go through Django; order: children (documents' reveals) before parents.
    for model in sorted((m for m in found if m is not Customer), key=lambda m: m._meta.label):
        done = _apply(model, found[model], roots)
        if done:
            counts[model._meta.label] = done
    # The name where it was typed, in the rows about the person that are still there.
    rows = {}
    for model, pks in found.items():
        if model is Customer or not pks:
            continue
        rows[model._meta.db_table] = (model._meta.pk.column, sorted(pks))
    for table, n in sweep.replace(ids.name_pattern(), rows=rows).items():
        counts[f"name in {table}"] = n
    now = timezone.now()
    for pk in roots:
        placeholder = erased_name(pk)
        Customer._base_manager.filter(pk=pk).update(
            name=placeholder, latin_surname="", latin_given="", gender="", birthday=None, tags=[], notes="",
            industry="", external_ref="", search_text=placeholder.lower(), updated_at=now)
    counts["crm.Customer"] = len(roots)
    sheets = _spreadsheets_holding(ids.needles)
    if sheets:
        ImportJob.objects.filter(pk__in=[pk for pk, _name in sheets]).update(file="")
        files += [name for _pk, name in sheets]
        counts["crm.ImportJob"] = len(sheets)
    erasure = Erasure.objects.create(customer=survivor, customer_ids=roots, actor=actor, via=via, reason=reason,
                                     counts=counts, files_deleted=len(files))
    transaction.on_commit(lambda: _after_commit(files, roots))
    return erasure, ids.exact_pattern()


def _add_counts(erasure: Erasure, changed: dict) -> None:
    if changed:
        for table, n in changed.items():
            erasure.counts[f"identifiers in {table}"] = n
        Erasure.objects.filter(pk=erasure.pk).update(counts=erasure.counts)


def _after_commit(files: list[str], customer_ids: list[int]) -> None:
    for name in files:
        try:
            default_storage.delete(name)
        except OSError:
            log.warning("Could not delete a stored file of an erased customer")  # no name: it is personal
    _drop_cache(customer_ids)


# --- retention policy --------------------------------------------------------------------------

def policy_update(*, actor: User, document_months: int | None, inactive_years: int | None,
                  email_report: bool) -> RetentionPolicy:
    errors = {}
    if document_months is not None and not 1 <= document_months <= 600:
        errors["document_months"] = [_("Choose between 1 and 600 months, or never.")]
    if inactive_years is not None and not 1 <= inactive_years <= 50:
        errors["inactive_years"] = [_("Choose between 1 and 50 years, or off.")]
    if errors:
        raise ValidationError(errors)
    policy = RetentionPolicy.load()
    policy.document_months, policy.inactive_years, policy.email_report = document_months, inactive_years, email_report
    policy.updated_at, policy.updated_by = timezone.now(), actor
    policy.save()
    agency_jobs.due(JOB)  # a shorter period may make work due now
    return policy


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (the month's last day when it has fewer)."""
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    for dd in range(day.day, 27, -1) if day.day > 28 else (day.day,):
        try:
            return date(year, month, dd)
        except ValueError:
            continue
    return date(year, month, 28)


def months_after(day: date, months: int) -> date:
    return months_before(day, -months)


# The date each travel document's clock starts: the later of the day it was added and the end of the
# customer's last trip (as buyer or traveler, on the record or those merged into it).
_DOCUMENT_CLOCK = """
WITH person AS (SELECT id, coalesce(merged_into_id, id) AS root FROM crm_customer),
     trip_of AS (SELECT customer_id, id AS trip_id FROM trips_trip
                 UNION SELECT customer_id, trip_id FROM trips_traveler),
     last_trip AS (SELECT p.root AS customer_id,
                          max(coalesce(t.return_on, t.depart_on, (t.created_at AT TIME ZONE %(tz)s)::date)) AS last_on
                   FROM trip_of x JOIN trips_trip t ON t.id = x.trip_id JOIN person p ON p.id = x.customer_id
                   GROUP BY p.root),
     clock AS (SELECT d.id, greatest((d.created_at AT TIME ZONE %(tz)s)::date, l.last_on) AS since
               FROM crm_traveldocument d LEFT JOIN last_trip l ON l.customer_id = d.customer_id)
"""

# Each person's last sign of life: the record's own changes, a timeline contact, an enquiry, a trip
# (booked or travelled, as buyer or traveler), on the record or those merged into it.
_ACTIVITY = """
WITH person AS (SELECT id, coalesce(merged_into_id, id) AS root FROM crm_customer),
     signs AS (SELECT id AS customer_id, greatest(created_at, updated_at) AS at FROM crm_customer
               UNION ALL SELECT customer_id, max(at) FROM crm_contact GROUP BY customer_id
               UNION ALL SELECT customer_id, max(created_at) FROM pipeline_opportunity GROUP BY customer_id
               UNION ALL SELECT customer_id, max(greatest(created_at, coalesce(return_on, depart_on)::timestamptz))
                         FROM trips_trip GROUP BY customer_id
               UNION ALL SELECT tr.customer_id, max(greatest(t.created_at, coalesce(t.return_on, t.depart_on)::timestamptz))
                         FROM trips_traveler tr JOIN trips_trip t ON t.id = tr.trip_id GROUP BY tr.customer_id),
     activity AS (SELECT p.root AS customer_id, max(s.at) AS at FROM signs s JOIN person p ON p.id = s.customer_id
                  GROUP BY p.root),
     candidate AS (SELECT c.id, a.at FROM crm_customer c JOIN activity a ON a.customer_id = c.id
                   WHERE c.kind = 'person' AND c.merged_into_id IS NULL
                     AND NOT EXISTS (SELECT 1 FROM retention_erasure e WHERE e.customer_id = c.id))
"""


def _select(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _today() -> date:
    with timezone.override(require_agency().time_zone):
        return timezone.localdate()


def documents_cutoff(policy: RetentionPolicy, today: date | None = None) -> date | None:
    """Documents whose clock started before this day are due (None: the policy keeps them)."""
    if policy.document_months is None:
        return None
    return months_before(today or _today(), policy.document_months)


def inactive_cutoff(policy: RetentionPolicy, now: datetime | None = None) -> datetime | None:
    if policy.inactive_years is None:
        return None
    return _years_after(now or timezone.now(), -policy.inactive_years)


def documents_due(policy: RetentionPolicy, *, today: date | None = None) -> list[int]:
    cutoff = documents_cutoff(policy, today)
    if cutoff is None:
        return []
    rows = _select(_DOCUMENT_CLOCK + "SELECT id FROM clock WHERE since < %(cutoff)s ORDER BY id",
                   {"tz": require_agency().time_zone, "cutoff": cutoff})
    return [pk for (pk,) in rows]


def customers_due(policy: RetentionPolicy, *, now: datetime | None = None) -> list[int]:
    cutoff = inactive_cutoff(policy, now)
    if cutoff is None:
        return []
    return [pk for (pk,) in _select(_ACTIVITY + "SELECT id FROM candidate WHERE at < %(cutoff)s ORDER BY at, id",
                                    {"cutoff": cutoff})]


def retention_preview(*, today: date | None = None, now: datetime | None = None) -> dict:
    """The dry run: what the policy would delete and anonymise if it ran now. Counts only."""
    policy = RetentionPolicy.load()
    return {"documents": len(documents_due(policy, today=today)), "customers": len(customers_due(policy, now=now)),
            "documents_cutoff": documents_cutoff(policy, today), "inactive_cutoff": inactive_cutoff(policy, now),
            "document_months": policy.document_months, "inactive_years": policy.inactive_years}


def retention_run(*, trigger: str, actor: User | None = None, today: date | None = None,
                  now: datetime | None = None) -> RetentionRun:
    """Apply the policy once: delete the documents that are due, anonymise up to ``BATCH`` inactive
    customers (the rest are left for the next run, due in a few minutes). One transaction."""
    policy = RetentionPolicy.load()
    now = now or timezone.now()
    run = RetentionRun(trigger=trigger, actor=actor, started_at=now, document_months=policy.document_months,
                       inactive_years=policy.inactive_years, documents_cutoff=documents_cutoff(policy, today),
                       inactive_cutoff=inactive_cutoff(policy, now))
    with transaction.atomic():
        with connection.cursor() as cursor:  # one run at a time per agency (the lock ends with the transaction)
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':retention.run'))")
        documents = documents_due(policy, today=today)
        if documents:
            found = {TravelDocument: set(documents)}
            files = _files_of(found)
            run.documents_deleted = TravelDocument.objects.filter(pk__in=documents).delete()[1].get(
                TravelDocument._meta.label, 0)
            run.files_deleted += len(files)
            transaction.on_commit(lambda: _after_commit(files, []))
        due = customers_due(policy, now=now)
        batch, run.remaining = due[:BATCH], max(0, len(due) - BATCH)
        patterns = []
        for customer in Customer.objects.filter(pk__in=batch).order_by("pk"):
            try:
                erasure, pattern = _anonymise(customer, actor=None, reason=Erasure.Reason.RETENTION,
                                              via=Erasure.Via.RETENTION)
            except ValidationError:
                continue  # erased meanwhile by an admin (checked before anything is written)
            patterns.append(pattern)
            run.files_deleted += erasure.files_deleted
            run.customers_anonymised += 1
        sweep.replace(sweep.combine(patterns))
        run.finished_at = timezone.now()
        run.save()
    if policy.email_report and (run.documents_deleted or run.customers_anonymised):
        _email_report(run)
    return run


def _email_report(run: RetentionRun) -> None:
    admins = User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk")
    try:
        sent = mail_each(admins, template="retention/report_email", context={"run": run}, agency=require_agency())
    except OSError:
        log.warning("The retention report e-mail could not be sent")
        return
    if sent:
        run.emailed_at = timezone.now()
        RetentionRun.objects.filter(pk=run.pk).update(emailed_at=run.emailed_at)


def retention_next_due(*, now: datetime | None = None) -> datetime | None:
    """When the policy next has work: the first document or customer to come due, or soon when the
    last run left customers for later. None: nothing known (the job's safety net decides)."""
    now = now or timezone.now()
    policy = RetentionPolicy.load()
    last = RetentionRun.objects.order_by("-started_at", "-id").first()
    if last is not None and last.remaining:
        return now + AGAIN_SOON
    agency = require_agency()
    times = []
    if policy.document_months is not None:
        (first,), = _select(_DOCUMENT_CLOCK + "SELECT min(since) FROM clock", {"tz": agency.time_zone})
        if first is not None:
            due_day = months_after(first, policy.document_months) + timedelta(days=1)
            times.append(now if due_day <= _today() else
                         datetime.combine(due_day, time(3, 0), tzinfo=zoneinfo.ZoneInfo(agency.time_zone)))
    if policy.inactive_years is not None:
        (first,), = _select(_ACTIVITY + "SELECT min(at) FROM candidate", {})
        if first is not None:
            times.append(max(now, _years_after(first, policy.inactive_years)))
    return min(times) if times else None


def _years_after(moment: datetime, years: int) -> datetime:
    day = 28 if (moment.month, moment.day) == (2, 29) else moment.day
    return moment.replace(year=moment.year + years, day=day)


# --- reads for the pages and the API ---------------------------------------------------------------

def recent_runs(limit: int = 10):
    return RetentionRun.objects.select_related("actor").order_by("-started_at", "-id")[:limit]


def recent_erasures(limit: int = 20):
    return Erasure.objects.select_related("actor").order_by("-at", "-id")[:limit]
