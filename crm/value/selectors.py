"""Reads for crm.value: the customer card, the value dashboard and its exports, the warning list.

Every figure is a set-based query over ``CustomerValue`` (one row per customer, written nightly by
``services.value_run``) or the trips themselves, so the dashboard costs a handful of statements."""
import re
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.roles import Cap
from caravan.db.replica import replica_report
from crm.customers.list_filters import ListFilter

from .models import CustomerValue, LifetimeFit, ValueSettings, ValueWarning

# The scale × loyalty quadrants of the seeds (000, 004) and what to do with each.
STRATEGIES = {
    CustomerValue.Quadrant.LARGE_HIGH: _(
        "Keep them: the most profitable customers and the best advertisement. Plan their trips with them, offer "
        "the products they like, add value, stay in touch after each trip, invite them to events and visit them."),
    CustomerValue.Quadrant.SMALL_HIGH: _(
        "Grow them: loyal and eager for new routes. Member benefits (discounts, free extras, gifts, priority "
        "booking) within a budget, products that fit, service beyond expectations, to move them to large scale."),
    CustomerValue.Quadrant.LARGE_LOW: _(
        "Win their loyalty: big but unstable. Sample and call them, collect feedback, strengthen the brand and "
        "the service quality so they come to trust us."),
    CustomerValue.Quadrant.SMALL_LOW: _(
        "Maintain at low cost: costly to serve and little margin. Meet their general needs with standard "
        "products; no targeted development."),
}
SEGMENT_HINTS = {
    CustomerValue.Segment.MOST_VALUABLE: _("Recent, frequent and profitable: protect them."),
    CustomerValue.Segment.GROWTH: _("Recent and promising: develop them."),
    CustomerValue.Segment.DECLINING: _("Were valuable, recency slipping: act before they leave."),
    CustomerValue.Segment.LOW: _("Little value so far: serve efficiently."),
}


def in_quadrants(quadrants, *, via: str = "value__") -> Q:
    """The one rule for "in one of these scale × loyalty quadrants", for the customer list, the segment
    filter and the dashboard (``via=""`` on ``CustomerValue`` itself).

    A customer is in a quadrant only when the value run scored them (a confirmed trip in the RFM
    window); ``services.value_run`` writes no quadrant otherwise, so a plain match on the column
    selects the same customers everywhere (docs/customer-value.md)."""
    return Q(**{f"{via}quadrant__in": list(quadrants)})


RFM_PATTERN = re.compile(r"[1-5*]{3}")  # the customer list's rfm filter: "5*5" is recency 5, any frequency, monetary 5


def _by_segment(customers, segment):
    return customers.filter(value__segment=segment)


def _by_quadrant(customers, quadrant):
    return customers.filter(in_quadrants([quadrant]))


def _by_rfm(customers, pattern):
    pattern = str(pattern)
    if not RFM_PATTERN.fullmatch(pattern):
        return customers.none()
    for letter, score in zip("rfm", pattern):
        if score != "*":
            customers = customers.filter(**{f"value__{letter}_score": int(score)})
    return customers


def customer_list_filters() -> list[ListFilter]:
    """The customer list's value filters (page, API, export), registered by ValueConfig.ready()."""
    refused = _("You may not filter by customer value.")
    return [
        ListFilter("segment", "Value segment (needs value.view).", _by_segment,
                   choices=tuple(CustomerValue.Segment.choices), cap=Cap.VALUE_VIEW, refused=refused),
        ListFilter("quadrant", "Scale × loyalty quadrant (needs value.view).", _by_quadrant,
                   choices=tuple(CustomerValue.Quadrant.choices), cap=Cap.VALUE_VIEW, refused=refused),
        ListFilter("rfm", "RFM scores, each 1–5 or * for any, e.g. 5*5 (needs value.view).", _by_rfm,
                   pattern=RFM_PATTERN.pattern, cap=Cap.VALUE_VIEW, refused=refused),
    ]


