"""Pipeline writes: opportunities and their stages, assignment, follow-up tasks (R-SALE-1, 2, 6).

Every path — pages, API, the website webhook, the enquiry form, trips and care jobs — comes
through here. Moves between stages are checked against :data:`ALLOWED`, defined on stage *kinds*
so that an agency's own stages can never open an illegal path.
"""
import functools
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Min
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap
from caravan import texts
from caravan.db.prepared import execute_prepared
from caravan.tenancy import require_agency
from crm.customers import crypto, rows
from crm.customers import services as crm_services
from crm.customers.models import ChangeLog, Contact, Customer
from crm.customers.normalize import email_normal, phone_e164
from tenants.jobs import services as agency_jobs

from . import hooks
from .models import AssignmentRule, InboundEvent, IntakeSettings, Opportunity, Stage, StageChange, Task, Team

K = Stage.Kind
# from kind -> kinds it may move to. Won is final: the trip carries on from there.
ALLOWED: dict[str, set[str]] = {
    K.OPEN: {K.OPEN, K.DEPOSIT, K.WON, K.LOST},  # open → won: corporate accounts on credit pay later
    K.DEPOSIT: {K.WON, K.LOST},
    K.WON: set(),
    K.LOST: {K.OPEN},  # reopen
}


class IllegalTransition(ValidationError):
    """A move the workflow does not allow, e.g. lost → won. Shown as a field error on ``field``."""

    def __init__(self, message: str, field: str = "stage"):
        super().__init__({field: [message]}, code="illegal_transition")


def stage_of(kind: str) -> Stage:
    """The one deposit / won / lost stage."""
    return Stage.objects.get(kind=kind)


def _first_stages():
    return Stage.objects.filter(kind=K.OPEN, is_active=True).order_by("position", "id")


def first_stage() -> Stage:
    return _first_stages().first()


@functools.cache
def _first_stage_sql() -> tuple[str, tuple]:
    """:func:`first_stage`'s id as a query and its parameters, compiled once per process (the text names
    no schema: the connection's search path picks the agency's table)."""
    sql, params = _first_stages().values("pk")[:1].query.sql_with_params()
    return sql, tuple(params)


def _move_refused(current: Stage, to: Stage) -> str | None:
    """Why an opportunity at ``current`` may not move to ``to``, or None: the one rule for moves."""
    if to.pk == current.pk:
        return _("The opportunity is already at “%(stage)s”.") % {"stage": current}
    if not to.is_active:
        return _("The stage “%(stage)s” is no longer in use.") % {"stage": to}
    if to.kind not in ALLOWED[current.kind]:
        return _("An opportunity cannot move from “%(from)s” to “%(to)s”.") % {"from": current, "to": to}
    return None


def check_move(opportunity: Opportunity, to: Stage) -> None:
    refused = _move_refused(opportunity.stage, to)
    if refused:
        raise IllegalTransition(refused)


def move_targets(stage: Stage, stages) -> list[Stage]:
    """The stages (of ``stages``) an opportunity at ``stage`` may move to: what its move menu offers."""
    return [to for to in stages if _move_refused(stage, to) is None]


def opportunity_lock(pk: int) -> Opportunity:
    """The opportunity, its row locked until the transaction ends (call inside ``atomic``).

    The lock is taken on the opportunity's row alone, never with a join (``select_related``): a
    ``SELECT … FOR UPDATE`` that joins the stage re-checks the join against the row as a concurrent
    transaction left it, and when that one moved the opportunity to another stage the row no longer
    joined, so the second of two concurrent "prepare quote" found nothing (DoesNotExist, a 500).
    Stage and customer are read after the lock, as they are now."""
    return Opportunity.objects.select_for_update(of=("self",)).get(pk=pk)


@transaction.atomic
def opportunity_move(*, actor: User | None, opportunity: Opportunity, to: Stage, lost_reason: str = "",
                     lost_note: str = "") -> Opportunity:
    """Move to another stage, if the workflow allows it. Lost needs a reason."""
    opportunity = opportunity_lock(opportunity.pk)
    check_move(opportunity, to)
    if to.kind == K.LOST and lost_reason not in Opportunity.LostReason.values:
        raise ValidationError({"lost_reason": [_("Say why the opportunity was lost.")]})
    now = timezone.now()
    StageChange.objects.create(opportunity=opportunity, from_stage=opportunity.stage, to_stage=to, actor=actor, at=now)
    opportunity.stage = to
    opportunity.stage_changed_at = now
    opportunity.closed_at = now if to.is_closed else None
    if to.kind == K.LOST:
        opportunity.lost_reason, opportunity.lost_note = lost_reason, (lost_note or "").strip()
    elif to.kind == K.OPEN:
        opportunity.lost_reason, opportunity.lost_note = "", ""
    opportunity.save(update_fields=["stage", "stage_changed_at", "closed_at", "lost_reason", "lost_note"])
    # Tiers: a first move answers the lead. Trips: won confirms the quote as the order, lost cancels the quote.
    hooks.opportunity_moved(actor=actor, opportunity=opportunity)
    return opportunity


