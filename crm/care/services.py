"""After-sales care writes (R-CARE-1, R-CARE-2): the after-trip job, satisfaction surveys, complaints.

- The hourly after-trip job is set-based (one INSERT … SELECT per table, one UPDATE) because it
  runs over tens of thousands of trips; ``Task.key`` and the one-survey-per-trip constraint make
  a second run create nothing.
- Every e-mail is sent after an atomic claim (``UPDATE … WHERE sent_at IS NULL``): a retried or
  duplicated task never sends twice; a failed send releases its claim so the retry can send.
- Survey links are signed with a salt naming the agency's schema, so one agency's link is
  worthless on another agency's host.
"""
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.mail import get_connection, send_mail
from django.db import connection, transaction
from django.db.models import Min, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap, Role, role_can
from caravan import texts
from caravan.texts import Text
from caravan import signing
from caravan.mail import mail_each
from caravan.money import parse_money
from caravan.tenancy import require_agency
from crm.customers.models import Contact, Customer, Email
from crm.pipeline.models import Task
from crm.pipeline.services import IllegalTransition, task_create, tasks_create_sql
from crm.customers.services import customer_live, timeline_add
from crm.trips.models import Traveler, Trip
from tenants.jobs import services as agency_jobs

from . import hooks
from .models import Complaint, Survey

SURVEY_MAX_AGE = timedelta(days=60)
# Unsent surveys younger than this are queued again by every run (a lost message is retried).
SURVEY_STUCK_AFTER = timedelta(hours=1)
SURVEY_RESEND_WINDOW = timedelta(days=7)
SEND_BATCH = 200
AFTER_TRIP_CALL_HOUR = time(18, 0)

Status = Complaint.Status
COMPLAINT_TRANSITIONS: dict[str, set[str]] = {
    Status.OPEN: {Status.IN_PROGRESS, Status.RESOLVED},
    Status.IN_PROGRESS: {Status.RESOLVED},
    Status.RESOLVED: {Status.CLOSED, Status.IN_PROGRESS},  # resolved → in progress reopens
    Status.CLOSED: set(),
}
OPEN_STATUSES = (Status.OPEN, Status.IN_PROGRESS)
NEEDS_AMOUNT = {Complaint.Compensation.REFUND, Complaint.Compensation.VOUCHER}


def managers():
    """Active staff who may manage the pipeline: the people complaints escalate to."""
    roles = [role for role in Role.values if role_can(role, Cap.PIPELINE_MANAGE)]
    return User.objects.filter(is_active=True, is_operator=False, role__in=roles).order_by("id")


# --- the after-trip job ---------------------------------------------------------------------------

def after_trip_run(*, today=None) -> dict:
    """Complete returned trips; for each trip that came back before ``today`` (the agency's local
    date) and was not followed up: the owner's after-trip call task, the survey, ``followed_up_at``.
    Then queue the e-mail of every survey not sent yet. Idempotent."""
    agency = require_agency()
    with timezone.override(agency.time_zone):
        today = today or timezone.localdate()
        due_at = timezone.make_aware(datetime.combine(today, AFTER_TRIP_CALL_HOUR))
    try:
        from crm.trips.services import trips_complete_returned
    except ImportError:  # not there yet: trips are completed elsewhere
        trips_complete_returned = None
    completed = trips_complete_returned(today=today) if trips_complete_returned else 0
    with translation.override(agency.language):
        title_prefix = _("After-trip call") + ": "
    now = timezone.now()
    trip_table, survey_table = Trip._meta.db_table, Survey._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        # Claim the trips first (skip those another run holds), then build on the claimed ids.
        cursor.execute(f"""
            WITH due AS (
                SELECT id FROM {trip_table}
                WHERE status IN (%s, %s) AND return_on <= %s AND followed_up_at IS NULL
                FOR UPDATE SKIP LOCKED)
            UPDATE {trip_table} t SET followed_up_at = %s FROM due WHERE t.id = due.id RETURNING t.id""",
                       [Trip.Status.CONFIRMED, Trip.Status.COMPLETED, today - timedelta(days=1), now])
        trip_ids = [row[0] for row in cursor.fetchall()]
        tasks = surveys = 0
        if trip_ids:
            cursor.execute(tasks_create_sql(f"""
                SELECT %s || t.title, 'after_trip_call', jsonb_build_object('trip', t.title), '', t.owner_id,
                       t.customer_id, t.id, %s, 'after-trip:' || t.id, %s
                FROM {trip_table} t WHERE t.id = ANY(%s)""", kind=Task.Kind.AFTER_TRIP_CALL, trip=True, texts=True),
                           [title_prefix, due_at, now, trip_ids])
            tasks = cursor.rowcount
            cursor.execute(_SURVEY_INSERT.format(survey=survey_table, trip=trip_table,
                                                 customer=Customer._meta.db_table, email=Email._meta.db_table,
                                                 traveler=Traveler._meta.db_table),
                           [now, Customer.Kind.PERSON, trip_ids])
            surveys = cursor.rowcount
    queued = surveys_queue_unsent(made_since=now)
    return {"completed": completed, "followed_up": len(trip_ids), "tasks": tasks, "surveys": surveys, "queued": queued}


