"""Reads for crm.care: what pages, the API and reports show."""
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.roles import Cap

from crm.customers.periods import day_bounds, trailing_days
from .models import Complaint, Survey

OPEN_STATUSES = (Complaint.Status.OPEN, Complaint.Status.IN_PROGRESS)
NEAR_DEADLINE = timedelta(hours=24)
REPORT_DEFAULT_DAYS = 90


def can_see_surveys(user: User) -> bool:
    return user.can(Cap.COMPLAINTS_HANDLE) or user.can(Cap.REPORTS_VIEW)


# --- complaints -----------------------------------------------------------------------------------

def complaint_list(*, filters: dict) -> QuerySet:
    """Complaints, nearest deadline first. ``filters``: status, severity, owner (id or "none"),
    overdue (bool), escalated (bool), customer (id)."""
    queryset = Complaint.objects.select_related("customer", "owner", "trip")
    now = timezone.now()
    if filters.get("status"):
        queryset = queryset.filter(status=filters["status"])
    if filters.get("severity"):
        queryset = queryset.filter(severity=filters["severity"])
    owner = filters.get("owner")
    if owner == "none":
        queryset = queryset.filter(owner__isnull=True)
    elif owner:
        queryset = queryset.filter(owner_id=owner)
    if filters.get("overdue"):
        queryset = queryset.filter(status__in=OPEN_STATUSES, deadline_at__lt=now)
    if filters.get("escalated"):
        queryset = queryset.filter(escalated_at__isnull=False)
    if filters.get("customer"):
        queryset = queryset.filter(customer_id=filters["customer"])
    return queryset.order_by("deadline_at", "id")


def complaints_due(*, user: User, within: timedelta = NEAR_DEADLINE) -> QuerySet:
    """Open complaints past or near their deadline: the user's own, or everyone's for a manager."""
    queryset = Complaint.objects.filter(status__in=OPEN_STATUSES, deadline_at__lt=timezone.now() + within)
    if not user.can(Cap.PIPELINE_MANAGE):
        queryset = queryset.filter(owner=user)
    return queryset.select_related("customer", "owner").order_by("deadline_at", "id")


# --- surveys --------------------------------------------------------------------------------------


def default_period() -> tuple[date, date]:
    return trailing_days(REPORT_DEFAULT_DAYS)


def survey_list(*, date_from: date | None = None, date_to: date | None = None, answered: bool | None = None) -> QuerySet:
    queryset = Survey.objects.select_related("customer", "trip")
    if date_from and date_to:
        start, end = day_bounds(date_from, date_to)
        queryset = queryset.filter(sent_at__gte=start, sent_at__lt=end)
    if answered is not None:
        queryset = queryset.filter(answered_at__isnull=not answered)
    return queryset


@dataclass
class SurveyReport:
    date_from: date
    date_to: date
    sent: int = 0
    answered: int = 0
    avg_csat: float | None = None
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    csat_distribution: list = field(default_factory=list)  # [(score, count, percent)]
    nps_distribution: list = field(default_factory=list)
    comments: list = field(default_factory=list)
    low_scores: list = field(default_factory=list)

    @property
    def response_rate(self) -> float | None:
        return round(100 * self.answered / self.sent, 1) if self.sent else None

    @property
    def nps(self) -> int | None:
        """Net promoter score: % promoters (9–10) − % detractors (0–6), from −100 to 100."""
        rated = self.promoters + self.passives + self.detractors
        return round(100 * (self.promoters - self.detractors) / rated) if rated else None


def survey_report(*, date_from: date, date_to: date, listed: int = 50) -> SurveyReport:
    """Surveys sent in the period (days in the agency's time zone) and how they were answered."""
    sent = survey_list(date_from=date_from, date_to=date_to)
    answered = sent.filter(answered_at__isnull=False)
    totals = sent.aggregate(
        sent=Count("id"), answered=Count("id", filter=Q(answered_at__isnull=False)),
        avg_csat=Avg("csat", filter=Q(answered_at__isnull=False)),
        promoters=Count("id", filter=Q(nps__gte=9)), passives=Count("id", filter=Q(nps__in=[7, 8])),
        detractors=Count("id", filter=Q(nps__lte=6)))
    report = SurveyReport(date_from=date_from, date_to=date_to, **{
        **totals, "avg_csat": round(totals["avg_csat"], 2) if totals["avg_csat"] is not None else None})
    csat_counts = dict(answered.order_by().values("csat").annotate(n=Count("id")).values_list("csat", "n"))
    nps_counts = dict(answered.order_by().values("nps").annotate(n=Count("id")).values_list("nps", "n"))

    def distribution(counts, scores):
        total = sum(counts.values()) or 1
        return [(score, counts.get(score, 0), round(100 * counts.get(score, 0) / total)) for score in scores]

    report.csat_distribution = distribution(csat_counts, range(1, 6))
    report.nps_distribution = distribution(nps_counts, range(0, 11))
    report.comments = list(answered.exclude(comment="").order_by("-answered_at")[:listed])
    report.low_scores = list(answered.filter(Q(csat__lte=2) | Q(nps__lte=6))
                             .annotate(complaint_count=Count("complaints")).order_by("-answered_at")[:listed])
    return report


# --- the customer card and the dashboard ----------------------------------------------------------

def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/care/_card.html)."""
    if not user.can(Cap.CUSTOMERS_VIEW):
        return {}
    complaints = list(Complaint.objects.filter(customer=customer).select_related("owner", "trip")
                      .order_by("-created_at")[:10])
    return {
        "care_open_complaints": [c for c in complaints if c.is_open],
        "care_past_complaints": [c for c in complaints if not c.is_open],
        "care_surveys": list(Survey.objects.filter(customer=customer, answered_at__isnull=False)
                             .select_related("trip").order_by("-answered_at")[:5]),
        "care_can_handle": user.can(Cap.COMPLAINTS_HANDLE),
    }


def dashboard_context(*, user) -> dict:
    """What the dashboard shows of this area (template: frontend/care/_dashboard.html)."""
    if not user.can(Cap.COMPLAINTS_HANDLE):
        return {}
    due = complaints_due(user=user)
    return {"care_due_complaints": list(due[:10]), "care_due_count": due.count(),
            "care_sees_all": user.can(Cap.PIPELINE_MANAGE)}
