"""Reads for crm.loyalty: occasions and the greeting log, holiday suggestions, win-back cases and
their outcome, referrals and top referrers, the customer card and the Care hub."""
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from django.db.models import Count, Max, Q, QuerySet, Sum

from accounts.models import User
from accounts.roles import Cap
from crm.customers.models import Customer

from .models import Greeting, Occasion, Referral, Suggestion, WinBack
from .services import agency_today, can_manage_occasions, can_work, pending_greetings
from .services.common import local_moment

REPORT_DEFAULT_DAYS = 365


def _owner_filter(qs: QuerySet, owner: str, user: User, path: str = "customer__owner") -> QuerySet:
    """``owner``: "" (everyone), "me", "none" or a user id."""
    if owner == "me":
        return qs.filter(**{path: user})
    if owner == "none":
        return qs.filter(**{f"{path}__isnull": True})
    if owner.isdigit():
        return qs.filter(**{f"{path}_id": int(owner)})
    return qs


# --- occasions and greetings ----------------------------------------------------------------------

def occasion_list() -> QuerySet:
    return (Occasion.objects.annotate(greeted=Count("greetings"), last_greeted=Max("greetings__created_at"))
            .order_by(*Occasion._meta.ordering, "pk"))


def greeting_log(*, occasion: Occasion | None = None, channel: str = "", date_from: date | None = None,
                 date_to: date | None = None, customer: Customer | None = None) -> QuerySet:
    qs = Greeting.objects.select_related("customer", "occasion", "task__owner")
    if occasion is not None:
        qs = qs.filter(occasion=occasion)
    if channel in Greeting.Channel.values:
        qs = qs.filter(channel=channel)
    if date_from:
        qs = qs.filter(created_at__gte=local_moment(date_from, time.min))
    if date_to:
        qs = qs.filter(created_at__lt=local_moment(date_to + timedelta(days=1), time.min))
    if customer is not None:
        qs = qs.filter(customer=customer)
    return qs


def greeting_counts(qs: QuerySet) -> list[dict]:
    """Per occasion: greetings, e-mails sent, e-mails not (yet) sent, tasks made."""
    wants_email = Q(channel__in=[Greeting.Channel.EMAIL, Greeting.Channel.BOTH])
    rows = (qs.order_by().values("occasion_id", "occasion__name")
            .annotate(total=Count("pk"), emailed=Count("pk", filter=wants_email & Q(sent_at__isnull=False)),
                      unsent=Count("pk", filter=wants_email & Q(sent_at__isnull=True)),
                      tasks=Count("pk", filter=Q(channel__in=[Greeting.Channel.TASK, Greeting.Channel.BOTH])))
            .order_by("occasion__name"))
    return [{"occasion_id": r["occasion_id"], "name": r["occasion__name"], "total": r["total"],
             "emailed": r["emailed"], "unsent": r["unsent"], "tasks": r["tasks"]} for r in rows]


def default_period() -> tuple[date, date]:
    today = agency_today()
    return today - timedelta(days=REPORT_DEFAULT_DAYS), today


# --- suggestions ----------------------------------------------------------------------------------

def suggestion_list(*, user: User, status: str = Suggestion.Status.OPEN, festival: str = "", owner: str = "",
                    customer: Customer | None = None) -> QuerySet:
    qs = Suggestion.objects.filter(customer__merged_into__isnull=True).select_related(
        "customer__owner", "last_trip", "opportunity", "closed_by")
    if status in Suggestion.Status.values:
        qs = qs.filter(status=status)
    if festival:
        qs = qs.filter(festival=festival)
    if customer is not None:
        qs = qs.filter(customer=customer)
    return _owner_filter(qs, owner, user)


# --- win-back -------------------------------------------------------------------------------------

def win_back_list(*, user: User, status: str = "", why: str = "", reason: str = "", owner: str = "",
                  customer: Customer | None = None) -> QuerySet:
    qs = WinBack.objects.filter(customer__merged_into__isnull=True).select_related(
        "customer__owner", "won_trip", "offered_by", "closed_by", "reason_recorded_by")
    if status == "active":
        qs = qs.filter(status__in=WinBack.OPEN_STATUSES)
    elif status in WinBack.Status.values:
        qs = qs.filter(status=status)
    if why in WinBack.Why.values:
        qs = qs.filter(why=why)
    if reason == "none":
        qs = qs.filter(reason="")
    elif reason in WinBack.Reason.values:
        qs = qs.filter(reason=reason)
    if customer is not None:
        qs = qs.filter(customer=customer)
    return _owner_filter(qs, owner, user)


@dataclass
class WinBackSummary:
    open: int = 0
    offered: int = 0
    won_back: int = 0
    lost: int = 0
    won_back_share: float | None = None  # of the cases closed
    offer_value: object = None
    by_reason: list = field(default_factory=list)