# The survey goes to the trip's customer if a person with an e-mail, else to the lead traveler
# with an e-mail; a trip with nobody to e-mail gets no survey (but still gets its call task).
_SURVEY_INSERT = """
    INSERT INTO {survey} (trip_id, customer_id, email, created_at, comment)
    SELECT t.id, pick.customer_id, pick.address, %s, ''
    FROM {trip} t
    JOIN LATERAL (
        SELECT candidate.customer_id, address.address
        FROM (
            SELECT c.id AS customer_id, 0 AS rank FROM {customer} c WHERE c.id = t.customer_id AND c.kind = %s
            UNION ALL
            SELECT tr.customer_id, 1 FROM {traveler} tr WHERE tr.trip_id = t.id AND tr.is_lead
        ) candidate
        JOIN LATERAL (SELECT e.address FROM {email} e WHERE e.customer_id = candidate.customer_id
                      ORDER BY e.id LIMIT 1) address ON true
        ORDER BY candidate.rank LIMIT 1
    ) pick ON true
    WHERE t.id = ANY(%s)
    ON CONFLICT (trip_id) DO NOTHING"""


def surveys_queue_unsent(*, made_since=None) -> int:
    """Queue, in batches, the e-mail of the surveys made since ``made_since`` (this run's) and of
    those still unsent an hour after they were made (a send that failed for good, a lost message),
    within the resend window. So a second run right after the first queues nothing again; sending
    is idempotent anyway. Returns how many were queued."""
    from .tasks import send_surveys

    now = timezone.now()
    fresh = Q(created_at__gte=made_since) if made_since else Q(pk__in=[])
    ids = list(Survey.objects.filter(fresh | Q(created_at__lt=now - SURVEY_STUCK_AFTER),
                                     sent_at__isnull=True, answered_at__isnull=True,
                                     created_at__gte=now - SURVEY_RESEND_WINDOW)
               .exclude(email="").order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), SEND_BATCH):
        send_surveys.delay(ids[start:start + SEND_BATCH])
    return len(ids)


# --- survey e-mail and signed link ----------------------------------------------------------------

def survey_token(survey: Survey) -> str:
    return signing.dumps("care.survey", survey.pk)


def survey_url(survey: Survey) -> str:
    return require_agency().url(reverse("survey_answer", args=[survey_token(survey)]))


class InvalidSurveyLink(Exception):
    """The link was tampered with, has expired, belongs to another agency, or its survey is gone."""


def survey_from_token(token: str) -> Survey:
    try:
        survey_id = signing.loads("care.survey", token, max_age=SURVEY_MAX_AGE)
        return Survey.objects.select_related("trip", "customer").get(pk=int(survey_id))
    except (signing.BadSignature, ValueError, TypeError, Survey.DoesNotExist) as exc:
        raise InvalidSurveyLink(str(exc)) from exc


def survey_send(*, survey_id: int, mail_connection=None) -> bool:
    """Send one survey e-mail, once. False if it was already sent (or answered, or has no address).
    If sending fails the claim is released and the error raised, so a retry sends it."""
    claimed_at = timezone.now()
    claimed = (Survey.objects.filter(pk=survey_id, sent_at__isnull=True, answered_at__isnull=True).exclude(email="")
               .update(sent_at=claimed_at))
    if not claimed:
        return False
    survey = Survey.objects.select_related("trip", "customer").get(pk=survey_id)
    agency = require_agency()
    try:
        with translation.override(survey.customer.language or agency.language):
            context = {"survey": survey, "customer": survey.customer, "trip": survey.trip, "agency": agency,
                       "url": survey_url(survey), "days": SURVEY_MAX_AGE.days}
            subject = render_to_string("care/email/survey_subject.txt", context).strip()
            body = render_to_string("care/email/survey.txt", context)
        send_mail(subject, body, None, [survey.email], connection=mail_connection)
    except Exception:
        Survey.objects.filter(pk=survey_id, sent_at=claimed_at).update(sent_at=None)
        raise
    with translation.override(agency.language):
        timeline_add(actor=None, customer=survey.customer, channel=Contact.Channel.SURVEY,
                     direction=Contact.Direction.OUTBOUND,
                     summary=Text("survey_sent", trip=survey.trip.title, email=survey.email))
    return True