def task_create(*, actor: User | None, title: str, owner: User | None, due_at: datetime, kind: str = Task.Kind.FOLLOW_UP,
                customer=None, opportunity=None, trip=None, notes: str = "", remind_at: datetime | None = None,
                key: str | None = None, text: tuple[str, dict] | None = None,
                note: tuple[str, dict] | None = None) -> Task:
    """Create a task. With ``key``, a second call with the same key returns the first task unchanged,
    so jobs that run twice make each task once. ``text``: a title the system writes, as
    ``caravan.texts.store(kind, **params)``; ``title`` is then its rendering (kept as the fallback)
    and may be left out (rendered in the agency's language). ``note``: the same for notes the system
    writes (``notes`` then their fallback rendering, made in the agency's language when left out)."""
    text_kind, text_params = text or ("", {})
    note_kind, note_params = note or ("", {})
    if note_kind and not (notes or "").strip():
        with translation.override(require_agency().language):
            notes = texts.render(note_kind, note_params)
    if text_kind and not (title or "").strip():
        with translation.override(require_agency().language):
            title = texts.render(text_kind, text_params)
    errors = {}
    if not (title or "").strip():
        errors["title"] = [_("Say what needs doing.")]
    if due_at is None:
        errors["due_at"] = [_("Give a due date.")]
    if remind_at and due_at and remind_at > due_at:
        errors["remind_at"] = [_("The reminder must come before the due date.")]
    if kind not in Task.Kind.values:
        errors["kind"] = [_("Choose a kind of task.")]
    if errors:
        raise ValidationError(errors)
    fields = dict(title=title.strip()[:200], text_kind=text_kind, text_params=text_params, kind=kind, owner=owner, due_at=due_at, remind_at=remind_at, customer=customer,
                  opportunity=opportunity, trip=trip, notes=(notes or "").strip(), note_kind=note_kind, note_params=note_params,
                  created_by=actor)
    if remind_at:
        agency_jobs.due("pipeline.send_task_reminders", remind_at)
    if key is None:
        return Task.objects.create(**fields)
    task, _created = Task.objects.get_or_create(key=key, defaults=fields)
    return task


# What str.strip() strips, as an SQL string for btrim(): the twin trims exactly as task_create does.
_STRIPPED = "E'" + "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x3001)) if c.isspace()) + "'"


def tasks_create_sql(rows: str, *, kind: str, trip: bool = False, returning: bool = False, texts: bool = False,
                     notes_text: bool = False) -> str:
    """The set-based twin of :func:`task_create`, for jobs that make many tasks in one statement:
    the text of ``INSERT INTO <task> … SELECT … FROM (rows) … ON CONFLICT (key) DO NOTHING``, to run
    on its own or to embed as a CTE (``RETURNING id`` with ``returning``).

    ``rows`` is a SELECT giving one row per task, in this order: title, [text_kind, text_params when
    ``texts``], notes, owner_id, customer_id, [trip_id when ``trip``], due_at, key, created_at (the
    job's clock). With ``texts`` the title is a system text (``caravan.texts``): its kind and its
    params (jsonb) are stored, and the title column keeps the rendering in the agency's language as
    the fallback. With ``notes_text`` the notes are one too: ``rows`` gives note_kind, note_params
    right after notes. The rules are
    task_create's: title and notes stripped (the title cut to the column's 200 characters), a blank
    title or no due date refused (the statement fails on the NOT NULL column, as task_create raises),
    ``kind`` one of :class:`Task.Kind` (checked here, so a wrong kind fails at import), no creator,
    opportunity or reminder (so no ``pipeline.send_task_reminders`` to schedule), and the key makes
    it idempotent (so every row needs one): a row whose key exists already — made by a job or by
    task_create — leaves that task unchanged. The text keeps ``rows``' placeholders (``{customer}``,
    ``%(now)s``) for the caller to fill; the planner pulls the subquery up, so wrapping costs nothing.
    """
    kind = Task.Kind(kind).value  # ValueError for an unknown kind
    trip_id, its_trip = (" trip_id,", " new.trip_id,") if trip else ("", "")
    text_cols, its_text = ((" text_kind, text_params,", " coalesce(new.text_kind, ''), coalesce(new.text_params::jsonb, jsonb_build_object()),")
                           if texts else (" text_kind, text_params,", " '', jsonb_build_object(),"))
    given_text = " text_kind, text_params," if texts else ""
    its_note = (" coalesce(new.note_kind, ''), coalesce(new.note_params::jsonb, jsonb_build_object()),"
                if notes_text else " '', jsonb_build_object(),")
    given_note = " note_kind, note_params," if notes_text else ""
    return f"""INSERT INTO {Task._meta.db_table} (title,{text_cols} kind, notes, note_kind, note_params, owner_id, customer_id,{trip_id} due_at, key, created_at)
SELECT left(nullif(btrim(new.title, {_STRIPPED}), ''), 200),{its_text} '{kind}', btrim(coalesce(new.notes, ''), {_STRIPPED}),{its_note}
       new.owner_id, new.customer_id,{its_trip} new.due_at::timestamptz, new.key, new.created_at::timestamptz
FROM ({rows}
) AS new (title,{given_text} notes,{given_note} owner_id, customer_id,{trip_id} due_at, key, created_at)
ON CONFLICT (key) DO NOTHING{" RETURNING id" if returning else ""}"""


