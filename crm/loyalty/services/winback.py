"""Win-back (R-CARE-4): lapsed customers are identified, the reason they left is recorded, an offer
is made, and the case ends won back (their next confirmed trip closes it, by itself) or lost.

The daily job does both sweeps set-based: ``_WON_BACK_SQL`` closes open cases whose customer has
confirmed a trip since the case was opened; ``_IDENTIFY_SQL`` opens a case for every customer who
is lapsed (no trip for ``dormant_days`` after at least ``dormant_min_trips`` trips) or, if the
agency wants it, a valuable customer the value model now calls *declining*. One open case per
customer (a partial unique index), and one case per lapse: a customer is not identified again
until they have travelled again since their last case, nor within ``COOLDOWN`` of its closing.
"""
from datetime import datetime, time, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from caravan.texts import Text
from caravan.tenancy import require_agency
from crm.customers.models import Contact, Customer
from crm.pipeline.models import Task
from crm.pipeline.services import tasks_create_sql
from crm.customers.services import timeline_add
from crm.trips.models import Trip
from crm.value.models import CustomerValue

from ..models import LoyaltySettings, WinBack
from .common import TRIP_DONE, agency_today, can_work, local_moment, parse_money

TASK_HOUR = time(18, 0)
TASK_DAYS = 2
COOLDOWN = timedelta(days=180)  # after a case closes, the customer is left alone this long

_WON_BACK_SQL = """
WITH won AS (
    SELECT DISTINCT ON (w.id) w.id, t.id AS trip_id
    FROM {winback} w
    JOIN {trip} t ON t.customer_id = w.customer_id AND t.status = ANY(%(done)s)
                 AND coalesce(t.confirmed_at, t.created_at) > w.identified_at
    WHERE w.status IN ('open', 'offered')
    ORDER BY w.id, coalesce(t.confirmed_at, t.created_at), t.id
), closed AS (
    UPDATE {winback} w SET status = 'won_back', closed_at = %(now)s, closed_by_id = NULL, won_trip_id = won.trip_id
    FROM won WHERE w.id = won.id AND w.status IN ('open', 'offered')
    RETURNING w.id, w.customer_id, w.task_id, won.trip_id
), tasks_done AS (
    UPDATE {task} t SET done_at = %(now)s FROM closed WHERE t.id = closed.task_id AND t.done_at IS NULL
    RETURNING t.id
), notes AS (
    INSERT INTO {contact} (customer_id, staff_id, at, channel, direction, summary, text_kind, text_params, next_step,
                           next_step_due, resolved)
    SELECT closed.customer_id, NULL, %(now)s, 'note', 'none', replace(%(summary)s, '{{trip}}', tr.title),
           'won_back_note', jsonb_build_object('trip', tr.title), '', NULL, false
    FROM closed JOIN {trip} tr ON tr.id = closed.trip_id
    RETURNING id
)
SELECT (SELECT count(*) FROM closed), (SELECT count(*) FROM tasks_done), (SELECT count(*) FROM notes)
"""

_IDENTIFY_SQL = """
WITH travelled AS (
    SELECT t.customer_id, count(*) AS trips,
           max(coalesce(t.return_on, t.depart_on, (coalesce(t.confirmed_at, t.created_at) AT TIME ZONE %(tz)s)::date))
               AS last_on,
           max(coalesce(t.confirmed_at, t.created_at)) AS last_at
    FROM {trip} t WHERE t.status = ANY(%(done)s)
    GROUP BY t.customer_id
), found AS (
    SELECT c.id AS customer_id, tr.trips, tr.last_on,
           CASE WHEN tr.trips >= %(min_trips)s AND tr.last_on < %(dormant_before)s THEN 'dormant' ELSE 'declining' END AS why
    FROM travelled tr
    JOIN {customer} c ON c.id = tr.customer_id AND c.merged_into_id IS NULL
    LEFT JOIN {value} v ON v.customer_id = c.id
    WHERE ((tr.trips >= %(min_trips)s AND tr.last_on < %(dormant_before)s)
           OR (%(declining)s AND v.segment = 'declining'))
      AND NOT EXISTS (SELECT 1 FROM {winback} w WHERE w.customer_id = c.id
                      AND (w.status IN ('open', 'offered') OR w.identified_at >= tr.last_at
                           OR w.closed_at >= %(cooldown)s))
), inserted AS (
    INSERT INTO {winback} (customer_id, identified_at, why, trips_before, last_trip_on, reason, reason_note, offer,
                           status)
    SELECT customer_id, %(now)s, why, trips, last_on, '', '', '', 'open' FROM found
    ON CONFLICT DO NOTHING
    RETURNING id, customer_id, why, trips_before, last_trip_on
), tasks AS (
""" + tasks_create_sql("""
    SELECT %(title_prefix)s || c.name, 'win_back', jsonb_build_object('name', c.name),
           replace(replace(CASE WHEN i.why = 'dormant' THEN %(notes_dormant)s ELSE %(notes_declining)s END,
                           '{{trips}}', i.trips_before::text), '{{last}}', coalesce(i.last_trip_on::text, '—')),
           CASE WHEN i.why = 'dormant' THEN 'win_back_dormant_note' ELSE 'win_back_declining_note' END,
           jsonb_build_object('trips', i.trips_before, 'last', coalesce(i.last_trip_on::text, '')),
           c.owner_id, c.id, %(due)s, 'win-back:' || i.id, %(now)s
    FROM inserted i
    JOIN {customer} c ON c.id = i.customer_id
    JOIN {user} u ON u.id = c.owner_id AND u.is_active""", kind=Task.Kind.WIN_BACK, returning=True, texts=True, notes_text=True) + """
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM tasks)
"""