def win_back_summary(qs: QuerySet | None = None) -> WinBackSummary:
    """Cases by status, the share won back of those closed, the value offered, cases by reason."""
    qs = WinBack.objects.filter(customer__merged_into__isnull=True) if qs is None else qs
    counts = qs.order_by().aggregate(
        open=Count("pk", filter=Q(status=WinBack.Status.OPEN)), offered=Count("pk", filter=Q(status=WinBack.Status.OFFERED)),
        won_back=Count("pk", filter=Q(status=WinBack.Status.WON_BACK)), lost=Count("pk", filter=Q(status=WinBack.Status.LOST)),
        offer_value=Sum("offer_value"))
    summary = WinBackSummary(**counts)
    closed = summary.won_back + summary.lost
    summary.won_back_share = summary.won_back / closed if closed else None
    labels = dict(WinBack.Reason.choices)
    rows = qs.order_by().exclude(reason="").values("reason").annotate(
        cases=Count("pk"), won_back=Count("pk", filter=Q(status=WinBack.Status.WON_BACK))).order_by("-cases")
    summary.by_reason = [{"reason": r["reason"], "label": labels.get(r["reason"], r["reason"]), "cases": r["cases"],
                          "won_back": r["won_back"]} for r in rows]
    return summary


# --- referrals ------------------------------------------------------------------------------------

def referral_list(*, status: str = "", referrer: Customer | None = None) -> QuerySet:
    qs = Referral.objects.filter(referrer__merged_into__isnull=True, referred__merged_into__isnull=True).select_related(
        "referrer__owner", "referred", "qualifying_trip", "recorded_by", "rewarded_by")
    if status in Referral.Status.values:
        qs = qs.filter(status=status)
    if referrer is not None:
        qs = qs.filter(referrer=referrer)
    return qs


def top_referrers(*, limit: int = 20) -> list[dict]:
    """Customers by the number of customers they referred (and of those, how many travelled)."""
    rows = (referral_list().order_by().values("referrer_id", "referrer__name")
            .annotate(referred=Count("pk"), travelled=Count("pk", filter=~Q(status=Referral.Status.PENDING)),
                      rewarded=Count("pk", filter=Q(status=Referral.Status.REWARDED)),
                      reward_value=Sum("reward_value"))
            .order_by("-referred", "-travelled", "referrer__name")[:limit])
    return [{"id": r["referrer_id"], "name": r["referrer__name"], "referred": r["referred"],
             "travelled": r["travelled"], "rewarded": r["rewarded"], "reward_value": r["reward_value"]} for r in rows]


def referral_counts() -> dict:
    return referral_list().order_by().aggregate(
        total=Count("pk"), pending=Count("pk", filter=Q(status=Referral.Status.PENDING)),
        qualified=Count("pk", filter=Q(status=Referral.Status.QUALIFIED)),
        rewarded=Count("pk", filter=Q(status=Referral.Status.REWARDED)))


# --- the customer card, the hub -------------------------------------------------------------------

def card_context(*, customer, user) -> dict:
    """What the customer card shows of care automation (template: frontend/loyalty/_card.html)."""
    if not user.can(Cap.CUSTOMERS_VIEW):
        return {}
    referred_by = Referral.objects.filter(referred=customer).select_related("referrer").first()
    made = list(Referral.objects.filter(referrer=customer).select_related("referred").order_by("-recorded_at"))
    cases = list(WinBack.objects.filter(customer=customer).select_related("won_trip")[:3])
    suggestions = list(Suggestion.objects.filter(customer=customer, status=Suggestion.Status.OPEN))
    greetings = list(Greeting.objects.filter(customer=customer).select_related("occasion")[:5])
    return {
        "loyalty_card": True, "loyalty_referred_by": referred_by, "loyalty_referrals": made,
        "loyalty_case": cases[0] if cases else None, "loyalty_past_cases": cases[1:],
        "loyalty_suggestions": suggestions, "loyalty_greetings": greetings,
        "loyalty_can_work": can_work(user) and not customer.merged_into_id,
        "loyalty_reasons": WinBack.Reason.choices,
    }


def hub_context(*, user) -> dict:
    today = agency_today()
    year_start = today.replace(month=1, day=1)
    this_year = greeting_log(date_from=year_start, date_to=today)
    return {
        "occasions": occasion_list().filter(active=True), "can_manage": can_manage_occasions(user),
        "can_work": can_work(user),
        "greeted_this_year": this_year.count(),
        "emailed_this_year": this_year.filter(sent_at__isnull=False).count(),
        "unsent": pending_greetings().count(),
        "suggestions_open": suggestion_list(user=user).count(),
        "win_back": win_back_summary(), "referrals": referral_counts(),
    }


def dashboard_context(*, user) -> dict:
    """For the dashboard (template: frontend/loyalty/_dashboard.html): one's open win-back cases,
    holiday suggestions and rewards due for one's customers."""
    if not can_work(user):
        return {}
    cases = win_back_list(user=user, status="active", owner="me")
    suggestions = suggestion_list(user=user, owner="me")
    rewards = referral_list(status=Referral.Status.QUALIFIED).filter(referrer__owner=user)
    counts = {"loyalty_cases": cases.count(), "loyalty_suggestions": suggestions.count(),
              "loyalty_rewards": rewards.count()}
    return counts if any(counts.values()) else {}
