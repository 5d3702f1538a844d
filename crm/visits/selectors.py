"""Reads for crm.visits: plans, upcoming and missed slots, visit records, the report."""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.roles import Cap
from caravan.tenancy import require_agency
from crm.pipeline.models import Task

from .models import Visit, VisitPlan
from .services import KEY_PREFIX, agency_today, can_plan_for, can_record

REPORT_DEFAULT_DAYS = 90


def sees_all(user: User) -> bool:
    return user.can(Cap.PIPELINE_MANAGE)


def _day_start(day: date) -> datetime:
    with timezone.override(require_agency().time_zone):
        return timezone.make_aware(datetime.combine(day, time.min))


def slot_tasks() -> QuerySet:
    """Every generated visit slot (done or not), as tasks."""
    return Task.objects.filter(kind=Task.Kind.VISIT, key__startswith=KEY_PREFIX)


def missed_slots(*, date_from: date | None = None, date_to: date | None = None, owner: User | None = None) -> QuerySet:
    """Slots whose day has passed with no visit recorded (their task still undone)."""
    today = agency_today()
    end = min(date_to + timedelta(days=1), today) if date_to else today
    qs = slot_tasks().filter(done_at__isnull=True, due_at__lt=_day_start(end))
    if date_from:
        qs = qs.filter(due_at__gte=_day_start(date_from))
    if owner is not None:
        qs = qs.filter(owner=owner)
    return qs.select_related("customer", "owner").order_by("-due_at")


def upcoming_slots(*, owner: User | None = None, days: int = 14) -> QuerySet:
    today = agency_today()
    qs = slot_tasks().filter(done_at__isnull=True, due_at__gte=_day_start(today),
                             due_at__lt=_day_start(today + timedelta(days=days)))
    if owner is not None:
        qs = qs.filter(owner=owner)
    return qs.select_related("customer", "owner").order_by("due_at")


def plan_list(*, user: User, account=None) -> QuerySet:
    qs = VisitPlan.objects.select_related("account", "owner")
    if account is not None:
        qs = qs.filter(account=account)
    if not sees_all(user):
        qs = qs.filter(Q(owner=user) | Q(account__owner=user))
    return qs


def visit_list(*, account=None, owner: User | None = None, date_from: date | None = None,
               date_to: date | None = None) -> QuerySet:
    qs = Visit.objects.select_related("account", "owner", "recorded_by").prefetch_related("staff", "met_people")
    if account is not None:
        qs = qs.filter(account=account)
    if owner is not None:
        qs = qs.filter(owner=owner)
    if date_from:
        qs = qs.filter(visited_at__gte=_day_start(date_from))
    if date_to:
        qs = qs.filter(visited_at__lt=_day_start(date_to + timedelta(days=1)))
    return qs


def default_period() -> tuple[date, date]:
    today = agency_today()
    return today - timedelta(days=REPORT_DEFAULT_DAYS), today


@dataclass
class VisitReport:
    date_from: date
    date_to: date
    planned: int = 0
    held: int = 0
    missed: int = 0
    visits: int = 0
    executive: int = 0
    by_owner: list[dict] = field(default_factory=list)
    by_account: list[dict] = field(default_factory=list)
    missed_list: list = field(default_factory=list)


def visit_report(*, date_from: date, date_to: date, owner: User | None = None) -> VisitReport:
    """Planned slots (due in the period), held (done), missed (past and undone), visits recorded
    (planned or not) and executive visits, in all, per account manager and per account."""
    start, end = _day_start(date_from), _day_start(date_to + timedelta(days=1))
    today_start = _day_start(agency_today())
    slots = slot_tasks().filter(due_at__gte=start, due_at__lt=end)
    visits = Visit.objects.filter(visited_at__gte=start, visited_at__lt=end)
    if owner is not None:
        slots, visits = slots.filter(owner=owner), visits.filter(owner=owner)
    slot_counts = dict(planned=Count("pk"), held=Count("pk", filter=Q(done_at__isnull=False)),
                       missed=Count("pk", filter=Q(done_at__isnull=True, due_at__lt=today_start)))
    visit_counts = dict(visits=Count("pk"), executive=Count("pk", filter=Q(executive_ours=True) | Q(executive_theirs=True)))
    report = VisitReport(date_from=date_from, date_to=date_to, **slots.aggregate(**slot_counts),
                         **visits.aggregate(**visit_counts))

    def grouped(key_slots: str, key_visits: str, names: dict) -> list[dict]:
        rows: dict = {}
        for row in slots.values(key_slots).annotate(**slot_counts):
            rows.setdefault(row[key_slots], {"planned": 0, "held": 0, "missed": 0, "visits": 0, "executive": 0}) \
                .update({k: row[k] for k in slot_counts})
        for row in visits.values(key_visits).annotate(**visit_counts):
            rows.setdefault(row[key_visits], {"planned": 0, "held": 0, "missed": 0, "visits": 0, "executive": 0}) \
                .update({k: row[k] for k in visit_counts})
        return sorted(({"id": pk, "name": names.get(pk, "—"), **counts} for pk, counts in rows.items()),
                      key=lambda r: (-r["missed"], str(r["name"])))

    owner_ids = set(slots.values_list("owner_id", flat=True)) | set(visits.values_list("owner_id", flat=True))
    owners = {u.pk: u.full_name or u.email for u in User.objects.filter(pk__in=owner_ids - {None})}
    report.by_owner = grouped("owner_id", "owner_id", owners)
    from crm.customers.models import Customer

    account_ids = set(slots.values_list("customer_id", flat=True)) | set(visits.values_list("account_id", flat=True))
    accounts = dict(Customer.objects.filter(pk__in=account_ids - {None}).values_list("pk", "name"))
    report.by_account = grouped("customer_id", "account_id", accounts)
    report.missed_list = list(missed_slots(date_from=date_from, date_to=date_to, owner=owner)[:100])
    return report


def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/visits/_card.html)."""
    if not user.can(Cap.CUSTOMERS_VIEW):
        return {}
    plans = list(VisitPlan.objects.filter(account=customer).select_related("owner"))
    visits = list(visit_list(account=customer)[:5])
    if not plans and not visits and customer.kind != customer.Kind.COMPANY:
        return {}
    next_slot = upcoming_slots(days=400).filter(customer=customer).first()
    return {
        "visits_card": True, "visits_plans": plans, "visits_recent": visits, "visits_next": next_slot,
        "visits_missed": missed_slots(date_from=agency_today() - timedelta(days=REPORT_DEFAULT_DAYS))
        .filter(customer=customer).count(),
        "visits_can_plan": can_plan_for(user, customer), "visits_can_record": can_record(user),
    }


def dashboard_context(*, user) -> dict:
    """What the dashboard shows of this area (template: frontend/visits/_dashboard.html): this week's
    missed visits (everyone's for managers) and one's own visits in the next seven days."""
    if not user.can(Cap.PIPELINE_WORK):
        return {}
    today = agency_today()
    monday = today - timedelta(days=today.weekday())
    mine = None if sees_all(user) else user
    missed = missed_slots(date_from=monday, owner=mine)
    upcoming = upcoming_slots(owner=user, days=7)
    if not missed.exists() and not upcoming.exists():
        return {}
    return {"visits_missed_week": list(missed[:10]), "visits_missed_week_count": missed.count(),
            "visits_upcoming": list(upcoming[:10]), "visits_sees_all": sees_all(user)}
