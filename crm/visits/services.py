"""Key-account visit writes (R-TIER-4): plans, their generated calendar tasks, visit records.

- ``plan_slots`` is pure date arithmetic; ``plan_sync`` makes the tasks of the next
  ``HORIZON_DAYS`` agree with the plan: missing ones are made (``Task.key`` = ``visit:<plan>:<date>``,
  so a job that runs twice makes each once), moved slots get their new time, slots the plan no
  longer has are deleted — only undone, future ones: what happened stays.
- Times are wall-clock times in the agency's time zone: a 10:00 slot is 10:00 local on both sides
  of a daylight-saving change.
- ``visit_record`` completes the slot's task (given, or the account's open slot in the same week —
  month for monthly plans), writes the account's timeline entry and the follow-up task.
"""
import calendar
from datetime import date, datetime, time, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap
from caravan import texts
from caravan.tenancy import require_agency
from crm.customers.models import Contact, Customer, Employment
from crm.pipeline.models import Task
from crm.pipeline.services import task_create
from crm.customers.services import contact_add

from .models import Visit, VisitPlan

HORIZON_DAYS = 35  # generated slots: today and the next five weeks
KEY_PREFIX = "visit:"
PLAN_FIELDS = ("account", "owner", "cadence", "weekday", "week_of_month", "time_of_day", "duration_minutes",
               "starts_on", "ends_on", "location", "notes", "active")
FOLLOW_UP_HOUR = time(9, 0)


# --- permissions ----------------------------------------------------------------------------------

def can_plan_for(user: User, account: Customer | None = None) -> bool:
    """Managers plan visits for anyone; people who work the pipeline for the accounts they manage."""
    if user.can(Cap.PIPELINE_MANAGE):
        return True
    return user.can(Cap.PIPELINE_WORK) and (account is None or account.owner_id == user.pk)


def can_record(user: User) -> bool:
    return user.can(Cap.PIPELINE_WORK)


# --- slots ----------------------------------------------------------------------------------------

