"""Reads for crm.policies: what pages, the API and jobs show."""
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import User
from accounts.roles import Cap
from crm.customers.models import Customer, Employment

from crm.customers.periods import day_bounds, trailing_days
from . import documents, engine, messages
from .models import Approval, BookingCheck, ExchangeRate, PolicyVersion, TravelPolicy

REPORT_DEFAULT_DAYS = 90


# --- policies and versions ------------------------------------------------------------------------

def policy_in_force(account: Customer, at: datetime) -> PolicyVersion | None:
    """The version of the account's policy in force at ``at`` (booking time): the latest one whose
    ``effective_from`` is not after it."""
    return (PolicyVersion.objects.filter(policy__account=account, effective_from__lte=at)
            .select_related("travel_manager").order_by("-effective_from", "-number").first())


_CHECK_SQL = """
    SELECT v.id, v.policy_id, v.number, v.effective_from, v.rules, v.currency, v.travel_manager_id,
           e.job_grade, e.department, e.active,
           (SELECT coalesce(json_object_agg(r.currency, r.rate::text), '{{}}') FROM {rates} r)
    FROM {versions} v
    JOIN {policies} p ON p.id = v.policy_id
    LEFT JOIN {employment} e ON e.company_id = p.account_id AND e.person_id = %s
    WHERE p.account_id = %s AND v.effective_from <= %s
    ORDER BY v.effective_from DESC, v.number DESC
    LIMIT 1"""


@dataclass
class CheckContext:
    version: PolicyVersion
    employment: tuple[str, str, bool] | None  # (grade, department, active) of the traveler at the account
    rates: dict[str, Decimal]  # to the agency's currency


def check_context(*, account: Customer, traveler: Customer | None, at: datetime) -> CheckContext | None:
    """What a check needs, in one round trip: the version in force at ``at`` (as
    :func:`policy_in_force`), the traveler's employment at the account and the exchange rates.
    None when no version is in force."""
    sql = _CHECK_SQL.format(rates=ExchangeRate._meta.db_table, versions=PolicyVersion._meta.db_table,
                            policies=TravelPolicy._meta.db_table, employment=Employment._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [traveler.pk if traveler else None, account.pk, at])
        row = cursor.fetchone()
    if row is None:
        return None
    rules = row[4] if isinstance(row[4], dict) else json.loads(row[4])
    version = PolicyVersion(id=row[0], policy_id=row[1], number=row[2], effective_from=row[3], rules=rules,
                            currency=row[5], travel_manager_id=row[6])
    rates = row[10] if isinstance(row[10], dict) else json.loads(row[10])
    return CheckContext(version=version, employment=None if row[9] is None else (row[7], row[8], row[9]),
                        rates={code: Decimal(rate) for code, rate in rates.items()})


def latest_version(account: Customer) -> PolicyVersion | None:
    """The newest version (possibly in force only from a future date)."""
    return (PolicyVersion.objects.filter(policy__account=account).select_related("travel_manager", "created_by")
            .order_by("-number").first())


@dataclass
class VersionRow:
    version: PolicyVersion
    changes: list  # [(key, label, old, new)]
    in_force: bool


def version_history(account: Customer) -> list[VersionRow]:
    """Every version, newest first, each with what changed from the one before it."""
    versions = list(PolicyVersion.objects.filter(policy__account=account)
                    .select_related("travel_manager", "created_by").order_by("number"))
    current = policy_in_force(account, timezone.now())
    rows, previous = [], None
    for v in versions:
        changed = documents.changes(previous.rules if previous else None, v.rules)
        if previous and previous.currency != v.currency:
            changed.append(("currency", previous.currency, v.currency))
        if previous and previous.travel_manager_id != v.travel_manager_id:
            changed.append(("travel_manager", previous.travel_manager, v.travel_manager))
        changed = [(key, messages.CHANGE_LABELS.get(key, key), old, new) for key, old, new in changed]
        rows.append(VersionRow(v, changed, current is not None and current.pk == v.pk))
        previous = v
    return rows[::-1]


def account_people(account: Customer) -> QuerySet:
    """The account's people (active employment), with grade, department and manager."""
    return (Employment.objects.filter(company=account, active=True).select_related("person", "reports_to")
            .order_by("person__name"))


def summary(version: PolicyVersion) -> dict:
    """Key rules of a version, display-ready (the card and the policy page)."""
    rules = version.rules
    return {
        "cabins": [(messages.CABIN_LABELS[r["max_cabin"]], r.get("min_grade"), r.get("departments"))
                   for r in rules.get("cabin_rules", [])],
        "long_flight": rules.get("long_flight"),
        "long_flight_cabin": messages.CABIN_LABELS[rules["long_flight"]["cabin"]] if rules.get("long_flight") else "",
        "long_flight_over": engine.format_duration(rules["long_flight"]["over_minutes"]) if rules.get("long_flight") else "",
        "fare_rule": rules.get("fare_rule", {}),
        "hotel_caps": sorted(rules.get("hotel_caps", []), key=lambda c: (c["city_tier"], Decimal(c["nightly_cap"]))),
        "rule_count": documents.rule_count(rules),
    }