def surveys_send(*, survey_ids: list[int]) -> tuple[int, list[int]]:
    """Send a batch over one SMTP connection. Returns (sent, ids that failed and should be retried)."""
    sent, failed = 0, []
    mail_connection = get_connection()
    try:
        mail_connection.open()
    except OSError:  # the mail server is down: nothing was claimed, all of them later
        return 0, list(survey_ids)
    try:
        for survey_id in survey_ids:
            try:
                sent += survey_send(survey_id=survey_id, mail_connection=mail_connection)
            except OSError:  # smtplib errors are OSErrors; the claim was released
                failed.append(survey_id)
    finally:
        mail_connection.close()
    return sent, failed


# --- survey answers -------------------------------------------------------------------------------

class SurveyAlreadyAnswered(ValidationError):
    def __init__(self):
        super().__init__(_("This survey has already been answered. Thank you!"), code="already_answered")


def _score(value, low: int, high: int, field: str, errors: dict) -> int | None:
    """A whole number from ``low`` to ``high`` (from a form, JSON or Python), else a field error."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    errors[field] = [_("Choose a score from %(low)d to %(high)d.") % {"low": low, "high": high}]
    return None


@transaction.atomic
def survey_answer(*, survey: Survey, csat, nps, comment: str = "") -> Survey:
    """Record the customer's answer (once). A low score gives the trip's owner a task."""
    errors = {}
    csat = _score(csat, 1, 5, "csat", errors)
    nps = _score(nps, 0, 10, "nps", errors)
    comment = (comment or "").strip()
    if len(comment) > 4000:
        errors["comment"] = [_("Please keep the comments under 4,000 characters.")]
    if errors:
        raise ValidationError(errors)
    survey = Survey.objects.select_for_update().select_related("trip", "customer").get(pk=survey.pk)
    if survey.answered_at:
        raise SurveyAlreadyAnswered()
    survey.csat, survey.nps, survey.comment, survey.answered_at = csat, nps, comment, timezone.now()
    survey.save(update_fields=["csat", "nps", "comment", "answered_at"])
    agency = require_agency()
    with translation.override(agency.language):  # staff read the timeline and their tasks
        entry = Text("survey_answered", trip=survey.trip.title, csat=csat, nps=nps, comment=comment)
        summary = str(entry)
        timeline_add(actor=None, customer=survey.customer, channel=Contact.Channel.SURVEY,
                     direction=Contact.Direction.INBOUND, summary=entry)
        if survey.is_low:
            task_create(actor=None, title=_("Low survey score: call %(name)s") % {"name": survey.customer.name},
                        owner=survey.trip.owner or survey.customer.owner, due_at=timezone.now() + timedelta(hours=24),
                        kind=Task.Kind.CALL, customer=survey.customer, trip=survey.trip, notes=summary,
                        note=(entry.kind, entry.params), key=f"low-score:{survey.pk}", text=texts.store("low_survey_score", name=survey.customer.name))
    return survey


# --- complaints -----------------------------------------------------------------------------------

def _timeline(complaint: Complaint, actor: User | None, summary: "str | Text",
              direction=Contact.Direction.INTERNAL) -> None:
    timeline_add(actor=actor, customer=complaint.customer, channel=Contact.Channel.COMPLAINT, direction=direction,
                 summary=summary)


def _default_owner(trip: Trip | None, customer: Customer, actor: User | None) -> User | None:
    """The trip's owner, else the customer's account manager, else whoever logs it — the first of
    them who may handle complaints (a salesperson may not, and would get a task they cannot open)."""
    for candidate in (trip.owner if trip else None, customer.owner, actor):
        if candidate is not None and candidate.is_active and candidate.can(Cap.COMPLAINTS_HANDLE):
            return candidate
    return actor


@transaction.atomic
def complaint_log(*, actor: User | None, customer: Customer, category: str, severity: str, description: str,
                  trip: Trip | None = None, survey: Survey | None = None, owner: User | None = None) -> Complaint:
    """Log a complaint: its deadline follows from the severity; the owner gets a task due then."""
    errors = {}
    if category not in Complaint.Category.values:
        errors["category"] = [_("Choose a category.")]
    if severity not in Complaint.Severity.values:
        errors["severity"] = [_("Choose a severity.")]
    if not (description or "").strip():
        errors["description"] = [_("Describe what happened.")]
    if customer is None:
        errors["customer"] = [_("Choose the customer.")]
    if survey is not None and customer is not None and survey.customer_id != customer.pk:
        errors["survey"] = [_("This survey was answered by another customer.")]
    if owner is not None and not owner.is_active:
        errors["owner"] = [_("Choose an active colleague.")]
    if errors:
        raise ValidationError(errors)
    customer_live(customer)  # a merged-away record is refused, naming the survivor
    if trip is None and survey is not None:
        trip = survey.trip
    owner = owner or _default_owner(trip, customer, actor)
    now = timezone.now()
    complaint = Complaint.objects.create(
        customer=customer, trip=trip, survey=survey, category=category, severity=severity,
        description=description.strip(), owner=owner, deadline_at=Complaint.deadline_for(severity, now),
        currency=require_agency().currency, created_by=actor, created_at=now)
    _timeline(complaint, actor, Text("complaint_logged", severity=complaint.severity, category=complaint.category,
                                     description=complaint.description), direction=Contact.Direction.INBOUND)
    task_create(actor=actor, title=_("Complaint from %(name)s: %(category)s") % {
        "name": customer.name, "category": complaint.get_category_display()},
        owner=owner, due_at=complaint.deadline_at, kind=Task.Kind.COMPLAINT, customer=customer, trip=trip,
        notes=complaint.description, key=f"complaint:{complaint.pk}",
        text=texts.store("complaint", name=customer.name, category=complaint.category))
    hooks.complaint_logged(complaint=complaint)  # tiers: the complaint's service-level clock
    agency_jobs.due("care.escalate_complaints", complaint.deadline_at)
    return complaint


def _clean_compensation(compensation: str, amount) -> tuple[str, Decimal | None]:
    compensation = compensation or ""
    if compensation not in Complaint.Compensation.values:
        raise ValidationError({"compensation": [_("Choose a kind of compensation.")]})
    if amount is None or (isinstance(amount, str) and not amount.strip()):
        if compensation in NEEDS_AMOUNT:
            raise ValidationError({"compensation_amount": [_("Give the amount of the refund or voucher.")]})
        return compensation, None
    amount = parse_money(amount, field="compensation_amount", allow_zero=True)
    if not compensation:
        raise ValidationError({"compensation": [_("Choose the kind of compensation for this amount.")]})
    return compensation, amount


@transaction.atomic
def complaint_set_status(*, actor: User | None, complaint: Complaint, status: str, resolution: str = "",
                         compensation: str = "", compensation_amount=None) -> Complaint:
    """Move a complaint along: open → in progress → resolved → closed; resolved may be reopened.
    Resolving needs the resolution; compensation is optional, with an amount for refunds and vouchers."""
    complaint = Complaint.objects.select_for_update().select_related("customer").get(pk=complaint.pk)
    if status not in Status.values:
        raise IllegalTransition(_("Choose a status."), field="status")
    if status not in COMPLAINT_TRANSITIONS[complaint.status]:
        raise IllegalTransition(_("A complaint cannot move from “%(from)s” to “%(to)s”.") % {
            "from": complaint.get_status_display(), "to": Status(status).label}, field="status")
    fields = ["status"]
    if status == Status.RESOLVED:
        resolution = (resolution or "").strip()
        errors = {} if resolution else {"resolution": [_("Say how the complaint was resolved.")]}
        try:
            compensation, amount = _clean_compensation(compensation, compensation_amount)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        if errors:
            raise ValidationError(errors)
        complaint.resolution, complaint.compensation, complaint.compensation_amount = resolution, compensation, amount
        complaint.resolved_at = timezone.now()
        fields += ["resolution", "compensation", "compensation_amount", "resolved_at"]
    elif status == Status.IN_PROGRESS and complaint.status == Status.RESOLVED:
        complaint.resolved_at = None
        fields.append("resolved_at")
    previous = complaint.status
    complaint.status = status
    complaint.save(update_fields=fields)
    summary = Text("complaint_moved", category=complaint.category, to=complaint.status, **{"from": previous})
    if status == Status.RESOLVED:  # with the resolution and compensation lines
        summary = Text("complaint_resolved", category=complaint.category, to=complaint.status,
                       text=complaint.resolution, kind=complaint.compensation,
                       amount="" if complaint.compensation_amount is None else str(complaint.compensation_amount),
                       currency=complaint.currency, **{"from": previous})
    _timeline(complaint, actor, summary)
    hooks.complaint_status_set(complaint=complaint, actor=actor)  # tiers: in progress / resolved answers the clock
    if status in OPEN_STATUSES:  # reopened: escalated if it is (or becomes) overdue
        agency_jobs.due("care.escalate_complaints", complaint.deadline_at)
    return complaint


@transaction.atomic
def complaint_assign(*, actor: User | None, complaint: Complaint, owner: User) -> Complaint:
    """Hand the complaint to a colleague, who gets a task due at the same deadline."""
    complaint = Complaint.objects.select_for_update().select_related("customer").get(pk=complaint.pk)
    if owner is None or not owner.is_active or owner.is_operator:
        raise ValidationError({"owner": [_("Choose an active colleague.")]})
    if not complaint.is_open:
        raise ValidationError({"owner": [_("Only an open complaint can be reassigned.")]})
    if complaint.owner_id == owner.pk:
        return complaint
    complaint.owner = owner
    complaint.save(update_fields=["owner"])
    _timeline(complaint, actor, Text("complaint_reassigned", category=complaint.category, name=str(owner)))
    task_create(actor=actor, title=_("Complaint from %(name)s: %(category)s") % {
        "name": complaint.customer.name, "category": complaint.get_category_display()},
        owner=owner, due_at=complaint.deadline_at, kind=Task.Kind.COMPLAINT, customer=complaint.customer,
        trip=complaint.trip, notes=complaint.description, key=f"complaint:{complaint.pk}:to:{owner.pk}",
        text=texts.store("complaint", name=complaint.customer.name, category=complaint.category))
    return complaint


def complaints_escalate(*, now=None) -> int:
    """Escalate open complaints past their deadline, once each: claim, e-mail every manager in
    their language, give one manager a task. Returns how many were escalated."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = list(Complaint.objects.select_for_update(skip_locked=True)
                       .filter(status__in=OPEN_STATUSES, deadline_at__lt=now, escalated_at__isnull=True)
                       .values_list("pk", flat=True))
        Complaint.objects.filter(pk__in=claimed).update(escalated_at=now)
    if not claimed:
        return 0
    recipients = list(managers())
    agency = require_agency()
    pending = set(claimed)
    for complaint in Complaint.objects.filter(pk__in=claimed).select_related("customer", "owner", "trip"):
        try:
            _escalation_send(complaint, recipients, agency)
        except Exception:
            # Release this claim and the ones not reached, so the next run (or the retry) sends them.
            Complaint.objects.filter(pk__in=pending, escalated_at=now).update(escalated_at=None)
            raise
        pending.discard(complaint.pk)
        with translation.override(agency.language):
            _timeline(complaint, None, Text("complaint_passed_deadline", category=complaint.category))
            manager = next((m for m in recipients if m.pk != complaint.owner_id), recipients[0] if recipients else None)
            task_create(actor=None, title=_("Escalated complaint from %(name)s: %(category)s") % {
                "name": complaint.customer.name, "category": complaint.get_category_display()},
                owner=manager, due_at=now, kind=Task.Kind.COMPLAINT, customer=complaint.customer, trip=complaint.trip,
                notes=complaint.description, key=f"escalated:{complaint.pk}",
                text=texts.store("complaint_escalated", name=complaint.customer.name, category=complaint.category))
    return len(claimed)


def complaints_next_due():
    """When ``complaints_escalate`` next has a complaint to escalate (None: no open complaint waiting)."""
    return Complaint.objects.filter(status__in=OPEN_STATUSES, escalated_at__isnull=True).aggregate(
        at=Min("deadline_at"))["at"]


def after_trip_next_due():
    """The after-trip run works on trips back before the agency's today: next due at its midnight."""
    return agency_jobs.next_local(require_agency(), time(0, 0))


def _escalation_send(complaint: Complaint, recipients: list[User], agency) -> None:
    mail_each(recipients, template="care/email/escalation", agency=agency,
              context={"complaint": complaint, "url": agency.url(reverse("complaint_detail", args=[complaint.pk]))})
