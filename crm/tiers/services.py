"""Service-tier writes (R-TIER-1 … R-TIER-3): tier definitions, the nightly assignment, manual
overrides, and the service-level clocks.

- The assignment is one set-based statement (``_ASSIGN_SQL``): it measures every customer
  (spend and trips from confirmed/completed trips), picks the tier with hysteresis, applies or
  ends overrides, upserts ``CustomerTier``, writes ``TierChange`` history and the owners' tasks.
  The ``CustomerTier`` table is locked for the statement, so a run never races an override or a
  second run.
- Clocks are started and stopped by the receivers below, connected in ``TiersConfig.ready`` to the
  hooks of customers (a contact added), pipeline (lead intake, stage moves) and care (complaints).
  The five-minute job claims near-breaches and breaches with ``UPDATE … WHERE … IS NULL`` before
  it notifies, so each clock is notified once; a failed e-mail releases its claims.
"""
import functools
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import (BigIntegerField, Case, DateTimeField, DurationField, Exists, ExpressionWrapper, F, Max, Min, Q,
                              Subquery, Value, When)
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from accounts.models import User
from accounts.roles import Cap, Role, role_can
from caravan import texts
from caravan import leases, money
from caravan import formatting
from caravan.mail import mail_each
from caravan.db.prepared import execute_prepared
from caravan.tenancy import require_agency
from crm.customers.models import Contact, Customer
from crm.pipeline.models import Task
from crm.pipeline.services import tasks_create_sql
from crm.trips.models import ItineraryItem, Trip
from crm.value.models import CustomerValue
from tenants.jobs import services as agency_jobs

from .models import CustomerTier, ServiceClock, ServiceTier, TierChange, TierRecompute, TierSettings

NEAR_SHARE = 0.75  # a running clock is "near" its target from 75% of it
TIER_CHANGE_DUE = timedelta(days=1)
QUIET_HOUR = 2  # the nightly assignment runs from 02:00 in the agency's time zone
RESPONSE_CHANNELS = (Contact.Channel.CALL, Contact.Channel.EMAIL, Contact.Channel.MESSAGE, Contact.Channel.VISIT)
REQUEST_CHANNELS = (Contact.Channel.CALL, Contact.Channel.EMAIL, Contact.Channel.MESSAGE)
COLOR_DIGITS = set("0123456789abcdef")


def can_manage_tiers(user: User) -> bool:
    return user.can(Cap.POLICIES_MANAGE)


def can_override(user: User) -> bool:
    return user.can(Cap.POLICIES_MANAGE) or user.can(Cap.PIPELINE_MANAGE)


def managers():
    """Active staff who see everyone's pipeline: the people service-level breaches go to."""
    roles = [role for role in Role.values if role_can(role, Cap.PIPELINE_MANAGE)]
    return User.objects.filter(is_active=True, is_operator=False, role__in=roles).order_by("id")


# --- settings and tier definitions ----------------------------------------------------------------

def tier_settings() -> TierSettings:
    return TierSettings.load()


def tier_settings_update(*, actor: User | None, hysteresis_percent, min_days_in_tier, notify_owner: bool) -> TierSettings:
    errors = {}
    if not isinstance(hysteresis_percent, int) or not 0 <= hysteresis_percent <= 90:
        errors["hysteresis_percent"] = [_("Between 0 and 90 percent.")]
    if not isinstance(min_days_in_tier, int) or not 0 <= min_days_in_tier <= 3650:
        errors["min_days_in_tier"] = [_("Between 0 and 3,650 days.")]
    if errors:
        raise ValidationError(errors)
    TierSettings.objects.update_or_create(pk=1, defaults={
        "hysteresis_percent": hysteresis_percent, "min_days_in_tier": min_days_in_tier,
        "notify_owner": bool(notify_owner)})
    return tier_settings()


TIER_FIELDS = ("name", "color", "applies_to", "min_spend_12m", "min_spend_month", "min_trips_12m", "value_segments",
               "dedicated_manager",
               "lead_response_hours", "request_response_hours", "complaint_response_hours", "visit_cadence",
               "outreach_days", "perks")
HOURS_FIELDS = ("lead_response_hours", "request_response_hours", "complaint_response_hours")