def can_see_value(user) -> bool:
    return user.can(Cap.VALUE_VIEW)


def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/value/_card.html)."""
    if not can_see_value(user):
        return {}
    row = CustomerValue.objects.filter(customer=customer).first()
    return {"value_card": True, "value_row": row, "value_fit": LifetimeFit.objects.order_by("-fitted_at").first(),
            "value_rules": ValueSettings.objects.first(),
            "value_strategy": STRATEGIES.get(row.quadrant) if row else None,
            "value_warnings": list(ValueWarning.objects.filter(customer=customer, closed_at__isnull=True))}


@replica_report  # nightly figures: a streaming replica serves them when configured
def segment_summary() -> list[dict]:
    """Per segment: customers, margin and revenue to date, and each one's share of the agency's margin."""
    rows = {r["segment"]: r for r in CustomerValue.objects.values("segment").annotate(
        customers=Count("pk"), margin=Sum("margin_total"), revenue=Sum("revenue_total"))}
    total = sum((r["margin"] or Decimal(0) for r in rows.values()), Decimal(0))
    out = []
    for segment in CustomerValue.Segment:
        row = rows.get(segment.value, {"customers": 0, "margin": Decimal(0), "revenue": Decimal(0)})
        margin = row["margin"] or Decimal(0)
        out.append({"segment": segment.value, "label": segment.label, "hint": SEGMENT_HINTS[segment],
                    "customers": row["customers"], "margin": margin, "revenue": row["revenue"] or Decimal(0),
                    "margin_share": float(margin / total) if total else 0.0})
    return out


@replica_report  # nightly figures: a streaming replica serves them when configured
def quadrant_summary() -> list[dict]:
    """Per quadrant (customers who traded in the RFM window): customers, margin in the window, strategy.
    Counts what the customer list and the segment filter select for the same quadrant."""
    scored = CustomerValue.objects.filter(in_quadrants(CustomerValue.Quadrant.values, via=""),
                                          customer__merged_into__isnull=True)
    rows = {r["quadrant"]: r for r in scored.values("quadrant").annotate(customers=Count("pk"), value=Sum("monetary"))}
    return [{"quadrant": q.value, "label": q.label, "strategy": STRATEGIES[q],
             "customers": rows.get(q.value, {}).get("customers", 0),
             "value": rows.get(q.value, {}).get("value") or Decimal(0)} for q in CustomerValue.Quadrant]


def rfm_grid() -> list[list[dict]]:
    """Recency (rows, 5 first) × frequency (columns): customers and mean monetary score per cell."""
    cells = {(r["r_score"], r["f_score"]): r for r in CustomerValue.objects.filter(r_score__isnull=False).values(
        "r_score", "f_score").annotate(customers=Count("pk"), value=Sum("monetary"))}
    return [[{"r": r, "f": f, "customers": cells.get((r, f), {}).get("customers", 0),
              "value": cells.get((r, f), {}).get("value") or Decimal(0)} for f in range(1, 6)] for r in range(5, 0, -1)]


def pareto(share: float = 0.2) -> dict:
    """The 80/20 view: what share of the margin to date the top ``share`` of customers bring."""
    with connection.cursor() as cursor:
        cursor.execute(f"""
            WITH ranked AS (
                SELECT margin_total, row_number() OVER (ORDER BY margin_total DESC, customer_id) AS n,
                       count(*) OVER () AS customers
                FROM {CustomerValue._meta.db_table}
            )
            SELECT count(*), coalesce(sum(margin_total), 0),
                   count(*) FILTER (WHERE n <= ceil(customers * %s)),
                   coalesce(sum(margin_total) FILTER (WHERE n <= ceil(customers * %s)), 0)
            FROM ranked""", [share, share])
        customers, margin, top_customers, top_margin = cursor.fetchone()
    return {"customers": customers, "margin": margin, "top_customers": top_customers, "top_margin": top_margin,
            "share": float(top_margin / margin) if margin else 0.0, "top_share": share}


def trend(*, months: int = 24, today: date | None = None) -> list[dict]:
    """Revenue and margin per calendar month of confirmation, the last ``months`` months."""
    from crm.trips.models import ItineraryItem, Trip

    today = today or timezone.localdate()
    first = (today.replace(day=1) - timedelta(days=31 * (months - 1))).replace(day=1)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT date_trunc('month', coalesce(t.confirmed_at, t.created_at) AT TIME ZONE %s)::date AS month,
                   count(DISTINCT t.id), coalesce(sum(i.sell), 0), coalesce(sum(i.sell - i.cost), 0)
            FROM {Trip._meta.db_table} t LEFT JOIN {ItineraryItem._meta.db_table} i ON i.trip_id = t.id
            WHERE t.status IN ('confirmed', 'completed') AND coalesce(t.confirmed_at, t.created_at) >= %s
            GROUP BY 1 ORDER BY 1""", [timezone.get_current_timezone_name(), first])
        found = {row[0]: row[1:] for row in cursor.fetchall()}
    out, month = [], first
    while month <= today:
        trips, revenue, margin = found.get(month, (0, Decimal(0), Decimal(0)))
        out.append({"month": month, "trips": trips, "revenue": revenue, "margin": margin})
        month = (month + timedelta(days=32)).replace(day=1)
    return out