# --- checks ---------------------------------------------------------------------------------------

def explained(results: list[dict]) -> list[dict]:
    """Stored or fresh rule results with their label and reason in the active language."""
    return [{**r, "label": messages.rule_label(r["rule"]), "reason": messages.reason(r["code"], r["params"])}
            for r in results]


def failed_reasons(check: BookingCheck) -> list[str]:
    return [messages.reason(r["code"], r["params"]) for r in check.results if not r["passed"]]


def booking_checks(*, account: Customer | None = None, trip=None) -> QuerySet:
    queryset = BookingCheck.objects.select_related("trip", "item", "account", "traveler", "version", "checked_by",
                                                   "approval")
    if account is not None:
        queryset = queryset.filter(account=account)
    if trip is not None:
        queryset = queryset.filter(trip=trip)
    return queryset


def approval_queryset() -> QuerySet:
    return Approval.objects.select_related("booking_check", "booking_check__item", "booking_check__version",
                                           "trip", "trip__owner", "trip__customer", "account", "traveler", "approver",
                                           "requested_by", "decided_by", "decided_by_person")


def approvals_for(*, user: User, status: str = "", account=None) -> QuerySet:
    """Approvals a user may see: all of them for policy managers, else those they asked for or whose
    trip they own. Pending first, newest first."""
    queryset = approval_queryset()
    if not user.can(Cap.POLICIES_MANAGE):
        queryset = queryset.filter(Q(requested_by=user) | Q(trip__owner=user))
    if status in Approval.Status.values:
        queryset = queryset.filter(status=status)
    if account is not None:
        queryset = queryset.filter(account=account)
    return queryset.order_by("-requested_at", "-id")


def pending_for_me(*, user: User) -> QuerySet:
    """Pending approvals this user may decide (policy managers, not their own requests)."""
    if not user.can(Cap.POLICIES_MANAGE):
        return Approval.objects.none()
    return (approval_queryset().filter(status=Approval.Status.PENDING).exclude(requested_by=user)
            .order_by("requested_at", "id"))


def exchange_rates() -> QuerySet:
    return ExchangeRate.objects.select_related("updated_by")


# --- trip page ------------------------------------------------------------------------------------

def trip_context(*, trip, user) -> dict:
    """What the trip page shows of policies: current checks with their approvals."""
    checks = list(booking_checks(trip=trip).filter(is_current=True)
                  .select_related("approval__decided_by", "approval__decided_by_person")
                  .order_by("item_id", "traveler__name"))
    for check in checks:
        check.approval_row = getattr(check, "approval", None)  # None: no approval was needed
        check.reasons = failed_reasons(check)
    return {"policy_checks": checks, "policy_can_check": user.can(Cap.PIPELINE_WORK),
            "policy_checkable": {"flight", "hotel"}}


def item_initial(item) -> dict:
    """Offer fields pre-filled from a trip item and its details."""
    details = item.details or {}
    trip = item.trip
    if item.kind == "flight":
        departure = ""
        if item.starts_on:
            departure = f"{item.starts_on.isoformat()}T{details.get('departure_time', '09:00')}"
        number = details.get("number", "")
        if number and not number[:2].isalpha():  # "1501" on a CA item is CA1501
            number = details.get("carrier", "") + number
        return {"carrier": details.get("carrier", ""), "flight_numbers": number,
            "origin": details.get("from_airport", ""), "destination": details.get("to_airport", ""),
            "departure": departure, "duration_minutes": details.get("duration_minutes", ""),
            "stops": details.get("stops", 0), "cabin": details.get("cabin", ""), "fare": item.sell,
            "currency": trip.currency, "distance_km": details.get("distance_km", "")}
    nights = (item.ends_on - item.starts_on).days if item.starts_on and item.ends_on else 1
    nights = max(nights, 1)
    return {"chain": details.get("chain", item.supplier), "property_name": item.description,
            "city": details.get("city", trip.destination), "country": details.get("country", ""), "nights": nights,
            "nightly_rate": (item.sell / nights).quantize(Decimal("0.01")) if item.sell else "",
            "currency": trip.currency, "check_in": item.starts_on.isoformat() if item.starts_on else ""}


# --- the compliance and savings report ------------------------------------------------------------


def default_period() -> tuple[date, date]:
    return trailing_days(REPORT_DEFAULT_DAYS)