def _money(value, field: str, errors: dict) -> Decimal | None:
    """An optional amount: empty → None; else zero or more (``caravan.money``), or an error for ``field``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return money.parse_money(value, field=field, allow_zero=True)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        return None


def _whole(value, field: str, errors: dict, *, low: int, high: int, message: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    errors[field] = [message]
    return None


def _clean_tier(tier: ServiceTier, fields: dict) -> dict:
    """Check and normalise the editable fields of a tier; raises ``ValidationError`` per field."""
    unknown = set(fields) - set(TIER_FIELDS)
    if unknown:
        raise ValidationError({name: [_("This field cannot be changed here.")] for name in unknown})
    errors: dict = {}
    data = {name: getattr(tier, name) for name in TIER_FIELDS}
    data.update(fields)
    data["name"] = (data["name"] or "").strip()
    if not data["name"]:
        errors["name"] = [_("Name the tier.")]
    elif len(data["name"]) > 60:
        errors["name"] = [_("At most 60 characters.")]
    elif ServiceTier.objects.filter(name__iexact=data["name"]).exclude(pk=tier.pk).exists():
        errors["name"] = [_("There is already a tier of this name.")]
    color = (data["color"] or "").strip().lower()
    if len(color) != 7 or color[0] != "#" or not set(color[1:]) <= COLOR_DIGITS:
        errors["color"] = [_("Use a colour such as #c9a227.")]
    data["color"] = color
    if data["applies_to"] not in ServiceTier.AppliesTo.values:
        errors["applies_to"] = [_("Choose who the tier is for.")]
    data["min_spend_12m"] = _money(data["min_spend_12m"], "min_spend_12m", errors)
    data["min_spend_month"] = _money(data["min_spend_month"], "min_spend_month", errors)
    data["min_trips_12m"] = _whole(data["min_trips_12m"], "min_trips_12m", errors, low=0, high=100000,
                                   message=_("A whole number of trips, 0 or more."))
    segments = list(data["value_segments"] or [])
    if not set(segments) <= set(CustomerValue.Segment.values):
        errors["value_segments"] = [_("Choose value segments from the list.")]
    data["value_segments"] = [s for s in CustomerValue.Segment.values if s in segments]  # stable order
    for name in HOURS_FIELDS:
        data[name] = _whole(data[name], name, errors, low=1, high=8760,
                            message=_("A whole number of hours from 1 to 8,760, or empty for no target."))
    data["outreach_days"] = _whole(data["outreach_days"], "outreach_days", errors, low=1, high=3650,
                                   message=_("A whole number of days from 1 to 3,650, or empty."))
    if (data["visit_cadence"] or "") not in ServiceTier.Cadence.values:
        errors["visit_cadence"] = [_("Choose a visit cadence.")]
    data["visit_cadence"] = data["visit_cadence"] or ""
    data["dedicated_manager"] = bool(data["dedicated_manager"])
    data["perks"] = (data["perks"] or "").strip()
    if len(data["perks"]) > 2000:
        errors["perks"] = [_("Please keep the perks under 2,000 characters.")]
    if errors:
        raise ValidationError(errors)
    return data


@transaction.atomic
def tier_save(*, actor: User | None, tier: ServiceTier | None = None, **fields) -> ServiceTier:
    """Create a tier (ranked below the others) or change one. Tiers are reordered with ``tier_move``.
    Changed criteria take effect at the next assignment (nightly, or "recompute now")."""
    if tier is None:
        tier = ServiceTier(color="#64748b", applies_to=ServiceTier.AppliesTo.BOTH)
        for name in TIER_FIELDS:
            fields.setdefault(name, getattr(tier, name))
    data = _clean_tier(tier, fields)
    for name, value in data.items():
        setattr(tier, name, value)
    if tier.pk is None:
        tier.rank = (ServiceTier.objects.select_for_update().aggregate(top=Max("rank"))["top"] or 0) + 1
    tier.save()
    return tier


@transaction.atomic
def tier_move(*, actor: User | None, tier: ServiceTier, up: bool) -> ServiceTier:
    """Swap the tier with the one above (``up``) or below it. The rank constraint is deferred."""
    tiers = list(ServiceTier.objects.select_for_update().order_by("rank"))
    index = next(i for i, t in enumerate(tiers) if t.pk == tier.pk)
    other = index - 1 if up else index + 1
    if not 0 <= other < len(tiers):
        return tiers[index]
    tiers[index], tiers[other] = tiers[other], tiers[index]
    for rank, row in enumerate(tiers, start=1):
        if row.rank != rank:
            ServiceTier.objects.filter(pk=row.pk).update(rank=rank)
    return ServiceTier.objects.get(pk=tier.pk)


@transaction.atomic
def tier_delete(*, actor: User | None, tier: ServiceTier) -> None:
    """Remove a tier. Its customers have no tier until the next assignment places them (their
    overrides to it end); the history keeps its name. Ranks close up."""
    ServiceTier.objects.select_for_update().order_by("rank").exists()
    CustomerTier.objects.filter(override_tier=tier).update(override_tier=None, override_reason="", override_until=None,
                                                           override_by=None, override_at=None)
    tier.delete()
    for rank, pk in enumerate(ServiceTier.objects.order_by("rank").values_list("pk", flat=True), start=1):
        ServiceTier.objects.filter(pk=pk).exclude(rank=rank).update(rank=rank)


# --- the nightly assignment -----------------------------------------------------------------------

def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def measure_windows(*, now: datetime) -> dict:
    """The measuring windows, as aware datetimes, in the agency's (active) time zone:
    the trailing 12 months (today included) and the last full calendar month."""
    today = timezone.localdate(now)
    try:
        year_ago = today.replace(year=today.year - 1)
    except ValueError:  # 29 February
        year_ago = today.replace(year=today.year - 1, day=28)
    month_end = today.replace(day=1)
    month_start = (month_end - timedelta(days=1)).replace(day=1)
    return {"today": today, "start_12m": _local_midnight(year_ago + timedelta(days=1)), "end": now,
            "month_start": _local_midnight(month_start), "month_end": _local_midnight(month_end)}


# Every customer's measures, the tier they qualify for, the decision with hysteresis and
# overrides, then three writes: the CustomerTier upsert, the TierChange rows, the owners' tasks.
# A customer qualifies for a tier when its kind fits and every criterion set is met; to *stay*
# in its tier the thresholds are scaled by (1 − margin). Only rows whose values change are written.
_ASSIGN_SQL = """
WITH trip_totals AS (
    SELECT t.id, t.customer_id, coalesce(t.confirmed_at, t.created_at) AS at, coalesce(sum(i.sell), 0) AS total
    FROM {trip} t LEFT JOIN {item} i ON i.trip_id = t.id
    WHERE t.status IN ('confirmed', 'completed')
      AND coalesce(t.confirmed_at, t.created_at) >= %(start_12m)s AND coalesce(t.confirmed_at, t.created_at) < %(end)s
    GROUP BY t.id
), per_customer AS (
    SELECT customer_id, sum(total) AS spend_12m,
           coalesce(sum(total) FILTER (WHERE at >= %(month_start)s AND at < %(month_end)s), 0) AS spend_month,
           count(*) AS trips_12m
    FROM trip_totals GROUP BY customer_id
), measures AS (
    SELECT c.id AS customer_id, c.kind, c.owner_id,
           coalesce(p.spend_12m, 0)::numeric(14, 2) AS spend_12m,
           coalesce(p.spend_month, 0)::numeric(14, 2) AS spend_month,
           coalesce(p.trips_12m, 0)::integer AS trips_12m, cv.segment,
           ct.customer_id IS NOT NULL AS existed, ct.tier_id AS old_tier, ct.since,
           ct.computed_tier_id AS old_computed, ct.computed_since,
           ct.spend_12m AS old_spend_12m, ct.spend_month AS old_spend_month, ct.trips_12m AS old_trips_12m,
           ct.override_tier_id, ct.override_until, ct.override_reason,
           ct.override_tier_id IS NOT NULL AND coalesce(ct.override_until < %(today)s, false) AS override_expired
    FROM {customer} c
    LEFT JOIN per_customer p ON p.customer_id = c.id
    LEFT JOIN {customer_tier} ct ON ct.customer_id = c.id
    LEFT JOIN {value} cv ON cv.customer_id = c.id
    WHERE c.merged_into_id IS NULL
), decided AS (
    SELECT m.*, CASE
        WHEN best.id IS NOT NULL AND (current.id IS NULL OR best.rank < current.rank) THEN best.id
        WHEN current.id IS NOT NULL AND (
            (current.applies_to = 'both' OR current.applies_to = m.kind)
            AND (current.min_spend_12m IS NULL OR m.spend_12m >= current.min_spend_12m * %(keep)s)
            AND (current.min_spend_month IS NULL OR m.spend_month >= current.min_spend_month * %(keep)s)
            AND (current.min_trips_12m IS NULL OR m.trips_12m >= current.min_trips_12m * %(keep)s)
            AND (cardinality(current.value_segments) = 0 OR m.segment = ANY(current.value_segments))
            OR m.computed_since > %(min_since)s) THEN current.id
        ELSE best.id END AS new_computed
    FROM measures m
    LEFT JOIN {tier} current ON current.id = m.old_computed
    LEFT JOIN LATERAL (
        SELECT t.id, t.rank FROM {tier} t
        WHERE (t.applies_to = 'both' OR t.applies_to = m.kind)
          AND (t.min_spend_12m IS NULL OR m.spend_12m >= t.min_spend_12m)
          AND (t.min_spend_month IS NULL OR m.spend_month >= t.min_spend_month)
          AND (t.min_trips_12m IS NULL OR m.trips_12m >= t.min_trips_12m)
          AND (cardinality(t.value_segments) = 0 OR m.segment = ANY(t.value_segments))
        ORDER BY t.rank LIMIT 1) best ON true
), final AS (
    SELECT d.*, CASE WHEN d.override_tier_id IS NOT NULL AND NOT d.override_expired THEN d.override_tier_id
                     ELSE d.new_computed END AS new_tier
    FROM decided d
), upserted AS (
    INSERT INTO {customer_tier} AS ct (customer_id, tier_id, since, computed_tier_id, computed_since, spend_12m,
                                       spend_month, trips_12m, override_tier_id, override_reason, override_until,
                                       override_by_id, override_at)
    SELECT f.customer_id, f.new_tier, %(now)s, f.new_computed, %(now)s, f.spend_12m, f.spend_month, f.trips_12m,
           NULL, '', NULL, NULL, NULL
    FROM final f
    WHERE NOT f.existed OR f.override_expired
       OR f.new_tier IS DISTINCT FROM f.old_tier OR f.new_computed IS DISTINCT FROM f.old_computed
       OR f.spend_12m <> f.old_spend_12m OR f.spend_month <> f.old_spend_month OR f.trips_12m <> f.old_trips_12m
    ON CONFLICT (customer_id) DO UPDATE SET
        since = CASE WHEN ct.tier_id IS DISTINCT FROM EXCLUDED.tier_id THEN EXCLUDED.since ELSE ct.since END,
        computed_since = CASE WHEN ct.computed_tier_id IS DISTINCT FROM EXCLUDED.computed_tier_id
                              THEN EXCLUDED.computed_since ELSE ct.computed_since END,
        tier_id = EXCLUDED.tier_id, computed_tier_id = EXCLUDED.computed_tier_id,
        spend_12m = EXCLUDED.spend_12m, spend_month = EXCLUDED.spend_month, trips_12m = EXCLUDED.trips_12m,
        override_tier_id = CASE WHEN ct.override_until < %(today)s THEN NULL ELSE ct.override_tier_id END,
        override_reason = CASE WHEN ct.override_until < %(today)s THEN '' ELSE ct.override_reason END,
        override_by_id = CASE WHEN ct.override_until < %(today)s THEN NULL ELSE ct.override_by_id END,
        override_at = CASE WHEN ct.override_until < %(today)s THEN NULL ELSE ct.override_at END,
        override_until = CASE WHEN ct.override_until < %(today)s THEN NULL ELSE ct.override_until END
    RETURNING ct.customer_id
), history AS (
    INSERT INTO {change} (customer_id, from_tier_id, to_tier_id, from_name, to_name, why, note, spend_12m, spend_month,
                          trips_12m, by_id, at)
    SELECT f.customer_id, f.old_tier, f.new_tier, coalesce(old_t.name, ''), coalesce(new_t.name, ''),
           CASE WHEN f.override_expired THEN 'override_ended' ELSE 'automatic' END,
           CASE WHEN f.override_expired THEN left(f.override_reason, 300) ELSE '' END,
           f.spend_12m, f.spend_month, f.trips_12m, NULL, %(now)s
    FROM final f
    LEFT JOIN {tier} old_t ON old_t.id = f.old_tier
    LEFT JOIN {tier} new_t ON new_t.id = f.new_tier
    WHERE f.new_tier IS DISTINCT FROM f.old_tier OR f.override_expired
    RETURNING id, customer_id, from_tier_id, to_tier_id, from_name, to_name, spend_12m, spend_month, trips_12m
), tasks AS (
""" + tasks_create_sql("""
    SELECT %(title_prefix)s || c.name || ': ' || h.from_name || ' → ' || coalesce(nullif(h.to_name, ''), '—'),
           'tier_changed', jsonb_build_object('name', c.name, 'from', h.from_name, 'to', h.to_name),
           replace(replace(replace(%(notes)s, '{{spend_12m}}', %(money)s || to_char(h.spend_12m, '{grouped}')),
                           '{{spend_month}}', %(money)s || to_char(h.spend_month, '{grouped}')),
                   '{{trips}}', h.trips_12m::text),
           'tier_change_note', jsonb_build_object('spend_12m', h.spend_12m::text, 'spend_month', h.spend_month::text,
                                                  'trips', h.trips_12m),
           c.owner_id, c.id, %(due)s, 'tier-change:' || h.id, %(now)s
    FROM history h
    JOIN {customer} c ON c.id = h.customer_id
    JOIN {user} u ON u.id = c.owner_id AND u.is_active
    WHERE %(notify)s AND h.from_tier_id IS NOT NULL AND h.from_tier_id IS DISTINCT FROM h.to_tier_id""",
                       kind=Task.Kind.TIER_CHANGE, returning=True, texts=True, notes_text=True) + """
)
SELECT (SELECT count(*) FROM measures), (SELECT count(*) FROM upserted), (SELECT count(*) FROM history),
       (SELECT count(*) FROM history h WHERE h.from_tier_id IS NOT NULL AND h.to_tier_id IS NOT NULL),
       (SELECT count(*) FROM tasks)