# --- leads in ---------------------------------------------------------------------------------------

_CUSTOMER_SOURCE = {Opportunity.Source.WEBSITE_FORM: Customer.Source.WEBSITE, Opportunity.Source.WEBSITE: Customer.Source.WEBSITE,
                    Opportunity.Source.CALL_CENTER: Customer.Source.CALL_CENTER, Opportunity.Source.STAFF: Customer.Source.OTHER}


def customer_for_contact(*, name: str, phone: str = "", email: str = "", source: str = Customer.Source.OTHER,
                         actor: User | None = None, via: str = ChangeLog.Via.SYSTEM, language: str = "",
                         ahead: crm_services.DuplicatesAhead | None = None) -> tuple[Customer, bool]:
    """The customer with this phone or e-mail (following merges), or a new one. Never a duplicate:
    if someone else creates the same customer at the same moment, theirs is found and used.
    Returns (customer, created). ``ahead``: the duplicates read already (``crm_services.duplicates_ahead``)."""
    phones, emails = [phone] if (phone or "").strip() else [], [email] if (email or "").strip() else []
    if not phones and not emails:
        raise ValidationError({"phone": [_("Give a phone number or an e-mail address.")]})
    fields = {"name": (name or "").strip(), "source": source}
    if language:
        fields["language"] = language
    try:  # no savepoint of its own: customer_create raises before writing, or after undoing what it wrote
        return crm_services.customer_create(actor=actor, via=via, phones=phones, emails=emails, ahead=ahead,
                                            **fields), True
    except ValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise
        # Intake forms have one phone and one e-mail field.
        renamed = {"phones": "phone", "emails": "email"}
        raise ValidationError({renamed.get(k, k): v for k, v in exc.message_dict.items()}) from exc
    except crm_services.DuplicateCustomer as exc:
        # On file already, or created by someone else this very moment (the unique index decided).
        # The phone decides over the e-mail when they point at two people.
        matches = exc.matches or _on_file(phones, emails)
        return crm_services.customer_survivor(matches[0][0]), False


def _on_file(phones: list, emails: list) -> list:
    """After a unique-index race the winner has committed: find it by the normalised contacts."""
    region = require_agency().default_region
    return crm_services.find_duplicates(phones=[phone_e164(p, region) for p in phones],
                                        emails=[email_normal(e) for e in emails])


@transaction.atomic
def lead_intake(**given) -> Opportunity:
    """A lead from the website form, the website webhook, the call center or staff: linked to the
    customer on file by phone or e-mail (or a new customer), put in the first stage, timeline
    entry, then given an owner (``owner``, or the assignment rules). Keywords: see :func:`lead_take_in`."""
    return lead_take_in(**given)


