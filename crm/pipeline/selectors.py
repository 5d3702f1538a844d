"""Pipeline reads: the board, lists, the managers' report with conversion rates, tasks, and what the
customer card and the dashboard show (R-SALE-2, R-SALE-6)."""
from datetime import date, datetime, time, timedelta

from django.db.models import Count, F, Q, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from accounts.models import User
from accounts.roles import Cap

from .models import Opportunity, Stage, StageChange, Task

BOARD_CARDS = 50  # cards shown per column; counts and values are over all of them


def opportunities(*, owner: User | None = None, everyone: bool = False, stage=None, source: str = "",
                  key: bool | None = None, created_from: date | None = None, created_to: date | None = None,
                  unassigned: bool = False, q: str = ""):
    """Opportunities by the list's filters: one person's (``owner``), or ``everyone``'s, or the unowned leads."""
    qs = Opportunity.objects.select_related("customer", "stage", "owner")
    if unassigned:
        qs = qs.filter(owner__isnull=True)
    elif not everyone:
        qs = qs.filter(owner=owner)
    if stage is not None:
        qs = qs.filter(stage=stage)
    if source:
        qs = qs.filter(source=source)
    if key is not None:
        qs = qs.filter(is_key=key)
    if created_from:
        qs = qs.filter(created_at__date__gte=created_from)
    if created_to:
        qs = qs.filter(created_at__date__lte=created_to)
    if q:
        qs = qs.filter(Q(title__icontains=q) | Q(destination__icontains=q) | Q(customer__name__icontains=q))
    return qs


def board(*, owner: User | None, everyone: bool = False, cards: int = BOARD_CARDS) -> list[dict]:
    """One column per active stage: count and value over all of it, and its ``cards`` most recently
    moved cards. Closed stages (won, lost) show the last 30 days only. Five small queries whatever
    the number of stages: the stages, the totals, the cards' ids (ranked per stage by a window
    function), the cards, and which of them have overdue tasks."""
    stages = list(Stage.objects.filter(is_active=True))
    base = Opportunity.objects.all() if everyone else Opportunity.objects.filter(owner=owner)
    since = timezone.now() - timedelta(days=30)
    base = base.filter(Q(closed_at__isnull=True) | Q(closed_at__gte=since), stage__in=stages)
    totals = {row["stage"]: row for row in base.values("stage").annotate(n=Count("pk"), value=Sum("value"))}
    # Rank on the opportunity table alone, then join customers and owners for the cards shown only.
    shown = (base.annotate(rank=Window(RowNumber(), partition_by=F("stage_id"),
                                       order_by=[F("stage_changed_at").desc(), F("pk").desc()]))
             .filter(rank__lte=cards).values_list("pk", flat=True))
    ranked = list(Opportunity.objects.filter(pk__in=list(shown)).select_related("customer", "owner")
                  .only("pk", "title", "destination", "value", "currency", "is_key", "stage_changed_at", "depart_on",
                        "stage_id", "customer__name", "customer__kind", "owner__full_name", "owner__email")
                  .order_by("-stage_changed_at", "-pk"))
    # Overdue work for the cards shown only (a subquery per row would run over the whole pipeline).
    overdue = set(Task.objects.filter(opportunity__in=[o.pk for o in ranked], done_at__isnull=True,
                                      due_at__lt=timezone.now()).values_list("opportunity_id", flat=True))
    by_stage: dict[int, list] = {}
    for item in ranked:
        item.has_overdue = item.pk in overdue
        by_stage.setdefault(item.stage_id, []).append(item)
    return [{"stage": stage, "count": totals.get(stage.pk, {}).get("n", 0),
             "value": totals.get(stage.pk, {}).get("value") or 0, "items": by_stage.get(stage.pk, [])}
            for stage in stages]


def leads_waiting(limit: int = 20):
    """Unowned leads in open stages, oldest first (they have waited longest)."""
    return (Opportunity.objects.filter(owner__isnull=True, closed_at__isnull=True).select_related("customer", "stage")
            .order_by("created_at", "pk")[:limit])