"""


def assignment_run(*, now: datetime | None = None) -> dict:
    """Assign every customer its tier (see ``_ASSIGN_SQL``). Idempotent: a second run with nothing
    changed writes nothing. Returns counts: customers measured, rows written, tier changes,
    of which moves between two tiers, and owner tasks made."""
    agency = require_agency()
    now = now or timezone.now()
    if not ServiceTier.objects.exists() and not CustomerTier.objects.exists():
        return {"customers": 0, "written": 0, "changes": 0, "moves": 0, "tasks": 0}
    rules = tier_settings()
    with timezone.override(agency.time_zone):
        windows = measure_windows(now=now)
    with translation.override(agency.language):
        title_prefix = _("Service tier changed") + ": "
        notes = _("Spend in the last 12 months: {spend_12m}; last full month: {spend_month}; trips in the last "
                  "12 months: {trips}.")
        # The amounts are written by the statement: the currency as caravan.formatting puts it ("CNY " / "¥"),
        # then the amount grouped by thousands with two decimals.
        money_before = formatting.money(0, agency.currency)[:-len("0.00")]
    params = {**windows, "now": now, "keep": (Decimal(100) - rules.hysteresis_percent) / Decimal(100),
              "min_since": now - timedelta(days=rules.min_days_in_tier), "notify": rules.notify_owner,
              "title_prefix": title_prefix, "notes": notes, "money": money_before, "due": now + TIER_CHANGE_DUE}
    sql = _ASSIGN_SQL.format(grouped="FM9,999,999,990.00", trip=Trip._meta.db_table, item=ItineraryItem._meta.db_table,
                             customer=Customer._meta.db_table, customer_tier=CustomerTier._meta.db_table,
                             tier=ServiceTier._meta.db_table, change=TierChange._meta.db_table,
                             task=Task._meta.db_table, user=User._meta.db_table,
                             value=CustomerValue._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        # One run at a time, and no override lands between reading and writing a row.
        cursor.execute(f"LOCK TABLE {CustomerTier._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(sql, params)
        customers, written, changes, moves, tasks = cursor.fetchone()
        TierSettings.objects.filter(pk=rules.pk).update(last_run_at=now)
    return {"customers": customers, "written": written, "changes": changes, "moves": moves, "tasks": tasks}


def assignment_due(*, now: datetime | None = None) -> bool:
    """Whether the nightly run is due: from the quiet hour in the agency's time zone, once a day
    (a missed night is caught up at the next hourly check)."""
    agency = require_agency()
    now = now or timezone.now()
    last = tier_settings().last_run_at
    with timezone.override(agency.time_zone):
        local = timezone.localtime(now)
        if local.hour < QUIET_HOUR:
            return False
        return last is None or timezone.localdate(last) < local.date()


def assignment_next_due():
    """The nightly assignment is next due at the quiet hour of the agency's clock."""
    return agency_jobs.next_local(require_agency(), time(QUIET_HOUR, 0))