def lead_take_in(*, source: str, name: str = "", phone: str = "", email: str = "", customer: Customer | None = None,
                 title: str = "", destination: str = "", depart_on=None, return_on=None, adults: int = 1, children: int = 0,
                 budget=None, message: str = "", actor: User | None = None, owner: User | None = None,
                 language: str = "", event: InboundEvent | None = None,
                 rules: list[AssignmentRule] | None = None,
                 ahead: crm_services.DuplicatesAhead | None = None) -> Opportunity:
    """:func:`lead_intake` without a transaction (or savepoint) of its own, for a caller that is in one
    and lets any exception roll it back (the website webhook's ``intake.event_handle``). ``event``: the
    webhook's claimed event row, linked to the customer and the opportunity by the opportunity's own
    statement. ``rules``: the active assignment rules, when the caller read them already
    (:func:`active_rules_read`; the webhook, in the round trip of its event's claim). ``ahead``: the
    customer's duplicates read already (``crm_services.duplicates_ahead``; the webhook, there too)."""
    errors = {}
    if source not in Opportunity.Source.values:
        errors["source"] = [_("Unknown source.")]
    if depart_on and return_on and return_on < depart_on:
        errors["return_on"] = [_("The return cannot be before the departure.")]
    if adults is None or adults < 1 or adults > 99:
        errors["adults"] = [_("Between 1 and 99 adults.")]
    if children is None or children < 0 or children > 99:
        errors["children"] = [_("Between 0 and 99 children.")]
    if budget is not None and budget < 0:
        errors["budget"] = [_("The budget cannot be negative.")]
    if customer is None and not (name or "").strip():
        errors["name"] = [_("Give the customer's name.")]
    if errors:
        raise ValidationError(errors)
    if owner is not None:
        _check_owner(owner)
    created = False
    if customer is None:
        customer, created = customer_for_contact(name=name, phone=phone, email=email, actor=actor,
                                                 source=_CUSTOMER_SOURCE[source], language=language, ahead=ahead)
    destination = (destination or "").strip()
    opportunity = Opportunity(
        customer=customer, title=(title or "").strip()[:200] or destination or _("Enquiry"), destination=destination,
        depart_on=depart_on, return_on=return_on, adults=adults, children=children, budget=budget,
        value=budget or 0, currency=require_agency().currency, message=(message or "").strip(), source=source,
        created_by=actor)
    chosen = owner if owner is not None else rules_pick_owner(opportunity, rules=rules)
    if chosen is not None:  # given an owner as it is made (no UPDATE after)
        opportunity.owner, opportunity.assigned_at = chosen, timezone.now()
    # The enquiry on the timeline, written by the opportunity's statement (as contact_add, lead=True, would).
    enquiry = crm_services.contact_build(
        actor=actor, customer=customer, channel=Contact.Channel.MESSAGE if source != Opportunity.Source.CALL_CENTER
        else Contact.Channel.CALL, direction=Contact.Direction.INBOUND,
        summary=_("Enquiry (%(source)s): %(what)s") % {"source": opportunity.get_source_display(),
                                                      "what": opportunity.title + (f" — {opportunity.message}" if opportunity.message else "")})
    # One made in this transaction cannot have been merged away; one on file is checked by the insert.
    _insert_in_first_stage(opportunity, actor=actor, check_live=not created, event=event, enquiry=enquiry)
    crm_services.contact_announce(enquiry, lead=True)
    if owner is not None:
        _new_lead_task(actor=actor, opportunity=opportunity, owner=owner)
    hooks.lead_received(opportunity=opportunity, contact=enquiry)  # tiers: the lead's service-level clock
    return opportunity