def warning_list(*, kind: str = "", owner=None, open_only: bool = True):
    rows = ValueWarning.objects.select_related("customer", "customer__owner", "task")
    if open_only:
        rows = rows.filter(closed_at__isnull=True)
    if kind:
        rows = rows.filter(kind=kind)
    if owner is not None:
        rows = rows.filter(customer__owner=owner)
    return rows.order_by("-opened_at", "id")


def warning_counts() -> dict:
    return dict(ValueWarning.objects.filter(closed_at__isnull=True).values_list("kind").annotate(n=Count("pk")))


def customers_in(*, segment: str = "", quadrant: str = ""):
    """Customers of a segment or quadrant, most valuable first (the drill-down lists and CSV)."""
    rows = CustomerValue.objects.select_related("customer", "customer__owner").filter(
        customer__merged_into__isnull=True)
    if segment:
        rows = rows.filter(segment=segment)
    if quadrant:
        rows = rows.filter(in_quadrants([quadrant], via=""))
    return rows.order_by(F("expected_value_12m").desc(nulls_last=True), "-margin_total", "customer_id")


def at_risk(limit: int = 20):
    """Repeat customers most likely to have lapsed, by value at stake."""
    return (CustomerValue.objects.select_related("customer").filter(trips_total__gte=2, p_alive__isnull=False)
            .filter(Q(segment__in=[CustomerValue.Segment.MOST_VALUABLE, CustomerValue.Segment.DECLINING,
                                   CustomerValue.Segment.GROWTH]))
            .order_by("p_alive", "-margin_total")[:limit])


def dormant(limit: int = 20):
    rules = ValueSettings.objects.first()
    days = rules.dormant_days if rules else 180
    return (CustomerValue.objects.select_related("customer").filter(
        last_trip_at__lt=timezone.now() - timedelta(days=days)).order_by("-margin_total")[:limit])


def values_for(ids) -> dict[int, CustomerValue]:
    """Customer id → value row, for a page of customers in one query (list badges)."""
    return {row.customer_id: row for row in CustomerValue.objects.filter(customer_id__in=list(ids)).only(
        "customer_id", "r_score", "f_score", "m_score", "segment", "quadrant", "late_payer")}


def dashboard_context(*, user) -> dict:
    """The home dashboard's value panel: the newest open warnings (managers: everyone's; others: their own)."""
    if not can_see_value(user):
        return {}
    everyone = user.can(Cap.PIPELINE_MANAGE) or user.can(Cap.REPORTS_VIEW)
    rows = warning_list(owner=None if everyone else user)
    return {"value_warnings_open": rows.count(), "value_warnings_recent": list(rows[:5]),
            "value_warnings_everyone": everyone}