def assignment_nightly(*, now: datetime | None = None) -> dict | None:
    """The hourly check behind the nightly job: when it is due, assign the tiers, then give account
    managers the proactive-outreach tasks the (new) tiers ask for."""
    if not assignment_due(now=now):
        return None
    counts = assignment_run(now=now)
    counts["outreach"] = outreach_run(now=now)
    return counts


# --- proactive outreach ---------------------------------------------------------------------------

# Customers whose tier asks for outreach every N days, with an active account manager, no outbound
# contact from staff in the last N days and no open outreach task: one task each, due today.
_OUTREACH_SQL = tasks_create_sql("""
SELECT %(title_prefix)s || c.name || ' (' || st.name || ')',
       'outreach', jsonb_build_object('name', c.name, 'tier', st.name),
       replace(replace(%(notes)s, '{{days}}', st.outreach_days::text),
               '{{last}}', coalesce(to_char(last.at AT TIME ZONE %(tz)s, 'YYYY-MM-DD'), %(never)s)),
       'outreach_note', jsonb_build_object('days', st.outreach_days,
                                           'last', coalesce(to_char(last.at AT TIME ZONE %(tz)s, 'YYYY-MM-DD'), '')),
       c.owner_id, c.id, %(due)s, 'outreach:' || c.id || ':' || %(today)s, %(now)s
FROM {customer_tier} ct
JOIN {tier} st ON st.id = ct.tier_id AND st.outreach_days IS NOT NULL
JOIN {customer} c ON c.id = ct.customer_id AND c.merged_into_id IS NULL
JOIN {user} u ON u.id = c.owner_id AND u.is_active
LEFT JOIN LATERAL (
    SELECT k.at FROM {contact} k
    WHERE k.customer_id = c.id AND k.direction = 'out' AND k.staff_id IS NOT NULL AND k.channel = ANY(%(channels)s)
    ORDER BY k.at DESC LIMIT 1) last ON true
WHERE (last.at IS NULL OR last.at < %(now)s - make_interval(days => st.outreach_days))
  AND NOT EXISTS (SELECT 1 FROM {task} t WHERE t.customer_id = c.id AND t.kind = 'outreach' AND t.done_at IS NULL)""",
                                 kind=Task.Kind.OUTREACH, texts=True, notes_text=True)