def _insert_in_first_stage(opportunity: Opportunity, *, actor: User | None, check_live: bool = True,
                           event: InboundEvent | None = None, enquiry: Contact | None = None) -> None:
    """INSERT the new opportunity in the first open stage (:func:`first_stage`, read by the same
    statement) and its first ``StageChange`` (none → that stage), in one statement.

    ``check_live``: the same statement reads the customer ``FOR KEY SHARE`` (as
    ``crm_services.customer_live``, whose lock the opportunity's foreign key takes anyway) and a
    merged-away customer is refused (``MergedAway``, naming the survivor) after it: the caller's
    transaction, which the exception rolls back, holds the rows it wrote. ``event``: the webhook's
    event row is linked to the customer and the opportunity by the same statement. ``enquiry``: the
    lead's unsaved enquiry (``crm_services.contact_build``), inserted by the same statement too."""
    stage_sql, stage_params = _first_stage_sql()
    insert, params = rows.insert_sql(opportunity, stage_id="(SELECT pk FROM first_stage)")
    quote = connection.ops.quote_name
    live, live_params = "", []
    if check_live:
        live = (f"live AS (SELECT merged_into_id FROM {quote(Customer._meta.db_table)} WHERE id = %s FOR KEY SHARE), ")
        live_params = [opportunity.customer_id]
    link, link_params = "", []
    if event is not None:
        link = (f", link AS (UPDATE {quote(InboundEvent._meta.db_table)} AS e SET customer_id = new.customer_id, "
                "opportunity_id = new.id FROM new WHERE e.id = %s)")
        link_params = [event.pk]
    contact, contact_params = "", []
    if enquiry is not None:
        contact, contact_params = rows.insert_sql(enquiry)
        contact = f", enquiry AS ({contact} RETURNING id)"
    sql = (f"WITH {live}first_stage AS ({stage_sql}), new AS ({insert} RETURNING id, stage_id, customer_id), "
           f"history AS (INSERT INTO {quote(StageChange._meta.db_table)} (opportunity_id, from_stage_id, "
           "to_stage_id, actor_id, at) SELECT new.id, NULL, new.stage_id, %s, %s FROM new)"
           f"{link}{contact} SELECT id, stage_id, {'(SELECT merged_into_id FROM live)' if check_live else 'NULL'}, "
           f"{'(SELECT id FROM enquiry)' if enquiry is not None else 'NULL'} FROM new")
    with connection.cursor() as cursor:  # prepared once per connection (caravan.db.prepared): its text varies only with the flags
        execute_prepared(cursor, sql, [*live_params, *stage_params, *params, actor.pk if actor else None, timezone.now(),
                                       *link_params, *contact_params])
        pk, opportunity.stage_id, merged_into, enquiry_pk = cursor.fetchone()
    if merged_into is not None:  # a merged-away record is refused, naming the survivor
        raise crm_services.MergedAway(opportunity.customer,
                                      crm_services.customer_survivor(Customer.objects.get(pk=merged_into)))
    rows.inserted(opportunity, pk)
    if enquiry is not None:
        rows.inserted(enquiry, enquiry_pk)
    if event is not None:
        event.customer, event.opportunity = opportunity.customer, opportunity


# --- owners -----------------------------------------------------------------------------------------

def _set_owner(opportunity: Opportunity, owner: User | None) -> Opportunity:
    now = timezone.now()
    Opportunity.objects.filter(pk=opportunity.pk).update(owner=owner, assigned_at=now if owner else None)
    opportunity.owner, opportunity.assigned_at = owner, now if owner else None
    return opportunity


_RULE_PARTS = (("r", AssignmentRule), ("t", Team), ("u", User))


@functools.cache
def active_rules_sql() -> str:
    """The active assignment rules by position, each with its team and user (as
    ``AssignmentRule.objects.filter(is_active=True).select_related("team", "user")``), written once per
    process: compiling that query on every lead cost more than running it."""
    quote = connection.ops.quote_name
    return (f"SELECT {', '.join(rows.columns(model, alias) for alias, model in _RULE_PARTS)} "
            f"FROM {quote(AssignmentRule._meta.db_table)} r "
            f"LEFT JOIN {quote(Team._meta.db_table)} t ON t.id = r.team_id "
            f"LEFT JOIN {quote(User._meta.db_table)} u ON u.id = r.user_id "
            "WHERE r.is_active ORDER BY r.position, r.id")


def active_rules_read(found: list[tuple] | None = None) -> list[AssignmentRule]:
    """The active assignment rules with their team and user, from the rows of :func:`active_rules_sql`
    (``found``, for a caller that ran it in a round trip of its own) or read now."""
    if found is None:
        with connection.cursor() as cursor:
            cursor.execute(active_rules_sql())
            found = cursor.fetchall()
    widths = [len(model._meta.concrete_fields) for _alias, model in _RULE_PARTS]
    rules = []
    for row in found:
        rule_values, team_values, user_values = row[:widths[0]], row[widths[0]:-widths[2]], row[-widths[2]:]
        rule = rows.from_row(AssignmentRule, rule_values)
        rule.team, rule.user = rows.from_row(Team, team_values), rows.from_row(User, user_values)  # None: no query
        rules.append(rule)
    return rules


