"""R-CAMP-4: "last year you travelled at this holiday".

``suggestion_days_before`` days (45 by default) before a festival's break, the daily job finds the
customers with a confirmed or completed trip overlapping that festival's break last year
(``crm.customers.festivals.festival_break(key, year - 1)``) and nothing booked (no trip that is not cancelled)
overlapping this year's break, and makes one suggestion per customer, festival and year, with an
owner task. The suggested destinations come from association with past trips: the destinations
most customers who went to the same place also went to (co-occurrence over the agency's trips, top
three, the place they already went excluded). All of it is one statement (``_SUGGEST_SQL``).
"""
from datetime import date, datetime, time, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap
from caravan.tenancy import require_agency
from crm.customers.festivals import FESTIVALS, festival_break
from crm.customers.models import Customer
from crm.pipeline.models import Opportunity, Task
from crm.pipeline.services import lead_intake, tasks_create_sql
from crm.trips.models import Trip

from ..models import LoyaltySettings, Suggestion
from .common import TRIP_DONE, agency_today, can_work, local_moment

TOP_DESTINATIONS = 3
TASK_HOUR = time(18, 0)

_SUGGEST_SQL = """
WITH last_year AS (
    SELECT DISTINCT ON (t.customer_id) t.customer_id, t.id AS trip_id, btrim(t.destination) AS destination,
           lower(btrim(t.destination)) AS dest_key, t.depart_on
    FROM {trip} t
    JOIN {customer} c ON c.id = t.customer_id AND c.merged_into_id IS NULL
    WHERE t.status = ANY(%(done)s) AND t.depart_on IS NOT NULL
      AND t.depart_on <= %(last_end)s AND coalesce(t.return_on, t.depart_on) >= %(last_start)s
    ORDER BY t.customer_id, t.depart_on DESC, t.id DESC
), candidates AS (
    SELECT ly.* FROM last_year ly
    WHERE NOT EXISTS (SELECT 1 FROM {trip} n WHERE n.customer_id = ly.customer_id AND n.status <> 'cancelled'
                        AND n.depart_on <= %(end)s AND coalesce(n.return_on, n.depart_on) >= %(start)s)
      -- festivals whose breaks run together (Mid-Autumn inside the National Day week): one suggestion
      AND NOT EXISTS (SELECT 1 FROM {suggestion} s WHERE s.customer_id = ly.customer_id AND s.year = %(year)s
                        AND s.festival <> %(festival)s
                        AND s.break_starts_on <= %(end)s AND s.break_ends_on >= %(start)s)
), visited AS (
    SELECT DISTINCT t.customer_id, lower(btrim(t.destination)) AS dest_key
    FROM {trip} t
    WHERE t.status = ANY(%(done)s) AND btrim(t.destination) <> ''
), pairs AS (
    SELECT a.dest_key AS source, b.dest_key AS other, count(*) AS customers
    FROM visited a JOIN visited b ON b.customer_id = a.customer_id AND b.dest_key <> a.dest_key
    WHERE a.dest_key IN (SELECT dest_key FROM candidates)
    GROUP BY a.dest_key, b.dest_key
), ranked AS (
    SELECT source, other, row_number() OVER (PARTITION BY source ORDER BY customers DESC, other) AS rank
    FROM pairs
), spelled AS (
    SELECT lower(btrim(t.destination)) AS dest_key, min(btrim(t.destination)) AS name
    FROM {trip} t
    WHERE lower(btrim(t.destination)) IN (SELECT other FROM ranked WHERE rank <= %(top)s)
    GROUP BY 1
), suggested AS (
    SELECT r.source, array_agg(left(s.name, 120) ORDER BY r.rank) AS destinations
    FROM ranked r JOIN spelled s ON s.dest_key = r.other
    WHERE r.rank <= %(top)s GROUP BY r.source
), inserted AS (
    INSERT INTO {suggestion} (customer_id, festival, year, break_starts_on, break_ends_on, last_trip_id,
                              last_destination, last_departed_on, destinations, status, created_at)
    SELECT c.customer_id, %(festival)s, %(year)s, %(start)s, %(end)s, c.trip_id, left(c.destination, 120),
           c.depart_on, coalesce(s.destinations, '{{}}'), 'open', %(now)s
    FROM candidates c LEFT JOIN suggested s ON s.source = c.dest_key
    ON CONFLICT (customer_id, festival, year) DO NOTHING
    RETURNING id, customer_id, last_destination, destinations
), tasks AS (
""" + tasks_create_sql("""
    SELECT %(title_prefix)s || cu.name, 'holiday_suggestion',
           jsonb_build_object('name', cu.name, 'festival', %(festival)s::text, 'year', %(year)s::int),
           replace(replace(%(notes)s, '{{last}}', coalesce(nullif(i.last_destination, ''), '—')),
                   '{{suggested}}', coalesce(nullif(array_to_string(i.destinations, ', '), ''), '—')),
           'suggestion_note', jsonb_build_object('festival', %(festival)s::text, 'start', %(start)s::date::text,
                                                 'end', %(end)s::date::text, 'last', coalesce(i.last_destination, ''),
                                                 'suggested', coalesce(array_to_string(i.destinations, ', '), '')),
           cu.owner_id, cu.id, %(due)s, 'suggestion:' || i.id, %(now)s
    FROM inserted i
    JOIN {customer} cu ON cu.id = i.customer_id
    JOIN {user} u ON u.id = cu.owner_id AND u.is_active""", kind=Task.Kind.SUGGESTION, returning=True, texts=True, notes_text=True) + """
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM tasks)
"""