def outreach_run(*, now: datetime | None = None) -> int:
    """Proactive outreach (R-TIER-1): a task for the account manager of every customer whose tier
    asks for contact every N days and who has heard nothing from us for that long (no outbound call,
    e-mail, message or visit by staff). One open outreach task per customer at most; a second run the
    same day makes nothing. Returns the number of tasks made."""
    agency = require_agency()
    now = now or timezone.now()
    with translation.override(agency.language):
        title_prefix = _("Proactive outreach") + ": "
        notes = _("The service tier asks for a contact every {days} days; last contact: {last}.")
        never = pgettext("last contact", "never")
    with timezone.override(agency.time_zone):
        today = timezone.localdate(now)
        due = timezone.make_aware(datetime.combine(today, time(18, 0)))
    sql = _OUTREACH_SQL.format(task=Task._meta.db_table, customer_tier=CustomerTier._meta.db_table,
                               tier=ServiceTier._meta.db_table, customer=Customer._meta.db_table,
                               user=User._meta.db_table, contact=Contact._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"title_prefix": title_prefix, "notes": notes, "never": never, "tz": agency.time_zone,
                             "due": max(due, now), "today": today.isoformat(), "now": now,
                             "channels": [str(c) for c in RESPONSE_CHANNELS]})
        return cursor.rowcount


def assignment_queue(*, actor: User) -> None:
    """"Recompute now": queue the assignment for this agency (it runs in the worker)."""
    if not can_manage_tiers(actor):
        raise PermissionDenied
    from .tasks import assign_tiers_now

    TierRecompute.objects.create(requested_by=actor, **leases.offered())
    leases.watch(RECOMPUTE)
    assign_tiers_now.delay()


def recompute_run() -> dict:
    """The queued "recompute now" runs under their lease (one assignment covers every request made
    before it); a message whose requests another worker holds, or that already ran, does nothing."""
    result = {"recomputed": 0}
    for pk in TierRecompute.objects.filter(status=TierRecompute.Status.RUNNING).values_list("pk", flat=True):
        lease = leases.acquire(RECOMPUTE, pk)
        if lease is None:
            continue
        with lease, transaction.atomic():
            counts = assignment_run()
            lease.finish(status=TierRecompute.Status.DONE, finished_at=timezone.now(), result=counts)
        result = {**counts, "recomputed": result["recomputed"] + 1}
    return result


def assignment_population() -> int:
    """How many customers an assignment measures (every customer not merged away): a running
    recompute's progress names it."""
    return Customer.objects.filter(merged_into__isnull=True).count()


def recompute_latest() -> TierRecompute | None:
    """The latest "recompute now", for the settings page (running, or failed with its reason)."""
    return TierRecompute.objects.first()


def _recompute_resume(pk) -> None:
    from .tasks import assign_tiers_now

    assign_tiers_now.delay()


RECOMPUTE = leases.register(leases.Kind(
    name="tiers.recompute", model="tiers.TierRecompute", active={"status": "running"}, resume=_recompute_resume,
    failed=lambda reason: {"status": TierRecompute.Status.FAILED, "finished_at": timezone.now()}))


# --- manual overrides -----------------------------------------------------------------------------

