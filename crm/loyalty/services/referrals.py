"""Referrals (R-CARE-5): who referred whom, and the referrer's reward.

A referral is *pending* until the referred customer's first confirmed (or completed) trip, then
*qualified* — the referrer's account manager gets a task to reward them — and *rewarded* once
staff record the reward. Qualification is one set-based statement (``_QUALIFY_SQL``), run by the
daily job and right after a referral is recorded (a referred customer may have travelled already).
"""
from datetime import datetime, time, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from caravan.texts import Text
from caravan.tenancy import require_agency
from crm.customers.models import Contact, Customer
from crm.pipeline.models import Task
from crm.pipeline.services import tasks_create_sql
from crm.customers.services import contact_add, timeline_add
from crm.trips.models import Trip

from ..models import Referral
from .common import TRIP_DONE, agency_today, can_work, local_moment, parse_money

TASK_HOUR = time(18, 0)
TASK_DAYS = 3

_QUALIFY_SQL = """
WITH first_trip AS (
    SELECT DISTINCT ON (r.id) r.id, t.id AS trip_id
    FROM {referral} r
    JOIN {customer} referrer ON referrer.id = r.referrer_id AND referrer.merged_into_id IS NULL
    JOIN {customer} referred ON referred.id = r.referred_id AND referred.merged_into_id IS NULL
    JOIN {trip} t ON t.customer_id = r.referred_id AND t.status = ANY(%(done)s)
    WHERE r.status = 'pending' AND (%(ids)s::bigint[] IS NULL OR r.id = ANY(%(ids)s::bigint[]))
    ORDER BY r.id, coalesce(t.confirmed_at, t.created_at), t.id
), qualified AS (
    UPDATE {referral} r SET status = 'qualified', qualified_at = %(now)s, qualifying_trip_id = f.trip_id
    FROM first_trip f WHERE r.id = f.id AND r.status = 'pending'
    RETURNING r.id, r.referrer_id, r.referred_id
), tasks AS (
""" + tasks_create_sql("""
    SELECT %(title_prefix)s || referrer.name, 'referral_reward', jsonb_build_object('name', referrer.name),
           replace(%(notes)s, '{{referred}}', referred.name),
           'referral_note', jsonb_build_object('referred', referred.name),
           referrer.owner_id, referrer.id, %(due)s, 'referral:' || q.id, %(now)s
    FROM qualified q
    JOIN {customer} referrer ON referrer.id = q.referrer_id
    JOIN {customer} referred ON referred.id = q.referred_id
    JOIN {user} u ON u.id = referrer.owner_id AND u.is_active""", kind=Task.Kind.REFERRAL, returning=True, texts=True, notes_text=True) + """
)
SELECT (SELECT count(*) FROM qualified), (SELECT count(*) FROM tasks)
"""

_LINK_TASKS_SQL = """
UPDATE {referral} r SET task_id = t.id FROM {task} t
WHERE r.task_id IS NULL AND r.qualified_at = %(now)s AND t.key = 'referral:' || r.id
"""


def referrals_qualify(*, now: datetime | None = None, ids: list[int] | None = None) -> dict:
    """Qualify the pending referrals (all, or ``ids``) whose referred customer has a confirmed trip,
    and give the referrers' account managers a task to reward them. Idempotent."""
    agency = require_agency()
    now = now or timezone.now()
    with translation.override(agency.language):
        texts = {"title_prefix": _("Reward the referral") + ": ",
                 "notes": _("{referred}, whom this customer referred, has booked a first trip. Thank the referrer and "
                            "record the reward on the referrals page.")}
    tables = {"referral": Referral._meta.db_table, "customer": Customer._meta.db_table, "trip": Trip._meta.db_table,
              "task": Task._meta.db_table, "user": User._meta.db_table}
    due = max(local_moment(agency_today(now) + timedelta(days=TASK_DAYS), TASK_HOUR), now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_QUALIFY_SQL.format(**tables), {**texts, "done": list(TRIP_DONE), "ids": ids, "now": now, "due": due})
        qualified, tasks = cursor.fetchone()
        if qualified:
            cursor.execute(_LINK_TASKS_SQL.format(**tables), {"now": now})
    return {"qualified": qualified, "tasks": tasks}


