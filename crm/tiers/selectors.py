"""Reads for crm.tiers: what pages, the API and jobs show."""
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, Min, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.roles import Cap

from crm.customers.periods import day_bounds, trailing_days
from .models import CustomerTier, ServiceClock, ServiceTier, TierChange, TierSettings
from .services import can_manage_tiers, can_override, near_mark

REPORT_DEFAULT_DAYS = 30
CLOCK_STATES = ("running", "near", "breached", "met", "missed")


def tiers_for(customer_ids: Iterable[int]) -> dict[int, ServiceTier]:
    """The tier in force of each customer that has one: ``{customer_id: ServiceTier}``. One query;
    customers without a tier are simply absent. For badges in lists, cards, the screen pop."""
    ids = {int(pk) for pk in customer_ids if pk is not None}
    if not ids:
        return {}
    rows = CustomerTier.objects.filter(customer_id__in=ids, tier__isnull=False).select_related("tier")
    return {row.customer_id: row.tier for row in rows}


def tier_of(customer) -> ServiceTier | None:
    """The tier in force of one customer, or None."""
    return tiers_for([customer.pk]).get(customer.pk)


def tier_list() -> QuerySet:
    """The tiers, highest first, each with ``customer_count`` (customers in it now)."""
    counts = dict(CustomerTier.objects.filter(tier__isnull=False).order_by().values("tier")
                  .annotate(n=Count("customer")).values_list("tier", "n"))
    tiers = list(ServiceTier.objects.order_by("rank"))
    for tier in tiers:
        tier.customer_count = counts.get(tier.pk, 0)
    return tiers


def customer_tier(customer) -> CustomerTier | None:
    return (CustomerTier.objects.select_related("tier", "computed_tier", "override_tier", "override_by")
            .filter(customer_id=customer.pk).first())


def tier_history(customer, *, limit: int = 20) -> list[TierChange]:
    return list(TierChange.objects.filter(customer_id=customer.pk).select_related("by", "from_tier", "to_tier")[:limit])


# --- clocks ---------------------------------------------------------------------------------------

def clock_list(*, filters: dict, user: User | None = None) -> QuerySet:
    """Clocks, the most urgent first. ``filters``: state (running, near, breached, met, missed),
    kind, owner (id), customer (id). Without ``sees_all`` a user sees the clocks they own."""
    now = timezone.now()
    queryset = ServiceClock.objects.select_related("customer", "owner", "responded_by")
    if user is not None and not sees_all_clocks(user):
        queryset = queryset.filter(owner=user)
    state = filters.get("state")
    if state in ("running", "near", "breached"):
        queryset = queryset.filter(responded_at__isnull=True)
    if state == "near":
        queryset = queryset.annotate(near_at=near_mark()).filter(near_at__lte=now, due_at__gt=now)
    elif state == "breached":
        queryset = queryset.filter(due_at__lte=now)
    elif state == "met":
        queryset = queryset.filter(responded_at__lte=F("due_at"))
    elif state == "missed":
        queryset = queryset.filter(Q(responded_at__gt=F("due_at")) | Q(responded_at__isnull=True, due_at__lte=now))
    if filters.get("kind"):
        queryset = queryset.filter(kind=filters["kind"])
    if filters.get("owner"):
        queryset = queryset.filter(owner_id=filters["owner"])
    if filters.get("customer"):
        queryset = queryset.filter(customer_id=filters["customer"])
    if state in ("met", "missed"):
        return queryset.order_by("-started_at", "-id")
    return queryset.order_by(F("responded_at").desc(nulls_first=True), "due_at", "id")


def sees_all_clocks(user: User) -> bool:
    return user.can(Cap.PIPELINE_MANAGE) or user.can(Cap.POLICIES_MANAGE)


def can_see_report(user: User) -> bool:
    return sees_all_clocks(user) or user.can(Cap.REPORTS_VIEW)


def clocks_at_risk(*, user: User) -> QuerySet:
    """Running clocks past 75% of their target or breached: everyone's for a manager, else one's own."""
    now = timezone.now()
    queryset = (ServiceClock.objects.filter(responded_at__isnull=True).annotate(near_at=near_mark())
                .filter(near_at__lte=now).select_related("customer", "owner"))
    if not sees_all_clocks(user):
        queryset = queryset.filter(owner=user)
    return queryset.order_by("due_at", "id")


# --- the service-level report ---------------------------------------------------------------------