def _notify_owner(customer: Customer, change: TierChange, actor: User | None) -> None:
    owner = customer.owner
    if owner is None or not owner.is_active or (actor is not None and owner.pk == actor.pk):
        return
    if not tier_settings().notify_owner or change.from_tier_id == change.to_tier_id:
        return
    from crm.pipeline.services import task_create

    agency = require_agency()
    with translation.override(owner.language or agency.language):
        task_create(actor=actor, owner=owner, customer=customer, kind=Task.Kind.TIER_CHANGE,
                    title=_("Service tier changed") + f": {customer.name}: {change.from_name or '—'} → {change.to_name or '—'}",
                    notes=change.note, due_at=timezone.now() + TIER_CHANGE_DUE, key=f"tier-change:{change.pk}",
                    text=texts.store("tier_changed", name=customer.name, **{"from": change.from_name,
                                                                            "to": change.to_name}))


def _status(customer: Customer) -> CustomerTier:
    """The customer's tier row, locked; made (with the measures of the next run pending) if missing."""
    CustomerTier.objects.get_or_create(customer=customer)
    return CustomerTier.objects.select_for_update(of=("self",)).select_related("tier").get(customer=customer)


@transaction.atomic
def override_set(*, actor: User, customer: Customer, tier: ServiceTier | None, reason: str,
                 until: date | None = None) -> CustomerTier:
    """A manager puts the customer in ``tier`` whatever the criteria say, until ``until`` (a date in
    the agency's time zone, included; none: until removed). The reason is required."""
    if not can_override(actor):
        raise PermissionDenied
    errors = {}
    reason = (reason or "").strip()
    if tier is None:
        errors["tier"] = [_("Choose the tier.")]
    if not reason:
        errors["reason"] = [_("Say why the customer gets this tier.")]
    elif len(reason) > 300:
        errors["reason"] = [_("At most 300 characters.")]
    if until is not None and until <= timezone.localdate():
        errors["until"] = [_("The end date must be in the future.")]
    if customer.merged_into_id:
        errors["customer"] = [_("This customer was merged into another record.")]
    if errors:
        raise ValidationError(errors)
    status = _status(customer)
    previous = status.tier
    now = timezone.now()
    status.override_tier, status.override_reason, status.override_until = tier, reason, until
    status.override_by, status.override_at = actor, now
    status.tier = tier
    if previous is None or previous.pk != tier.pk:
        status.since = now
    status.save()
    change = TierChange.objects.create(
        customer=customer, from_tier=previous, to_tier=tier, from_name=previous.name if previous else "",
        to_name=tier.name, why=TierChange.Why.OVERRIDE, note=reason, spend_12m=status.spend_12m,
        spend_month=status.spend_month, trips_12m=status.trips_12m, by=actor, at=now)
    _notify_owner(customer, change, actor)
    return status


@transaction.atomic
def override_remove(*, actor: User, customer: Customer) -> CustomerTier:
    """End the override now: the customer falls back to its computed tier."""
    if not can_override(actor):
        raise PermissionDenied
    status = _status(customer)
    if not status.has_override:
        raise ValidationError({"tier": [_("This customer has no override.")]})
    previous, reason = status.tier, status.override_reason
    status.override_tier, status.override_reason, status.override_until = None, "", None
    status.override_by = status.override_at = None
    status.tier = status.computed_tier
    now = timezone.now()
    if (previous.pk if previous else None) != status.tier_id:
        status.since = now
    status.save()
    to_tier = status.tier
    change = TierChange.objects.create(
        customer=customer, from_tier=previous, to_tier=to_tier, from_name=previous.name if previous else "",
        to_name=to_tier.name if to_tier else "", why=TierChange.Why.OVERRIDE_ENDED, note=reason,
        spend_12m=status.spend_12m, spend_month=status.spend_month, trips_12m=status.trips_12m, by=actor, at=now)
    _notify_owner(customer, change, actor)
    return status


# --- service-level clocks -------------------------------------------------------------------------

def _default_tiers():
    return ServiceTier.objects.filter(applies_to=ServiceTier.AppliesTo.BOTH, min_spend_12m__isnull=True,
                                      min_spend_month__isnull=True, min_trips_12m__isnull=True,
                                      value_segments=[]).order_by("rank")


def default_tier() -> ServiceTier | None:
    """The highest tier without criteria: where a customer not assigned yet stands."""
    return _default_tiers().first()


_TARGET_FIELD = {ServiceClock.Kind.LEAD: "lead_response_hours", ServiceClock.Kind.REQUEST: "request_response_hours",
                 ServiceClock.Kind.COMPLAINT: "complaint_response_hours"}  # as ServiceTier.target_hours

_CLOCK_START_SQL = """
WITH given AS (SELECT %s::bigint AS customer_id),
tier AS ({tier}),
new AS (
    INSERT INTO {clock} (kind, customer_id, tier_id, tier_name, target_hours, started_at, due_at, owner_id,
                         opportunity_id, complaint_id, contact_id, key)
    SELECT %s, given.customer_id, tier.id, tier.name, tier.hours, %s, %s::timestamptz + make_interval(hours => tier.hours), %s, %s,
           %s, %s, %s
    FROM tier, given WHERE tier.hours > 0
    ON CONFLICT (key) DO NOTHING
    RETURNING id, due_at)
SELECT tier.id, tier.name, tier.hours, new.id, new.due_at FROM tier LEFT JOIN new ON true"""