def rules_pick_owner(opportunity: Opportunity, *, rules: list[AssignmentRule] | None = None) -> User | None:
    """The first active rule (by position) that yields an active colleague who may work leads. ``rules``:
    :func:`active_rules_read`'s answer when the caller has it (read now otherwise)."""
    for rule in (active_rules_read() if rules is None else rules):
        if rule.kind == AssignmentRule.Kind.CUSTOMER_OWNER:
            owner = opportunity.customer.owner
            if owner is not None and owner.is_active and owner.can(Cap.PIPELINE_WORK):
                return owner
            continue
        if rule.kind == AssignmentRule.Kind.DESTINATION:
            keyword = rule.destination.strip().lower()
            if not keyword or keyword not in f"{opportunity.destination} {opportunity.title}".lower():
                continue
            if rule.user_id and rule.user.is_active:
                return rule.user
        if rule.team_id:
            chosen = _round_robin(rule.team)
            if chosen is not None:
                return chosen
    return None


def _round_robin(team: Team) -> User | None:
    """The member after the one who got the last lead (by id, wrapping). The team row is locked, so
    leads arriving at the same moment go to different people."""
    team = Team.objects.select_for_update().get(pk=team.pk)
    members = [u for u in team.members.filter(is_active=True).order_by("pk") if u.can(Cap.PIPELINE_WORK)]
    if not members:
        return None
    after = [u for u in members if team.last_assigned_id is not None and u.pk > team.last_assigned_id]
    chosen = (after or members)[0]
    Team.objects.filter(pk=team.pk).update(last_assigned=chosen)
    return chosen


class AlreadyTaken(ValidationError):
    """Someone else owns the lead already (409 in the API)."""

    def __init__(self, owner: User):
        self.owner = owner
        super().__init__({"owner": [_("%(name)s has already taken this lead.") % {"name": owner.full_name or owner.email}]},
                         code="already_taken")


def opportunity_take(*, actor: User, opportunity: Opportunity) -> Opportunity:
    """A salesperson takes an unowned lead. One UPDATE … WHERE owner IS NULL decides: of two people
    clicking at once, exactly one gets it and the other is told who did."""
    if not actor.can(Cap.PIPELINE_WORK):
        raise PermissionDenied
    now = timezone.now()
    taken = Opportunity.objects.filter(pk=opportunity.pk, owner__isnull=True, closed_at__isnull=True) \
        .update(owner=actor, assigned_at=now)
    current = Opportunity.objects.select_related("owner", "stage").get(pk=opportunity.pk)
    if not taken:
        if current.owner_id and current.owner_id != actor.pk:
            raise AlreadyTaken(current.owner)
        if current.closed_at:
            raise IllegalTransition(_("This opportunity is closed."), field="owner")
    return current


def _check_owner(owner: User | None) -> None:
    if owner is None or not owner.is_active or owner.is_operator or not owner.can(Cap.PIPELINE_WORK):
        raise ValidationError({"owner": [_("Choose an active colleague who works leads.")]})


def opportunity_assign(*, actor: User | None, opportunity: Opportunity, owner: User) -> Opportunity:
    """A manager (or the system) gives the opportunity to someone, taken or not."""
    _check_owner(owner)
    opportunity = _set_owner(opportunity, owner)
    _new_lead_task(actor=actor, opportunity=opportunity, owner=owner)
    return opportunity


def _new_lead_task(*, actor: User | None, opportunity: Opportunity, owner: User) -> None:
    """Someone else gave ``owner`` the lead: a call task for them."""
    if actor is not None and actor.pk != owner.pk:
        task_create(actor=actor, owner=owner, customer=opportunity.customer, opportunity=opportunity, kind=Task.Kind.CALL,
                    title=_("New lead: %(title)s") % {"title": opportunity.title}, due_at=timezone.now() + timedelta(hours=2),
                    text=texts.store("new_lead", title=opportunity.title))


# --- editing ----------------------------------------------------------------------------------------

OPPORTUNITY_EDITABLE = ("title", "destination", "depart_on", "return_on", "adults", "children", "budget", "value",
                        "message", "is_key")


def opportunity_update(*, actor: User | None, opportunity: Opportunity, **fields) -> Opportunity:
    unknown = set(fields) - set(OPPORTUNITY_EDITABLE)
    if unknown:
        raise ValidationError({name: [_("This field cannot be changed here.")] for name in unknown})
    for name, value in fields.items():
        setattr(opportunity, name, value.strip() if isinstance(value, str) else value)
    errors = {}
    if not opportunity.title:
        errors["title"] = [_("Give the opportunity a title.")]
    if opportunity.depart_on and opportunity.return_on and opportunity.return_on < opportunity.depart_on:
        errors["return_on"] = [_("The return cannot be before the departure.")]
    if opportunity.value is None or opportunity.value < 0:
        errors["value"] = [_("The expected value cannot be negative.")]
    if opportunity.budget is not None and opportunity.budget < 0:
        errors["budget"] = [_("The budget cannot be negative.")]
    if not 1 <= (opportunity.adults or 0) <= 99:
        errors["adults"] = [_("Between 1 and 99 adults.")]
    if errors:
        raise ValidationError(errors)
    opportunity.save(update_fields=list(fields) or None)
    return opportunity