@dataclass
class ComplianceReport:
    account: Customer
    date_from: date
    date_to: date
    currency: str = ""
    checked: int = 0
    compliant: int = 0
    missed_savings: Decimal = Decimal("0.00")
    reasons: list = field(default_factory=list)  # [(code, label, count)]
    approvals: dict = field(default_factory=dict)  # {status: count}
    trips: list = field(default_factory=list)  # [{trip_id, title, reference, checked, paid, within_policy, saving}]
    currencies: list = field(default_factory=list)

    @property
    def compliance_rate(self) -> float | None:
        return round(100 * self.compliant / self.checked, 1) if self.checked else None

    @property
    def paid(self) -> Decimal:
        return sum((t["paid"] for t in self.trips), Decimal("0.00"))

    @property
    def within_policy(self) -> Decimal:
        return sum((t["within_policy"] for t in self.trips), Decimal("0.00"))

    @property
    def proposed_saving(self) -> Decimal:
        return self.paid - self.within_policy


_REASONS_SQL = """
    SELECT code, count(*) FROM {table}, unnest(failed_codes) AS code
    WHERE account_id = %s AND is_current AND checked_at >= %s AND checked_at < %s
    GROUP BY code ORDER BY count(*) DESC, code"""


def compliance_report(*, account: Customer, date_from: date, date_to: date) -> ComplianceReport:
    """The account's current booking checks made in the period (days in the agency's time zone):
    share in policy, exception reasons, missed savings, approval outcomes, and per trip what was
    paid against the same trips priced within policy (the cheapest compliant alternative where one
    was known, else the booking itself)."""
    start, end = day_bounds(date_from, date_to)
    checks = BookingCheck.objects.filter(account=account, is_current=True, checked_at__gte=start, checked_at__lt=end)
    report = ComplianceReport(account=account, date_from=date_from, date_to=date_to)
    totals = checks.aggregate(checked=Count("id"), compliant=Count("id", filter=Q(compliant=True)),
                              missed=Sum("missed_saving"))
    report.checked, report.compliant = totals["checked"], totals["compliant"]
    report.missed_savings = totals["missed"] or Decimal("0.00")
    report.currencies = sorted(set(checks.values_list("currency", flat=True).distinct()))
    report.currency = report.currencies[0] if len(report.currencies) == 1 else ", ".join(report.currencies)
    with connection.cursor() as cursor:
        cursor.execute(_REASONS_SQL.format(table=BookingCheck._meta.db_table), [account.pk, start, end])
        report.reasons = [(code, messages.code_label(code), n) for code, n in cursor.fetchall()]
    report.approvals = {status: 0 for status in Approval.Status.values}
    report.approvals.update(dict(Approval.objects.filter(booking_check__in=checks).order_by()
                                 .values("status").annotate(n=Count("id")).values_list("status", "n")))
    rows = (checks.order_by().values("trip_id", "trip__title")
            .annotate(n=Count("id"), paid=Sum("price"),
                      cheapest=Sum("cheapest_price", filter=Q(cheapest_price__isnull=False)),
                      paid_with_cheapest=Sum("price", filter=Q(cheapest_price__isnull=False)))
            .order_by("trip__title", "trip_id"))
    for row in rows:
        paid = row["paid"] or Decimal("0.00")
        # Within policy: the cheapest compliant price where one is known, else what was paid.
        within = (row["cheapest"] or Decimal("0.00")) + paid - (row["paid_with_cheapest"] or Decimal("0.00"))
        within = min(within, paid)
        report.trips.append({"trip_id": row["trip_id"], "title": row["trip__title"], "reference": f"T{row['trip_id']:06d}",
                             "checked": row["n"], "paid": paid, "within_policy": within, "saving": paid - within})
    return report


# --- the customer card and the dashboard ----------------------------------------------------------

def card_context(*, customer, user) -> dict:
    """What the customer card shows of this area (template: frontend/policies/_card.html)."""
    if not user.can(Cap.CUSTOMERS_VIEW):
        return {}
    if customer.kind == Customer.Kind.COMPANY:
        version = policy_in_force(customer, timezone.now())
        latest = latest_version(customer)
        return {
            "policy_card": True, "policy_version": version, "policy_latest": latest,
            "policy_summary": summary(version) if version else None,
            "policy_can_manage": user.can(Cap.POLICIES_MANAGE),
            "policy_can_check": user.can(Cap.PIPELINE_WORK),
            "policy_pending": Approval.objects.filter(account=customer, status=Approval.Status.PENDING).count(),
        }
    approvals = list(Approval.objects.filter(traveler=customer).select_related("trip", "account")
                     .order_by("-requested_at")[:5])
    if not approvals:
        return {}
    return {"policy_card": True, "policy_person_approvals": approvals,
            "policy_can_manage": user.can(Cap.POLICIES_MANAGE)}


def dashboard_context(*, user) -> dict:
    """What the dashboard shows of this area (template: frontend/policies/_dashboard.html)."""
    if not user.can(Cap.POLICIES_MANAGE):
        return {}
    pending = pending_for_me(user=user)
    return {"policy_pending": list(pending[:10]), "policy_pending_count": pending.count()}