@functools.cache
def _clock_start_sql(kind: str) -> tuple[str, tuple]:
    """The clock's statement for ``kind`` and its fixed parameters, compiled once per process: building
    the tier's query (``Exists``, ``Subquery``) cost more than the rest of ``clock_start``. The customer
    comes from the ``given`` row, so the text holds nothing of one call, and it names no schema (the
    connection's search path picks the agency's tables), so one text serves every agency."""
    customer = RawSQL("SELECT customer_id FROM given", [], output_field=BigIntegerField())
    status = CustomerTier.objects.filter(customer_id=customer)
    tier_sql, tier_params = (
        ServiceTier.objects.filter(Q(Exists(status), pk=Subquery(status.values("tier_id")[:1]))
                                   | Q(~Exists(status), pk=Subquery(_default_tiers().values("pk")[:1])))
        .annotate(hours=F(_TARGET_FIELD[kind])).order_by().values("id", "name", "hours")
        .query.sql_with_params())
    sql = _CLOCK_START_SQL.format(tier=tier_sql, clock=connection.ops.quote_name(ServiceClock._meta.db_table))
    return sql, tuple(tier_params)


def clock_start(*, kind: str, customer: Customer, key: str, started_at: datetime | None = None,
                owner: User | None = None, opportunity=None, complaint=None, contact: Contact | None = None
                ) -> ServiceClock | None:
    """Start a first-response clock with the target of the customer's tier now (a customer not
    assigned yet: the default tier's). No tier, or no target for this kind: no clock (None). Starting twice with the same key makes one clock.

    One statement: the customer's tier (its ``CustomerTier`` row's, else the default tier) and the
    clock's insert, ``ON CONFLICT (key) DO NOTHING`` (a clock started before is read back)."""
    sql, tier_params = _clock_start_sql(kind)
    # In UTC: adding hours to a local wall-clock time would be off by an hour across a DST change.
    started_at = (started_at or timezone.now()).astimezone(dt_timezone.utc)
    owner_id = owner.pk if owner is not None else customer.owner_id
    fields = {"kind": kind, "customer_id": customer.pk, "started_at": started_at, "owner_id": owner_id,
              "opportunity_id": opportunity.pk if opportunity is not None else None,
              "complaint_id": complaint.pk if complaint is not None else None,
              "contact_id": contact.pk if contact is not None else None, "key": key}
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, [customer.pk, *tier_params, kind, started_at, started_at, owner_id,
                                       fields["opportunity_id"], fields["complaint_id"], fields["contact_id"], key])
        row = cursor.fetchone()
    if row is None or not row[2]:  # no tier, or no target for this kind
        return None
    tier_id, tier_name, hours, clock_id, due_at = row
    if clock_id is None:  # started before with this key
        return ServiceClock.objects.get(key=key)
    clock = ServiceClock(id=clock_id, tier_id=tier_id, tier_name=tier_name, target_hours=hours, due_at=due_at, **fields)
    clock._state.adding, clock._state.db = False, connection.alias
    clock.customer, clock.opportunity, clock.complaint, clock.contact = customer, opportunity, complaint, contact
    if owner is not None:
        clock.owner = owner
    # checked from its near-breach mark (75% of the target)
    agency_jobs.due("tiers.check_clocks", started_at + (clock.due_at - started_at) * NEAR_SHARE)
    return clock


def clocks_on_contact(*, contact: Contact, lead: bool = False) -> None:
    """Receiver of ``crm.customers.hooks.contact_added``. An outbound call, e-mail, message or visit logged by
    staff answers every clock of the customer running since before it; an inbound call, e-mail or
    message is a request and starts a request clock — unless it is a lead's enquiry (``lead``): the
    lead's clock (``lead_clock_start``) stands for it."""
    if contact.direction == Contact.Direction.OUTBOUND and contact.staff_id and contact.channel in RESPONSE_CHANNELS:
        ServiceClock.objects.filter(customer_id=contact.customer_id, responded_at__isnull=True,
                                    started_at__lte=contact.at).update(responded_at=contact.at,
                                                                       responded_by_id=contact.staff_id)
    elif contact.direction == Contact.Direction.INBOUND and contact.channel in REQUEST_CHANNELS and not lead:
        clock_start(kind=ServiceClock.Kind.REQUEST, customer=contact.customer, key=f"request:{contact.pk}",
                    started_at=contact.at, contact=contact)


def lead_clock_start(*, opportunity, contact: Contact | None = None) -> ServiceClock | None:
    """Receiver of ``crm.pipeline.hooks.lead_received``: the lead's clock. The enquiry's own inbound
    contact is the lead, not a separate request: it was announced with ``lead=True``, so it started
    no request clock."""
    return clock_start(kind=ServiceClock.Kind.LEAD, customer=opportunity.customer, key=f"lead:{opportunity.pk}",
                       started_at=opportunity.created_at, owner=opportunity.owner,
                       opportunity=opportunity, contact=contact)


def lead_clock_stop(*, opportunity, actor: User | None) -> None:
    """Receiver of ``crm.pipeline.hooks.opportunity_moved``: the first stage move (or loss) answers the lead."""
    ServiceClock.objects.filter(opportunity_id=opportunity.pk, responded_at__isnull=True).update(
        responded_at=timezone.now(), responded_by=actor)


def complaint_clock_start(*, complaint) -> ServiceClock | None:
    """Receiver of ``crm.care.hooks.complaint_logged``."""
    return clock_start(kind=ServiceClock.Kind.COMPLAINT, customer=complaint.customer, key=f"complaint:{complaint.pk}",
                       started_at=complaint.created_at, owner=complaint.owner or complaint.customer.owner,
                       complaint=complaint)