def task_done(*, actor: User, task: Task, done: bool = True) -> Task:
    Task.objects.filter(pk=task.pk).update(done_at=timezone.now() if done else None, done_by=actor if done else None)
    task.refresh_from_db()
    return task


def task_update(*, actor: User, task: Task, **fields) -> Task:
    allowed = {"title", "notes", "due_at", "remind_at", "owner"}
    for name, value in fields.items():
        if name not in allowed:
            raise ValidationError({name: [_("This field cannot be changed here.")]})
        if name == "title":
            if task.text_kind and (value or "").strip() == task.display_title:
                continue  # the system's title, unchanged: it stays in the reader's language
            task.text_kind, task.text_params = "", {}  # typed over: the person's text from now on
        if name == "notes":
            if task.note_kind and (value or "").strip() == task.display_notes.strip():
                continue  # the system's notes, unchanged: they stay in the reader's language
            task.note_kind, task.note_params = "", {}
        setattr(task, name, value)
    if not (task.title or "").strip():
        raise ValidationError({"title": [_("Say what needs doing.")]})
    if task.remind_at and task.remind_at > task.due_at:
        raise ValidationError({"remind_at": [_("The reminder must come before the due date.")]})
    if "remind_at" in fields or "due_at" in fields:
        task.reminded_at = None
        if task.remind_at:
            agency_jobs.due("pipeline.send_task_reminders", task.remind_at)
    task.save()
    return task


# --- stages and the webhook secret ---------------------------------------------------------------

def stage_save(*, actor: User, stage: Stage | None = None, name: str, probability: int, position: int,
               is_active: bool = True) -> Stage:
    """Add an open stage or change one. Deposit, won and lost exist once and cannot be switched off."""
    stage = stage or Stage(kind=Stage.Kind.OPEN)
    errors = {}
    if not (name or "").strip() and not stage.code:
        errors["name"] = [_("Name the stage.")]
    if probability is None or not 0 <= probability <= 100:
        errors["probability"] = [_("Between 0 and 100.")]
    if not is_active and stage.kind != Stage.Kind.OPEN:
        errors["is_active"] = [_("The deposit, won and lost stages are always in use.")]
    if not is_active and stage.pk and stage.opportunities.filter(closed_at__isnull=True).exists():
        errors["is_active"] = [_("Move the open opportunities out of this stage first.")]
    if not is_active and stage.pk and not Stage.objects.filter(kind=Stage.Kind.OPEN, is_active=True).exclude(pk=stage.pk).exists():
        errors["is_active"] = [_("Keep at least one open stage.")]
    if errors:
        raise ValidationError(errors)
    stage.name, stage.probability, stage.position, stage.is_active = (name or "").strip(), probability, position, is_active
    stage.save()
    return stage


def webhook_secret(*, create: bool = False) -> str | None:
    """The agency's webhook secret in clear, made on first use when ``create``. Read on every webhook
    delivery: the one column, by a statement written out (the settings row is made when missing)."""
    with connection.cursor() as cursor:  # prepared once per connection (caravan.db.prepared)
        execute_prepared(cursor, f"SELECT webhook_secret FROM {connection.ops.quote_name(IntakeSettings._meta.db_table)}"
                                 " WHERE id = %s", [1])
        row = cursor.fetchone()
    stored = row[0] if row is not None else intake_settings().webhook_secret
    if stored:
        return _secret_clear(settings.DOCUMENT_KEYS, bytes(stored))
    return webhook_secret_rotate(actor=None) if create else None


@functools.lru_cache(maxsize=256)
def _secret_clear(keys: str, stored: bytes) -> str:
    """``stored`` decrypted with ``keys`` (``DOCUMENT_KEYS``): the same answer every time for the same two,
    so kept per process (decrypting cost a webhook delivery more than reading the column). A rotated
    secret is another ``stored``, so it takes effect at once."""
    return crypto.decrypt(stored.decode())