def referral_record(*, actor: User, referrer: Customer | None, referred: Customer | None, note: str = "") -> Referral:
    """``referrer`` brought ``referred`` to us. A customer is referred once, by someone else."""
    if not can_work(actor):
        raise PermissionDenied
    errors: dict = {}
    note = (note or "").strip()
    if referrer is None:
        errors["referrer"] = [_("Choose the customer who made the referral.")]
    elif referrer.merged_into_id:
        errors["referrer"] = [_("This customer was merged into another record.")]
    if referred is None:
        errors["referred"] = [_("Choose the customer who was referred.")]
    elif referred.merged_into_id:
        errors["referred"] = [_("This customer was merged into another record.")]
    elif referrer is not None and referred.pk == referrer.pk:
        errors["referred"] = [_("A customer cannot refer themselves.")]
    else:
        existing = Referral.objects.filter(referred=referred).select_related("referrer").first()
        if existing is not None:
            errors["referred"] = [_("%(name)s is already recorded as referred by %(referrer)s.")
                                  % {"name": referred.name, "referrer": existing.referrer.name}]
    if len(note) > 300:
        errors["note"] = [_("At most 300 characters.")]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            referral = Referral.objects.create(referrer=referrer, referred=referred, note=note, recorded_by=actor)
            contact_add(actor=actor, customer=referrer, channel=Contact.Channel.NOTE,
                        direction=Contact.Direction.INTERNAL,
                        summary=_("Referred %(name)s to us.") % {"name": referred.name} + (f" {note}" if note else ""))
            contact_add(actor=actor, customer=referred, channel=Contact.Channel.NOTE,
                        direction=Contact.Direction.INTERNAL,
                        summary=_("Referred to us by %(name)s.") % {"name": referrer.name})
            referrals_qualify(ids=[referral.pk])
    except IntegrityError as exc:  # recorded by a colleague this very moment
        raise ValidationError({"referred": [_("This customer is already recorded as referred.")]}) from exc
    referral.refresh_from_db()
    return referral


@transaction.atomic
def referral_reward(*, actor: User, referral: Referral, description: str, value=None) -> Referral:
    """Record the reward given to the referrer (a voucher, a gift, a discount…)."""
    if not can_work(actor):
        raise PermissionDenied
    referral = Referral.objects.select_for_update().select_related("referrer", "referred").get(pk=referral.pk)
    errors: dict = {}
    description = (description or "").strip()
    if referral.status == Referral.Status.PENDING:
        errors["status"] = [_("The referred customer has not booked a trip yet: no reward is due.")]
    elif referral.status == Referral.Status.REWARDED:
        errors["status"] = [_("The reward was already recorded.")]
    if not description:
        errors["description"] = [_("Describe the reward.")]
    elif len(description) > 300:
        errors["description"] = [_("At most 300 characters.")]
    amount = parse_money(value, "value", errors)
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    referral.status, referral.reward_description, referral.reward_value = Referral.Status.REWARDED, description, amount
    referral.rewarded_at, referral.rewarded_by = now, actor
    referral.save(update_fields=["status", "reward_description", "reward_value", "rewarded_at", "rewarded_by"])
    if referral.task_id:
        Task.objects.filter(pk=referral.task_id, done_at__isnull=True).update(done_at=now, done_by=actor)
    timeline_add(actor=actor, customer=referral.referrer, channel=Contact.Channel.NOTE,
                 direction=Contact.Direction.INTERNAL,
                 summary=Text("referral_rewarded", name=referral.referred.name,
                              reward=description + (f" ({amount} {require_agency().currency})"
                                                    if amount is not None else "")))
    return referral