def complaint_clock_stop(*, complaint, actor: User | None) -> None:
    """Receiver of ``crm.care.hooks.complaint_status_set``: in progress or resolved answers it."""
    if complaint.status in ("in_progress", "resolved"):
        ServiceClock.objects.filter(complaint_id=complaint.pk, responded_at__isnull=True).update(
            responded_at=timezone.now(), responded_by=actor)


def near_mark() -> ExpressionWrapper:
    """When a clock becomes "near": started_at + (due_at − started_at) × 75%."""
    share = ExpressionWrapper((F("due_at") - F("started_at")) * Value(NEAR_SHARE), output_field=DurationField())
    return ExpressionWrapper(F("started_at") + share, output_field=DateTimeField())


_REFRESH_OWNERS_SQL = """
UPDATE {clock} c SET owner_id = src.owner_id
FROM (SELECT k.id, coalesce(o.owner_id, p.owner_id) AS owner_id FROM {clock} k
      LEFT JOIN {opportunity} o ON o.id = k.opportunity_id
      LEFT JOIN {complaint} p ON p.id = k.complaint_id
      WHERE k.responded_at IS NULL AND (k.opportunity_id IS NOT NULL OR k.complaint_id IS NOT NULL)) src
WHERE c.id = src.id AND src.owner_id IS NOT NULL AND c.owner_id IS DISTINCT FROM src.owner_id"""


def clocks_check(*, now: datetime | None = None) -> dict:
    """Every five minutes: running clocks past 75% of their target are near a breach (the owner
    gets a task), clocks past their due time are breached (the owner gets a task, every manager an
    e-mail). Each clock is claimed before anyone is told, so it is notified once of each."""
    from crm.care.models import Complaint
    from crm.pipeline.models import Opportunity
    from crm.pipeline.services import task_create

    now = now or timezone.now()
    agency = require_agency()
    with connection.cursor() as cursor:  # a lead taken or a complaint reassigned: the new owner answers
        cursor.execute(_REFRESH_OWNERS_SQL.format(clock=ServiceClock._meta.db_table,
                                                  opportunity=Opportunity._meta.db_table,
                                                  complaint=Complaint._meta.db_table))
    running = ServiceClock.objects.filter(responded_at__isnull=True)
    with transaction.atomic():
        near = list(running.select_for_update(skip_locked=True)
                    .filter(near_notified_at__isnull=True, breached_notified_at__isnull=True, due_at__gt=now)
                    .annotate(near_at=near_mark()).filter(near_at__lte=now).values_list("pk", flat=True))
        ServiceClock.objects.filter(pk__in=near).update(near_notified_at=now)
    with transaction.atomic():
        breached = list(running.select_for_update(skip_locked=True)
                        .filter(breached_notified_at__isnull=True, due_at__lte=now).values_list("pk", flat=True))
        ServiceClock.objects.filter(pk__in=breached).update(breached_notified_at=now)
    for clock in ServiceClock.objects.filter(pk__in=near + breached).select_related("customer", "owner"):
        if clock.owner is None or not clock.owner.is_active:
            continue
        is_breach = clock.pk in breached
        with translation.override(clock.owner.language or agency.language):
            title = (_("Service level breached: %(kind)s from %(name)s") if is_breach
                     else _("Service level at risk: %(kind)s from %(name)s")) % {
                "kind": clock.get_kind_display(), "name": clock.customer.name}
            task_create(actor=None, title=title, owner=clock.owner, customer=clock.customer,
                        opportunity=clock.opportunity, kind=Task.Kind.SERVICE_LEVEL,
                        due_at=now if is_breach else clock.due_at,
                        notes=_("First response due %(due)s (%(tier)s: %(hours)d h).") % {
                            "due": _local_text(clock.due_at, agency), "tier": clock.tier_name,
                            "hours": clock.target_hours},
                        note=texts.store("sla_note", due=clock.due_at, tier=clock.tier_name,
                                         hours=clock.target_hours),
                        key=f"sla-{'breach' if is_breach else 'near'}:{clock.pk}",
                        text=texts.store("sla_breached" if is_breach else "sla_at_risk", kind=clock.kind,
                                         name=clock.customer.name))
    if breached:
        try:
            _breach_mail(ServiceClock.objects.filter(pk__in=breached).select_related("customer", "owner")
                         .order_by("due_at"), agency)
        except Exception:
            ServiceClock.objects.filter(pk__in=breached, breached_notified_at=now).update(breached_notified_at=None)
            raise
    return {"near": len(near), "breached": len(breached)}


def clocks_next_due():
    """When ``clocks_check`` next has a clock to notify: the earliest near-breach mark not yet
    notified, or breach (due time) not yet notified, of a running clock (None: no clock running)."""
    return ServiceClock.objects.filter(responded_at__isnull=True, breached_notified_at__isnull=True).aggregate(
        at=Min(Case(When(near_notified_at__isnull=True, then=near_mark()), default=F("due_at"))))["at"]


def _local_text(moment: datetime, agency) -> str:
    with timezone.override(agency.time_zone):
        return formatting.daytime(moment)


def _breach_mail(clocks, agency) -> None:
    """One e-mail per manager listing this run's breaches, in the manager's language."""
    clocks = list(clocks)
    with timezone.override(agency.time_zone):
        mail_each(managers(), template="tiers/email/breach", agency=agency,
                  context={"clocks": clocks, "url": agency.url(reverse("service_level_report"))})