def webhook_secret_rotate(*, actor: User | None) -> str:
    """A new secret (the old one stops working at once). Shown once to the admin; stored encrypted."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    IntakeSettings.objects.update_or_create(pk=1, defaults={"webhook_secret": crypto.encrypt(secret).encode(),
                                                            "secret_rotated_at": timezone.now()})
    return secret


def intake_settings() -> IntakeSettings:
    return IntakeSettings.objects.get_or_create(pk=1)[0]


def intake_settings_update(*, actor: User, form_enabled: bool, form_thanks: str = "") -> IntakeSettings:
    """Switch the public enquiry form on or off and set its thank-you text."""
    IntakeSettings.objects.update_or_create(pk=1, defaults={"form_enabled": form_enabled,
                                                            "form_thanks": (form_thanks or "").strip()})
    return intake_settings()


# --- reminders --------------------------------------------------------------------------------------

def task_reminders_send(*, now=None) -> int:
    """E-mail each task owner whose reminder time has come, once: each task is claimed with an
    ``UPDATE … WHERE reminded_at IS NULL`` before its e-mail goes; if sending fails the claim is
    released, so the next run tries again. Returns the number sent."""
    now = now or timezone.now()
    agency = require_agency()
    due = list(Task.objects.filter(done_at__isnull=True, reminded_at__isnull=True, remind_at__lte=now,
                                   owner__isnull=False, owner__is_active=True).values_list("pk", flat=True)[:500])
    sent = 0
    for pk in due:
        if not Task.objects.filter(pk=pk, reminded_at__isnull=True).update(reminded_at=now):
            continue  # another run took it
        task = Task.objects.select_related("owner", "customer").get(pk=pk)
        try:
            with translation.override(task.owner.language or agency.language):
                context = {"task": task, "agency": agency, "url": agency.url("/tasks/")}
                subject = render_to_string("pipeline/email/reminder_subject.txt", context).strip()
                body = render_to_string("pipeline/email/reminder.txt", context)
            send_mail(subject, body, None, [task.owner.email])
        except Exception:
            Task.objects.filter(pk=pk, reminded_at=now).update(reminded_at=None)
            raise
        sent += 1
    return sent


def task_reminders_next_due():
    """When ``task_reminders_send`` next has a reminder to send (None: no reminder waiting)."""
    return Task.objects.filter(done_at__isnull=True, reminded_at__isnull=True, remind_at__isnull=False,
                               owner__isnull=False, owner__is_active=True).aggregate(at=Min("remind_at"))["at"]


# --- teams and assignment rules ---------------------------------------------------------------------

def team_save(*, actor: User, team: Team | None = None, name: str, members) -> Team:
    """Create or change a team. Members must be active colleagues who work leads."""
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [_("Name the team.")]
    elif Team.objects.filter(name=name).exclude(pk=team.pk if team else None).exists():
        errors["name"] = [_("There is already a team of this name.")]
    members = list(members)
    if any(not (m.is_active and m.can(Cap.PIPELINE_WORK)) for m in members):
        errors["members"] = [_("Members must be active colleagues who work leads.")]
    if errors:
        raise ValidationError(errors)
    team = team or Team()
    team.name = name
    team.save()
    team.members.set(members)
    return team


def rule_save(*, actor: User, rule: AssignmentRule | None = None, kind: str, position: int, destination: str = "",
              team: Team | None = None, user: User | None = None, is_active: bool = True) -> AssignmentRule:
    """Create or change an assignment rule; each kind says what it needs."""
    errors = {}
    destination = (destination or "").strip()
    if kind not in AssignmentRule.Kind.values:
        errors["kind"] = [_("Choose a kind of rule.")]
    if kind == AssignmentRule.Kind.DESTINATION:
        if not destination:
            errors["destination"] = [_("Give the destination keyword.")]
        if not user and not team:
            errors["user"] = [_("Choose a salesperson or a team.")]
    if kind == AssignmentRule.Kind.ROUND_ROBIN and not team:
        errors["team"] = [_("Choose the team.")]
    if user is not None and not (user.is_active and user.can(Cap.PIPELINE_WORK)):
        errors["user"] = [_("Choose an active colleague who works leads.")]
    if errors:
        raise ValidationError(errors)
    rule = rule or AssignmentRule()
    rule.kind, rule.position, rule.destination, rule.team, rule.user, rule.is_active = \
        kind, position or 0, destination, team, user, is_active
    rule.save()
    return rule


def team_delete(*, actor: User, team: Team) -> None:
    """Remove a team; its round-robin and destination rules go with it (leads then fall through to
    the next rule, or wait to be taken)."""
    team.delete()


def rule_delete(*, actor: User, rule: AssignmentRule) -> None:
    rule.delete()