def conversion(*, start: date, end: date, owner: User | None = None) -> dict:
    """Of the opportunities created from ``start`` to ``end`` (inclusive): how many reached each
    stage (by the stage history, so a deal that skipped a stage is not counted there), the win
    rate among those closed, and the lost reasons. Two aggregate queries."""
    cohort = Opportunity.objects.filter(created_at__date__gte=start, created_at__date__lte=end)
    if owner is not None:
        cohort = cohort.filter(owner=owner)
    total = cohort.count()
    reached = dict(StageChange.objects.filter(opportunity__in=cohort).values("to_stage")
                   .annotate(n=Count("opportunity", distinct=True)).values_list("to_stage", "n"))
    stages = list(Stage.objects.all())
    rows = [{"stage": s, "reached": reached.get(s.pk, 0),
             "rate": (reached.get(s.pk, 0) / total * 100) if total else 0} for s in stages]
    won = cohort.filter(stage__kind=Stage.Kind.WON).count()
    lost = cohort.filter(stage__kind=Stage.Kind.LOST).count()
    reasons = list(cohort.filter(stage__kind=Stage.Kind.LOST).values("lost_reason").annotate(n=Count("pk")).order_by("-n"))
    labels = dict(Opportunity.LostReason.choices)
    return {"start": start, "end": end, "total": total, "stages": rows, "won": won, "lost": lost,
            "win_rate": (won / (won + lost) * 100) if (won + lost) else None,
            "won_value": cohort.filter(stage__kind=Stage.Kind.WON).aggregate(v=Sum("value"))["v"] or 0,
            "lost_reasons": [{"reason": r["lost_reason"], "label": labels.get(r["lost_reason"], r["lost_reason"]),
                              "count": r["n"]} for r in reasons]}


def by_salesperson() -> list[dict]:
    """For the manager: per colleague, open and key opportunities, open value, overdue tasks."""
    now = timezone.now()
    people = (User.objects.filter(is_active=True, is_operator=False)
              .annotate(open=Count("opportunities", filter=Q(opportunities__closed_at__isnull=True), distinct=True),
                        key=Count("opportunities", filter=Q(opportunities__closed_at__isnull=True, opportunities__is_key=True),
                                  distinct=True),
                        value=Sum("opportunities__value", filter=Q(opportunities__closed_at__isnull=True)))
              .order_by("full_name", "email"))
    overdue = dict(Task.objects.filter(done_at__isnull=True, due_at__lt=now).values("owner")
                   .annotate(n=Count("pk")).values_list("owner", "n"))
    rows = [{"user": u, "open": u.open, "key": u.key, "value": u.value or 0, "overdue": overdue.get(u.pk, 0)}
            for u in people if u.can(Cap.PIPELINE_WORK)]
    return [r for r in rows if r["open"] or r["overdue"]]


def tasks_for(*, user: User, everyone: bool = False, done: bool = False):
    qs = Task.objects.select_related("customer", "opportunity", "trip", "owner")
    qs = qs.filter(done_at__isnull=not done)
    if not everyone:
        qs = qs.filter(owner=user)
    return qs.order_by("-done_at" if done else "due_at", "pk")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/pipeline/_card.html)."""
    if not user.can(Cap.PIPELINE_WORK):
        return {}
    return {"card_opportunities": list(Opportunity.objects.filter(customer=customer).select_related("stage", "owner")[:20]),
            "card_tasks": list(Task.objects.filter(customer=customer, done_at__isnull=True).select_related("owner")[:20]),
            "now": timezone.now()}


def dashboard_context(*, user) -> dict:
    """What the dashboard shows of this area (template: frontend/pipeline/_dashboard.html)."""
    if not user.can(Cap.PIPELINE_WORK):
        return {}
    now = timezone.now()
    _start, end_of_today = day_bounds(timezone.localdate())
    mine = Task.objects.filter(owner=user, done_at__isnull=True)
    context = {
        "my_overdue_tasks": list(mine.filter(due_at__lt=now).select_related("customer")[:10]),
        "my_today_tasks": list(mine.filter(due_at__gte=now, due_at__lt=end_of_today).select_related("customer")[:10]),
        "my_open_opportunities": Opportunity.objects.filter(owner=user, closed_at__isnull=True).count(),
        "leads_waiting": Opportunity.objects.filter(owner__isnull=True, closed_at__isnull=True).count(),
    }
    if user.can(Cap.PIPELINE_MANAGE):
        context["team_overdue_tasks"] = Task.objects.filter(done_at__isnull=True, due_at__lt=now).count()
    return context


def overdue_by_owner() -> list[dict]:
    """For the manager's task list: how many open tasks are past due, per person (most first)."""
    return list(Task.objects.filter(done_at__isnull=True, due_at__lt=timezone.now())
                .values("owner", "owner__full_name", "owner__email").annotate(n=Count("pk")).order_by("-n", "owner"))