def _first_on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1–4) or last (5) ``weekday`` of a month."""
    if n == VisitPlan.WeekOfMonth.LAST:
        last = date(year, month, calendar.monthrange(year, month)[1])
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    return _first_on_or_after(date(year, month, 1), weekday) + timedelta(weeks=n - 1)


def plan_slots(plan: VisitPlan, start: date, end: date) -> list[date]:
    """The plan's slot days from ``start`` to ``end`` (both included), within its own dates."""
    start = max(start, plan.starts_on)
    if plan.ends_on:
        end = min(end, plan.ends_on)
    if start > end:
        return []
    if plan.cadence == VisitPlan.Cadence.MONTHLY:
        days, year, month = [], start.year, start.month
        while date(year, month, 1) <= end:
            day = _nth_weekday(year, month, plan.weekday, plan.week_of_month or 1)
            if start <= day <= end:
                days.append(day)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return days
    step = 14 if plan.cadence == VisitPlan.Cadence.FORTNIGHTLY else 7
    first = _first_on_or_after(plan.starts_on, plan.weekday)  # fortnights count from the plan's first slot
    day = first if first >= start else first + timedelta(days=-(-(start - first).days // step) * step)
    days = []
    while day <= end:
        days.append(day)
        day += timedelta(days=step)
    return days


def slot_start(plan: VisitPlan, day: date) -> datetime:
    """The slot's start as an aware datetime: ``time_of_day`` on ``day`` in the agency's time zone."""
    with timezone.override(require_agency().time_zone):
        return timezone.make_aware(datetime.combine(day, plan.time_of_day))


def slot_window(plan: VisitPlan | None, day: date) -> tuple[date, date]:
    """The days a visit counts for a slot: the slot's week (Monday–Sunday), or its month for monthly plans."""
    if plan is not None and plan.cadence == VisitPlan.Cadence.MONTHLY:
        return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def agency_today() -> date:
    with timezone.override(require_agency().time_zone):
        return timezone.localdate()


def _slot_task_title(plan: VisitPlan) -> str:
    with translation.override(plan.owner.language or require_agency().language):
        return _("Visit %(account)s") % {"account": plan.account.name}


def plan_sync(plan: VisitPlan, *, today: date | None = None) -> dict:
    """Make the plan's undone future slot tasks match the plan over the horizon. Idempotent."""
    today = today or agency_today()
    wanted = set(plan_slots(plan, today, today + timedelta(days=HORIZON_DAYS))) if plan.active else set()
    prefix = f"{KEY_PREFIX}{plan.pk}:"
    existing = {task.key[len(prefix):]: task for task in
                Task.objects.filter(key__startswith=prefix, done_at__isnull=True)}
    done = {key[len(prefix):] for key in
            Task.objects.filter(key__startswith=prefix, done_at__isnull=False).values_list("key", flat=True)}
    made = moved = removed = 0
    for key_day, task in existing.items():
        day = date.fromisoformat(key_day)
        if day >= today and day not in wanted:
            task.delete()
            removed += 1
        elif day in wanted and (task.due_at != slot_start(plan, day) or task.owner_id != plan.owner_id):
            Task.objects.filter(pk=task.pk).update(due_at=slot_start(plan, day), owner=plan.owner)
            moved += 1
    title = _slot_task_title(plan) if wanted else ""
    notes = "\n".join(part for part in (plan.location, plan.notes) if part)
    for day in sorted(wanted):
        if day.isoformat() in existing or day.isoformat() in done:
            continue
        task_create(actor=None, title=title, owner=plan.owner, due_at=slot_start(plan, day), kind=Task.Kind.VISIT,
                    customer=plan.account, notes=notes, key=plan.task_key(day),
                    text=texts.store("visit_slot", account=plan.account.name))
        made += 1
    return {"made": made, "moved": moved, "removed": removed}


def plans_sync(*, today: date | None = None) -> dict:
    """The daily job: every plan's slots over the horizon (inactive and ended plans lose their future ones)."""
    totals = {"plans": 0, "made": 0, "moved": 0, "removed": 0}
    for plan in VisitPlan.objects.select_related("account", "owner"):
        with transaction.atomic():
            counts = plan_sync(plan, today=today)
        totals["plans"] += 1
        for key, value in counts.items():
            totals[key] += value
    return totals


# --- plans ----------------------------------------------------------------------------------------

def _clean_plan(fields: dict) -> None:
    errors = {}
    account = fields.get("account")
    if account is None:
        errors["account"] = [_("Choose the account.")]
    elif account.merged_into_id:
        errors["account"] = [_("This customer was merged into another record.")]
    owner = fields.get("owner")
    if owner is None or not owner.is_active or owner.is_operator or not owner.can(Cap.PIPELINE_WORK):
        errors["owner"] = [_("Choose an active colleague who works with customers.")]
    if fields.get("cadence") not in VisitPlan.Cadence.values:
        errors["cadence"] = [_("Choose how often.")]
    if fields.get("weekday") not in VisitPlan.Weekday.values:
        errors["weekday"] = [_("Choose a weekday.")]
    if fields.get("cadence") == VisitPlan.Cadence.MONTHLY:
        if fields.get("week_of_month") not in VisitPlan.WeekOfMonth.values:
            errors["week_of_month"] = [_("Choose which week of the month.")]
    else:
        fields["week_of_month"] = None
    if fields.get("time_of_day") is None:
        errors["time_of_day"] = [_("Give the time of the visit.")]
    duration = fields.get("duration_minutes")
    if not isinstance(duration, int) or not 15 <= duration <= 600:
        errors["duration_minutes"] = [_("Between 15 and 600 minutes.")]
    if fields.get("starts_on") is None:
        errors["starts_on"] = [_("Give the first week.")]
    elif fields.get("ends_on") and fields["ends_on"] < fields["starts_on"]:
        errors["ends_on"] = [_("The last day cannot come before the first.")]
    if len(fields.get("location") or "") > 200:
        errors["location"] = [_("At most 200 characters.")]
    if errors:
        raise ValidationError(errors)


def plan_save(*, actor: User, plan: VisitPlan | None = None, **fields) -> VisitPlan:
    """Create or change a plan, then bring its slot tasks in line."""
    plan = plan or VisitPlan(created_by=actor)
    data = {name: getattr(plan, name, None) for name in PLAN_FIELDS if plan.pk}
    data.update({name: value for name, value in fields.items() if name in PLAN_FIELDS})
    data.setdefault("active", True)
    data.setdefault("duration_minutes", 60)
    for name in ("location", "notes"):
        data[name] = (data.get(name) or "").strip()
    account = data.get("account")
    if not can_plan_for(actor, account if isinstance(account, Customer) else None) or (
            not actor.can(Cap.PIPELINE_MANAGE) and data.get("owner") is not None and data["owner"].pk != actor.pk):
        raise PermissionDenied
    _clean_plan(data)
    for name, value in data.items():
        setattr(plan, name, value)
    with transaction.atomic():
        plan.save()
        plan_sync(plan)
    return plan


# --- visit records --------------------------------------------------------------------------------

def _slot_task_for(account: Customer, day: date) -> Task | None:
    """The account's undone slot task whose window holds ``day`` (earliest first)."""
    tasks = (Task.objects.filter(customer=account, kind=Task.Kind.VISIT, key__startswith=KEY_PREFIX,
                                 done_at__isnull=True, visit__isnull=True)
             .order_by("due_at"))
    plans = {p.pk: p for p in VisitPlan.objects.filter(account=account)}
    for task in tasks:
        plan_id, slot_day = task.key[len(KEY_PREFIX):].split(":")
        first, last = slot_window(plans.get(int(plan_id)), date.fromisoformat(slot_day))
        if first <= day <= last:
            return task
    return None


def _summary(visit: Visit, people: list[Customer]) -> str:
    met = ", ".join([p.name for p in people] + ([visit.met_others] if visit.met_others else []))
    text = _("Visit: met %(met)s. Topics: %(topics)s") % {"met": met, "topics": visit.topics}
    if visit.concerns:
        text += "\n" + _("Concerns: %(concerns)s") % {"concerns": visit.concerns}
    if visit.is_executive:
        text += "\n" + _("Executive visit.")
    return text


def visit_record(*, actor: User, account: Customer, visited_at: datetime, staff: list[User], topics: str,
                 met_people: list[Customer] = (), met_others: str = "", executive_ours: bool = False,
                 executive_theirs: bool = False, concerns: str = "", next_steps: str = "", next_step_due: date | None = None,
                 satisfaction: int | None = None, task: Task | None = None) -> Visit:
    """Record a visit: completes the slot's task, writes the timeline entry and the follow-up task."""
    if not can_record(actor):
        raise PermissionDenied
    errors = {}
    met_people, staff = list(met_people or []), list(staff or [])
    topics, met_others = (topics or "").strip(), (met_others or "").strip()
    if account is None:
        errors["account"] = [_("Choose the account.")]
    elif account.merged_into_id:
        errors["account"] = [_("This customer was merged into another record.")]
    if visited_at is None:
        errors["visited_at"] = [_("Give the date and time of the visit.")]
    elif visited_at > timezone.now() + timedelta(minutes=5):
        errors["visited_at"] = [_("Record a visit once it has happened.")]
    if not staff:
        errors["staff"] = [_("Name at least one of our people.")]
    elif any(not u.is_active or u.is_operator for u in staff):
        errors["staff"] = [_("Choose active colleagues.")]
    if not met_people and not met_others:
        errors["met_people"] = [_("Say whom we met.")]
    if account is not None and met_people:
        allowed = set(Employment.objects.filter(company=account).values_list("person_id", flat=True)) | {account.pk}
        if any(p.pk not in allowed for p in met_people):
            errors["met_people"] = [_("Choose people of this account.")]
    if len(met_others) > 300:
        errors["met_others"] = [_("At most 300 characters.")]
    if not topics:
        errors["topics"] = [_("Say what was discussed.")]
    if next_step_due and not (next_steps or "").strip():
        errors["next_steps"] = [_("Say what the next step is.")]
    if satisfaction is not None and satisfaction not in range(1, 6):
        errors["satisfaction"] = [_("From 1 to 5.")]
    if task is not None and (task.kind != Task.Kind.VISIT or task.customer_id != getattr(account, "pk", None)):
        errors["task"] = [_("This task is not a visit slot of this account.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        with timezone.override(require_agency().time_zone):
            day = timezone.localdate(visited_at)
        if task is None:
            task = _slot_task_for(account, day)
        else:  # a claimed slot cannot count twice
            task = Task.objects.select_for_update().get(pk=task.pk)
            if Visit.objects.filter(task=task).exists():
                raise ValidationError({"task": [_("A visit is already recorded for this slot.")]})
        plan = None
        if task is not None and task.key and task.key.startswith(KEY_PREFIX):
            plan = VisitPlan.objects.filter(pk=int(task.key[len(KEY_PREFIX):].split(":")[0])).first()
        visit = Visit.objects.create(
            account=account, plan=plan, task=task, owner=plan.owner if plan else actor, visited_at=visited_at,
            met_others=met_others, executive_ours=executive_ours, executive_theirs=executive_theirs, topics=topics,
            concerns=(concerns or "").strip(), next_steps=(next_steps or "").strip(), next_step_due=next_step_due,
            satisfaction=satisfaction, recorded_by=actor)
        visit.staff.set(staff)
        visit.met_people.set(met_people)
        if task is not None and task.done_at is None:
            Task.objects.filter(pk=task.pk).update(done_at=timezone.now(), done_by=actor)
        visit.contact = contact_add(actor=actor, customer=account, channel=Contact.Channel.VISIT,
                                    direction=Contact.Direction.OUTBOUND, summary=_summary(visit, met_people),
                                    next_step=visit.next_steps[:300], next_step_due=next_step_due, at=visited_at)
        visit.save(update_fields=["contact"])
        if visit.next_steps:
            due_day = next_step_due or day + timedelta(days=7)
            with timezone.override(require_agency().time_zone):
                due_at = timezone.make_aware(datetime.combine(due_day, FOLLOW_UP_HOUR))
            task_create(actor=actor, title=_("Follow up the visit to %(account)s") % {"account": account.name},
                        owner=account.owner if account.owner and account.owner.is_active else visit.owner or actor,
                        due_at=due_at, kind=Task.Kind.FOLLOW_UP, customer=account, notes=visit.next_steps,
                        key=f"visit-follow-up:{visit.pk}", text=texts.store("visit_follow_up", account=account.name))
    return visit
