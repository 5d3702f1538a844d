"""Demo care automation for ``seed_demo``: the default occasions, referrals (some rewarded), win-back
cases with reasons, offers and outcomes, and holiday suggestions for the next festival.

The history a demo needs (trips at last year's festival break, customers who stopped travelling)
is written as back-dated trips; everything else goes through the services, as the daily job and
staff would do it."""
import importlib
import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone, translation
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.roles import Role
from crm.customers.festivals import FESTIVALS, festival_break
from crm.customers.models import Customer
from crm.trips.models import Trip

from . import services
from .models import Occasion, Referral, WinBack

PLACES = ["海南 三亚", "泰国 普吉岛", "日本 东京 · 京都", "云南 丽江 · 大理", "新加坡", "马尔代夫", "哈尔滨 冰雪大世界",
          "巴厘岛 Bali"]
REWARDS = ["500元旅游代金券 travel voucher", "免费接送机 free airport transfer", "酒店房型升级 room upgrade"]
OFFERS = [("九折家庭游 10% off a family trip", "800"), ("免费签证服务 free visa service", "300")]


def _ensure_default_occasions() -> None:
    if Occasion.objects.exists():
        return
    defaults = importlib.import_module("crm.loyalty.migrations.0002_default_occasions").DEFAULTS
    for fields in defaults:
        Occasion.objects.create(**fields, days_before=0, send_email=True, active=True)


def _trip(customer, destination, depart_on, days, status=Trip.Status.COMPLETED, owner=None) -> Trip:
    confirmed = timezone.now() - timedelta(days=(timezone.localdate() - depart_on).days + 30)
    return Trip.objects.create(customer=customer, title=destination, destination=destination, currency="CNY",
                               status=status, depart_on=depart_on, return_on=depart_on + timedelta(days=days),
                               confirmed_at=confirmed, completed_at=confirmed if status == Trip.Status.COMPLETED else None,
                               owner=owner)


def next_festival(today) -> tuple[str, int] | None:
    """The festival whose break starts next after ``today`` and that had a break last year."""
    ahead = []
    for key in FESTIVALS:
        for year in (today.year, today.year + 1):
            this = festival_break(key, year)
            if this and this[0] > today and festival_break(key, year - 1):
                ahead.append((this[0], key, year))
    return min(ahead)[1:] if ahead else None


def seed_loyalty(agency, *, rng_seed: int = 11) -> dict:
    """Idempotent: an agency with referrals or win-back cases is left alone. Returns counts."""
    counts = {"referrals": 0, "rewarded": 0, "win-back cases": 0, "suggestions": 0}
    with tenant_context(agency), translation.override(agency.language), timezone.override(agency.time_zone), \
            transaction.atomic():
        _ensure_default_occasions()
        if Referral.objects.exists() or WinBack.objects.exists():
            return counts
        rng = random.Random(rng_seed)
        sellers = list(User.objects.filter(is_active=True, role__in=[Role.SALES, Role.MANAGER]).order_by("pk"))
        if not sellers:
            return counts
        actor = sellers[0]
        busy = Trip.objects.values("customer_id")
        people = list(Customer.objects.filter(kind=Customer.Kind.PERSON, merged_into__isnull=True)
                      .exclude(pk__in=busy).order_by("pk")[:40])
        if len(people) < 30:
            return counts
        today = timezone.localdate()
        # Referrals: six, four of whose friends have travelled (qualified), two of them rewarded.
        pairs = [(people[2 * n], people[2 * n + 1]) for n in range(6)]
        for n, (referrer, friend) in enumerate(pairs):
            if n < 4:
                _trip(friend, rng.choice(PLACES), today - timedelta(days=rng.randint(20, 200)), rng.randint(3, 8),
                      owner=friend.owner)
            services.referral_record(actor=actor, referrer=referrer, referred=friend,
                                     note=rng.choice(["同事 colleague", "朋友 friend", "亲戚 relative", ""]))
            counts["referrals"] += 1
        for referral in Referral.objects.filter(status=Referral.Status.QUALIFIED).order_by("pk")[:2]:
            services.referral_reward(actor=actor, referral=referral, description=rng.choice(REWARDS),
                                     value=rng.choice(["200", "500"]))
            counts["rewarded"] += 1
        # Win-back: five customers who stopped travelling a year and more ago.
        lapsed = people[12:17]
        for customer in lapsed:
            for days_ago in (rng.randint(700, 900), rng.randint(400, 520)):
                _trip(customer, rng.choice(PLACES), today - timedelta(days=days_ago), rng.randint(3, 8),
                      owner=customer.owner)
        services.win_back_identify()
        cases = {case.customer_id: case for case in WinBack.objects.filter(customer__in=lapsed)}
        counts["win-back cases"] = len(cases)
        plan = [(WinBack.Reason.PRICE, "嫌价格偏高 found us expensive", True, "won"),
                (WinBack.Reason.COMPETITOR, "改用在线平台 switched to an online agency", True, ""),
                (WinBack.Reason.NOT_TRAVELLING, "家里有新生儿 a new baby at home", False, "lost"),
                (WinBack.Reason.SERVICE, "上次行程航班延误处理不满意 unhappy with a delay", False, "")]
        for customer, (reason, note, offer, outcome) in zip(lapsed, plan):
            case = cases.get(customer.pk)
            if case is None:
                continue
            services.win_back_record_reason(actor=actor, case=case, reason=reason, note=note)
            if offer:
                text, value = OFFERS[len(note) % len(OFFERS)]
                services.win_back_offer(actor=actor, case=case, offer=text, value=value)
            if outcome == "lost":
                services.win_back_lose(actor=actor, case=case)
            elif outcome == "won":
                Trip.objects.create(customer=customer, title=PLACES[0], destination=PLACES[0], currency="CNY",
                                    status=Trip.Status.CONFIRMED, depart_on=today + timedelta(days=40),
                                    return_on=today + timedelta(days=45), confirmed_at=timezone.now(),
                                    owner=customer.owner)
        services.won_back_sweep()
        # Holiday suggestions for the next festival: ten customers travelled at it last year.
        coming = next_festival(today)
        if coming is not None:
            key, year = coming
            first, last = festival_break(key, year - 1)
            for n, customer in enumerate(people[17:27]):
                _trip(customer, PLACES[n % 4], first + timedelta(days=n % 2), max(1, (last - first).days - 1),
                      owner=customer.owner)
            for n, customer in enumerate(people[27:40]):  # the agency's history the suggestions draw on
                for m in range(2):
                    _trip(customer, PLACES[(n + m * 3) % len(PLACES)], today - timedelta(days=300 + 90 * m), 5)
            counts["suggestions"] = services.festival_suggestions_make(festival=key, year=year)["suggestions"]
    return counts