class Median(Aggregate):
    """PostgreSQL's ``percentile_cont(0.5)`` of an interval."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


RESPONSE_TIME = ExpressionWrapper(F("responded_at") - F("started_at"), output_field=DurationField())
FIGURES = {
    "total": Count("id"),
    "met": Count("id", filter=Q(responded_at__lte=F("due_at"))),
    "answered": Count("id", filter=Q(responded_at__isnull=False)),
    "median": Median(RESPONSE_TIME, filter=Q(responded_at__isnull=False)),
}


@dataclass
class Row:
    label: str
    total: int = 0
    met: int = 0
    answered: int = 0
    median: timedelta | None = None
    key: object = None

    @property
    def missed(self) -> int:
        return self.total - self.met

    @property
    def attainment(self) -> float | None:
        """Percent of due first responses given within target."""
        return round(100 * self.met / self.total, 1) if self.total else None

    @property
    def median_hours(self) -> float | None:
        return round(self.median.total_seconds() / 3600, 1) if self.median is not None else None


@dataclass
class ServiceLevelReport:
    date_from: date
    date_to: date
    overall: Row
    pending: int = 0
    by_tier: list = field(default_factory=list)
    by_kind: list = field(default_factory=list)
    by_team: list = field(default_factory=list)
    by_person: list = field(default_factory=list)


def default_period() -> tuple[date, date]:
    return trailing_days(REPORT_DEFAULT_DAYS)


def service_level_report(*, date_from: date, date_to: date) -> ServiceLevelReport:
    """Clocks started in the period (days in the agency's time zone) that are due — answered, or
    past their target: attainment (answered within target ÷ due) and the median response time,
    overall, per tier, per kind, per team (``pipeline.Team`` members) and per person (the owner)."""
    from crm.pipeline.models import Team

    now = timezone.now()
    start, end = day_bounds(date_from, date_to)
    started = ServiceClock.objects.filter(started_at__gte=start, started_at__lt=end)
    due = started.filter(Q(responded_at__isnull=False) | Q(due_at__lte=now))
    report = ServiceLevelReport(date_from=date_from, date_to=date_to,
                                overall=Row(label="", **due.aggregate(**FIGURES)),
                                pending=started.filter(responded_at__isnull=True, due_at__gt=now).count())
    rows = due.order_by().values("tier_name").annotate(rank=Min("tier__rank"), **FIGURES).order_by(
        F("rank").asc(nulls_last=True), "tier_name")
    report.by_tier = [Row(label=r["tier_name"], key=r["tier_name"], **_figures(r)) for r in rows]
    kinds = dict(ServiceClock.Kind.choices)
    rows = due.order_by().values("kind").annotate(**FIGURES).order_by("kind")
    report.by_kind = [Row(label=str(kinds[r["kind"]]), key=r["kind"], **_figures(r)) for r in rows]
    names = dict(Team.objects.values_list("pk", "name"))
    rows = (due.filter(owner__teams__isnull=False).order_by().values("owner__teams").annotate(**FIGURES)
            .order_by("owner__teams"))
    report.by_team = sorted((Row(label=names.get(r["owner__teams"], ""), key=r["owner__teams"], **_figures(r))
                             for r in rows), key=lambda row: row.label)
    people = {u.pk: u for u in User.objects.filter(pk__in=due.values("owner"))}
    rows = due.order_by().values("owner").annotate(**FIGURES).order_by("owner")
    report.by_person = sorted((Row(label=str(people[r["owner"]]) if r["owner"] else "", key=r["owner"], **_figures(r))
                               for r in rows), key=lambda row: (row.key is None, row.label))
    return report


def _figures(row: dict) -> dict:
    return {name: row[name] for name in FIGURES}


# --- the customer card and the dashboard ----------------------------------------------------------

def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/tiers/_card.html)."""
    if not user.can(Cap.CUSTOMERS_VIEW):
        return {}
    status = customer_tier(customer)
    return {
        "tiers_card": True,
        "tiers_status": status,
        "tiers_tier": status.tier if status else None,
        "tiers_history": tier_history(customer, limit=5),
        "tiers_running_clocks": list(ServiceClock.objects.filter(customer_id=customer.pk, responded_at__isnull=True)
                                     .select_related("owner").order_by("due_at")[:5]),
        "tiers_can_override": can_override(user),
        "tiers_last_run": TierSettings.objects.filter(pk=1).values_list("last_run_at", flat=True).first(),
        "tiers_defined": ServiceTier.objects.exists(),
    }


def dashboard_context(*, user) -> dict:
    """What the dashboard shows of this area (template: frontend/tiers/_dashboard.html)."""
    if not (sees_all_clocks(user) or user.can(Cap.PIPELINE_WORK) or user.can(Cap.COMPLAINTS_HANDLE)):
        return {}
    at_risk = clocks_at_risk(user=user)
    clocks = list(at_risk[:10])
    if not clocks and not sees_all_clocks(user):
        return {}  # nothing of one's own at risk: no empty box for staff
    return {"tiers_at_risk": clocks, "tiers_at_risk_count": at_risk.count(),
            "tiers_breached_count": at_risk.filter(due_at__lte=timezone.now()).count(),
            "tiers_sees_all": sees_all_clocks(user), "tiers_can_manage": can_manage_tiers(user),
            "tiers_can_report": can_see_report(user), "now": timezone.now()}