_LINK_TASKS_SQL = """
UPDATE {suggestion} s SET task_id = t.id FROM {task} t
WHERE s.task_id IS NULL AND s.created_at = %(now)s AND t.key = 'suggestion:' || s.id
"""


def festivals_ahead(today: date, days_before: int) -> list[tuple[str, int, tuple[date, date], tuple[date, date]]]:
    """The festivals whose break starts within ``days_before`` days (today excluded from the break):
    (key, year, this year's break, last year's break)."""
    found = []
    for key in FESTIVALS:
        for year in (today.year, today.year + 1):
            this = festival_break(key, year)
            if this is None or not this[0] - timedelta(days=days_before) <= today < this[0]:
                continue
            last = festival_break(key, year - 1)
            if last is not None:
                found.append((key, year, this, last))
    return found


def suggestions_make(*, today: date | None = None, now: datetime | None = None) -> dict:
    """The daily run: suggestions and owner tasks for every festival coming up. Idempotent."""
    now = now or timezone.now()
    today = today or agency_today(now)
    made = tasks = 0
    for key, year, this_break, last_break in festivals_ahead(today, LoyaltySettings.load().suggestion_days_before):
        counts = festival_suggestions_make(festival=key, year=year, this_break=this_break, last_break=last_break,
                                           today=today, now=now)
        made, tasks = made + counts["suggestions"], tasks + counts["tasks"]
    return {"suggestions": made, "tasks": tasks}


def festival_suggestions_make(*, festival: str, year: int, this_break: tuple[date, date] | None = None,
                              last_break: tuple[date, date] | None = None, today: date | None = None,
                              now: datetime | None = None) -> dict:
    """Suggestions (and owner tasks) for one festival's break of ``year`` (``_SUGGEST_SQL``). Idempotent."""
    agency = require_agency()
    now = now or timezone.now()
    today = today or agency_today(now)
    this_break = this_break or festival_break(festival, year)
    last_break = last_break or festival_break(festival, year - 1)
    if this_break is None or last_break is None:
        return {"suggestions": 0, "tasks": 0}
    (start, end), (last_start, last_end) = this_break, last_break
    tables = {"trip": Trip._meta.db_table, "customer": Customer._meta.db_table, "user": User._meta.db_table,
              "suggestion": Suggestion._meta.db_table, "task": Task._meta.db_table}
    with translation.override(agency.language):
        label = str(FESTIVALS[festival][0])
        title_prefix = _("Holiday suggestion (%(festival)s %(year)s)") % {"festival": label, "year": year} + ": "
        notes = _("Travelled at %(festival)s last year ({last}) and has nothing booked for this year's "
                  "break (%(start)s – %(end)s). Customers who went there also went to: {suggested}.") % {
            "festival": label, "start": start.isoformat(), "end": end.isoformat()}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SUGGEST_SQL.format(**tables), {
            "done": list(TRIP_DONE), "last_start": last_start, "last_end": last_end, "start": start, "end": end,
            "year": year, "festival": festival, "top": TOP_DESTINATIONS, "now": now, "title_prefix": title_prefix,
            "notes": notes, "due": max(local_moment(today, TASK_HOUR), now)})
        made, tasks = cursor.fetchone()
        if made:
            cursor.execute(_LINK_TASKS_SQL.format(**tables), {"now": now})
    return {"suggestions": made, "tasks": tasks}