_LINK_TASKS_SQL = """
UPDATE {winback} w SET task_id = t.id FROM {task} t
WHERE w.task_id IS NULL AND w.identified_at = %(now)s AND t.key = 'win-back:' || w.id
"""


def _tables() -> dict:
    return {"winback": WinBack._meta.db_table, "trip": Trip._meta.db_table, "task": Task._meta.db_table,
            "contact": Contact._meta.db_table, "customer": Customer._meta.db_table, "user": User._meta.db_table,
            "value": CustomerValue._meta.db_table}


def won_back_sweep(*, now: datetime | None = None) -> int:
    """Close as won back every open case whose customer confirmed a trip after it was opened. Idempotent."""
    agency = require_agency()
    now = now or timezone.now()
    with translation.override(agency.language):
        summary = _("Won back: the customer booked “{trip}”.")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_WON_BACK_SQL.format(**_tables()), {"done": list(TRIP_DONE), "now": now, "summary": summary})
        return cursor.fetchone()[0]


def win_back_identify(*, today=None, now: datetime | None = None) -> dict:
    """Open a case (and the owner's task) for every newly lapsed or declining customer. Idempotent."""
    agency = require_agency()
    now = now or timezone.now()
    today = today or agency_today(now)
    rules = LoyaltySettings.load()
    with translation.override(agency.language):
        texts = {"title_prefix": _("Win back") + ": ",
                 "notes_dormant": _("No trip since {last} after {trips} trips. Find out why they left, record the "
                                    "reason, and make them an offer."),
                 "notes_declining": _("A valuable customer who is travelling less ({trips} trips, last {last}). Find "
                                      "out why, record the reason, and make them an offer.")}
    params = {**texts, "done": list(TRIP_DONE), "tz": agency.time_zone, "min_trips": rules.dormant_min_trips,
              "dormant_before": today - timedelta(days=rules.dormant_days), "declining": rules.win_back_declining,
              "now": now, "cooldown": now - COOLDOWN,
              "due": max(local_moment(today + timedelta(days=TASK_DAYS), TASK_HOUR), now)}
    tables = _tables()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_IDENTIFY_SQL.format(**tables), params)
        cases, tasks = cursor.fetchone()
        if cases:
            cursor.execute(_LINK_TASKS_SQL.format(**tables), {"now": now})
    return {"cases": cases, "tasks": tasks}


# --- staff work a case ----------------------------------------------------------------------------

def _lock_open(case: WinBack) -> WinBack:
    case = WinBack.objects.select_for_update().select_related("customer").get(pk=case.pk)
    if not case.is_open:
        raise ValidationError({"status": [_("This case is closed.")]})
    return case


def _note(actor: User, case: WinBack, text: Text) -> None:
    timeline_add(actor=actor, customer=case.customer, channel=Contact.Channel.NOTE,
                 direction=Contact.Direction.INTERNAL, summary=text)


@transaction.atomic
def win_back_record_reason(*, actor: User, case: WinBack, reason: str, note: str = "") -> WinBack:
    """Why the customer left, as they told us (or "unknown", with what we know)."""
    if not can_work(actor):
        raise PermissionDenied
    case = _lock_open(case)
    note = (note or "").strip()
    errors = {}
    if reason not in WinBack.Reason.values:
        errors["reason"] = [_("Choose the reason the customer gave.")]
    if len(note) > 2000:
        errors["note"] = [_("At most 2,000 characters.")]
    elif reason == WinBack.Reason.UNKNOWN and not note and not errors:
        errors["note"] = [_("Say what we tried or know, when the reason is unknown.")]
    if errors:
        raise ValidationError(errors)
    case.reason, case.reason_note = reason, note
    case.reason_recorded_at, case.reason_recorded_by = timezone.now(), actor
    case.save(update_fields=["reason", "reason_note", "reason_recorded_at", "reason_recorded_by"])
    _note(actor, case, Text("win_back_reason", reason=case.reason, note=note or ""))
    return case


@transaction.atomic
def win_back_offer(*, actor: User, case: WinBack, offer: str, value=None) -> WinBack:
    """Record the offer made to bring the customer back; the case is then *offered*."""
    if not can_work(actor):
        raise PermissionDenied
    case = _lock_open(case)
    offer = (offer or "").strip()
    errors: dict = {}
    if not offer:
        errors["offer"] = [_("Describe the offer.")]
    elif len(offer) > 2000:
        errors["offer"] = [_("At most 2,000 characters.")]
    amount = parse_money(value, "value", errors)
    if errors:
        raise ValidationError(errors)
    case.offer, case.offer_value = offer, amount
    case.offered_at, case.offered_by, case.status = timezone.now(), actor, WinBack.Status.OFFERED
    case.save(update_fields=["offer", "offer_value", "offered_at", "offered_by", "status"])
    _note(actor, case, Text("win_back_offer", offer=offer + (f" ({amount} {require_agency().currency})"
                                                             if amount is not None else "")))
    return case


@transaction.atomic
def win_back_lose(*, actor: User, case: WinBack, note: str = "") -> WinBack:
    """Close the case as lost. The reason for leaving must have been recorded first."""
    if not can_work(actor):
        raise PermissionDenied
    case = _lock_open(case)
    if not case.reason:
        raise ValidationError({"reason": [_("Record why the customer left before closing the case.")]})
    now = timezone.now()
    case.status, case.closed_at, case.closed_by = WinBack.Status.LOST, now, actor
    case.save(update_fields=["status", "closed_at", "closed_by"])
    if case.task_id:
        Task.objects.filter(pk=case.task_id, done_at__isnull=True).update(done_at=now, done_by=actor)
    _note(actor, case, Text("win_back_lost", note=(note or "").strip()))
    return case