def _close_task(suggestion: Suggestion, actor: User | None, now: datetime) -> None:
    if suggestion.task_id:
        Task.objects.filter(pk=suggestion.task_id, done_at__isnull=True).update(done_at=now, done_by=actor)


def _open_for_update(suggestion: Suggestion) -> Suggestion:
    suggestion = Suggestion.objects.select_for_update().select_related("customer").get(pk=suggestion.pk)
    if suggestion.status != Suggestion.Status.OPEN:
        raise ValidationError({"status": [_("This suggestion was already dealt with.")]})
    return suggestion


@transaction.atomic
def suggestion_dismiss(*, actor: User, suggestion: Suggestion) -> Suggestion:
    """Not for this customer this year: closes the suggestion and its task."""
    if not can_work(actor):
        raise PermissionDenied
    suggestion = _open_for_update(suggestion)
    now = timezone.now()
    suggestion.status, suggestion.closed_at, suggestion.closed_by = Suggestion.Status.DISMISSED, now, actor
    suggestion.save(update_fields=["status", "closed_at", "closed_by"])
    _close_task(suggestion, actor, now)
    return suggestion


@transaction.atomic
def suggestion_to_lead(*, actor: User, suggestion: Suggestion, destination: str = "",
                       depart_on: date | None = None, return_on: date | None = None, message: str = "") -> Opportunity:
    """Turn the suggestion into a lead (``pipeline.services.lead_intake``) for this year's break, owned
    by the customer's account manager (or whoever takes it)."""
    if not can_work(actor):
        raise PermissionDenied
    suggestion = _open_for_update(suggestion)
    customer = suggestion.customer
    if customer.merged_into_id:
        raise ValidationError({"customer": [_("This customer was merged into another record.")]})
    destination = (destination or "").strip()
    if len(destination) > 120:
        raise ValidationError({"destination": [_("At most 120 characters.")]})
    destination = destination or (suggestion.destinations[0] if suggestion.destinations else suggestion.last_destination)
    owner = customer.owner if customer.owner and customer.owner.is_active and customer.owner.can(Cap.PIPELINE_WORK) \
        else (actor if actor.can(Cap.PIPELINE_WORK) else None)
    festival = suggestion.get_festival_display()
    opportunity = lead_intake(
        source=Opportunity.Source.STAFF, customer=customer, actor=actor, owner=owner, destination=destination,
        title=f"{festival} {suggestion.year}: {destination}" if destination else f"{festival} {suggestion.year}",
        depart_on=depart_on or suggestion.break_starts_on, return_on=return_on or suggestion.break_ends_on,
        message=(message or "").strip() or _("Holiday suggestion: travelled at %(festival)s last year (%(last)s).")
        % {"festival": festival, "last": suggestion.last_destination or "—"})
    now = timezone.now()
    suggestion.status, suggestion.opportunity = Suggestion.Status.LEAD, opportunity
    suggestion.closed_at, suggestion.closed_by = now, actor
    suggestion.save(update_fields=["status", "opportunity", "closed_at", "closed_by"])
    _close_task(suggestion, actor, now)
    return opportunity
