"""Demo travel policies for `make run`: the largest demo companies get a policy (two versions, so
the history shows a change), managers for their travelers, a USD rate, and a trip each whose flight
and hotel were checked: some in policy, some out of it with an approval (decided or pending)."""
import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo
from decimal import Decimal

from django.db import transaction
from django.db.models import Count
from django.utils import timezone, translation
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.roles import Role
from crm.customers import services as crm_services
from crm.customers.models import Customer, Employment
from crm.trips import services as trip_services

from . import engine, services
from .models import Approval, ExchangeRate, TravelPolicy

RULES = {
    "cabin_rules": [{"max_cabin": "economy"}, {"max_cabin": "premium_economy", "min_grade": "M1"},
                    {"max_cabin": "business", "min_grade": "M4"},
                    {"max_cabin": "premium_economy", "min_grade": "P5", "departments": ["销售部"]}],
    "long_flight": {"min_grade": "M2", "over_minutes": 360, "cabin": "business"},
    "fare_rule": {"kind": "lowest_logical", "window_minutes": 120, "max_stops": 1, "tolerance_amount": "100",
                  "tolerance_percent": "5"},
    "hotel_caps": [{"city_tier": 1, "nightly_cap": "700"}, {"city_tier": 1, "nightly_cap": "1100", "min_grade": "M1"},
                   {"city_tier": 2, "nightly_cap": "500"}, {"city_tier": 2, "nightly_cap": "800", "min_grade": "M1"},
                   {"city_tier": 3, "nightly_cap": "400"}],
    "advance_days": 3, "preferred_airlines": ["CA", "MU"], "preferred_hotel_chains": ["Marriott", "Hilton"],
    "rail_under_km": 500, "out_of_policy": "allowed_with_approval", "approvers": ["traveler_manager", "travel_manager"],
}


def _rank(link: Employment):
    try:
        return engine.grade_rank(link.job_grade)
    except ValueError:
        return (-1, 0)


def seed_policies(agency, *, accounts: int = 3, rng_seed: int = 11) -> dict:
    """Idempotent: an agency that has travel policies is left alone. Returns counts."""
    with tenant_context(agency), translation.override(agency.language), transaction.atomic():
        if TravelPolicy.objects.exists():
            return {"policies": 0, "checks": 0, "approvals": 0}
        rng = random.Random(rng_seed)
        sellers = list(User.objects.filter(is_active=True, role__in=[Role.SALES, Role.MANAGER]).order_by("pk"))
        deciders = list(User.objects.filter(is_active=True, role__in=[Role.ADMIN, Role.MANAGER]).order_by("pk"))
        if not sellers or not deciders:
            return {"policies": 0, "checks": 0, "approvals": 0}
        if agency.currency != "USD" and not ExchangeRate.objects.filter(currency="USD").exists():
            services.exchange_rate_set(actor=deciders[0], currency="USD", rate="7.2")
        companies = list(Customer.objects.filter(kind=Customer.Kind.COMPANY, merged_into__isnull=True)
                         .annotate(people=Count("staff_links")).filter(people__gte=3).order_by("-people", "pk")[:accounts])
        now = timezone.now()
        counts = {"policies": 0, "checks": 0, "approvals": 0}
        for n, company in enumerate(companies):
            links = sorted(Employment.objects.filter(company=company, active=True).select_related("person"),
                           key=_rank, reverse=True)
            boss, travelers = links[0], links[1:]
            for link in travelers:  # everyone reports to the most senior person of the account
                crm_services.employment_set(actor=None, company=company, person=link.person,
                                            reports_to=boss.person)
            v1 = dict(RULES, hotel_caps=[dict(c, nightly_cap=str(Decimal(c["nightly_cap"]) - 100))
                                         for c in RULES["hotel_caps"]])
            services.policy_save(actor=deciders[0], account=company, rules=v1, currency=agency.currency,
                                 travel_manager=boss.person, effective_from=now - timedelta(days=180),
                                 note="首版差旅政策 First policy")
            services.policy_save(actor=deciders[0], account=company, rules=RULES, currency=agency.currency,
                                 travel_manager=boss.person, effective_from=now - timedelta(days=60),
                                 note="酒店限额上调 100 Hotel caps raised by 100")
            counts["policies"] += 1
            owner = sellers[n % len(sellers)]
            for m, link in enumerate(travelers[:2]):
                counts["checks"] += _checked_trip(agency, company, link.person, owner, rng, m)
        for i, approval in enumerate(Approval.objects.filter(status=Approval.Status.PENDING).order_by("pk")):
            if i % 3 == 0:  # some decided, most still waiting
                services.approval_decide(approval=approval, decision=Approval.Status.APPROVED,
                                         comment="客户会议，同意 Client meeting, approved",
                                         actor=next(d for d in deciders if d.pk != approval.requested_by_id)
                                         if len(deciders) > 1 else deciders[0])
        counts["approvals"] = Approval.objects.count()
        return counts


def _checked_trip(agency, company, traveler, owner, rng, m: int) -> int:
    """A trip of the account for the traveler, its flight and hotel checked. Returns the checks made."""
    start = timezone.localdate() + timedelta(days=10 + 7 * m)
    city, destination = rng.choice([("上海", "SHA"), ("深圳", "SZX"), ("成都", "CTU")])
    trip = trip_services.trip_create(actor=owner, customer=company, title=f"{city}出差 · {traveler.name}",
                                     destination=city, depart_on=start, return_on=start + timedelta(days=2), owner=owner)
    trip_services.traveler_add(actor=owner, trip=trip, customer=traveler, company=company, is_lead=True)
    fare = Decimal(rng.randint(12, 30) * 100)
    flight = trip_services.item_add(actor=owner, trip=trip, kind="flight", description=f"CA1{rng.randint(100, 999)} 北京–{city}",
                                    starts_on=start, cost=fare - 150, sell=fare,
                                    details={"carrier": "CA", "number": "1501", "from_airport": "PEK",
                                             "to_airport": destination})
    hotel = trip_services.item_add(actor=owner, trip=trip, kind="hotel", description=f"{city}万豪酒店 Marriott",
                                   supplier="Marriott", starts_on=start, ends_on=start + timedelta(days=2),
                                   cost=Decimal("1400"), sell=Decimal("1600"))
    departure = datetime.combine(start, time(9), tzinfo=ZoneInfo(agency.time_zone))
    cabin = "business" if m == 0 else "economy"
    offer = {"flight_numbers": "CA1501", "origin": "PEK", "destination": destination, "departure": departure,
             "duration_minutes": 170, "stops": 0, "cabin": cabin, "fare": str(fare), "currency": trip.currency,
             "distance_km": 1100}
    cheaper = [{**offer, "flight_numbers": "MU5101", "cabin": "economy", "fare": str(fare * Decimal("0.55")),
                "departure": departure + timedelta(minutes=45)}]
    booked = timezone.now() - timedelta(days=rng.randint(1, 20))
    services.booking_check_record(actor=owner, item=flight, traveler=traveler, offer=offer, alternatives=cheaper,
                                  booked_at=booked)
    services.booking_check_record(
        actor=owner, item=hotel, traveler=traveler, booked_at=booked,
        offer={"chain": "Marriott", "property_name": hotel.description, "city": city, "nights": 2,
               "nightly_rate": str(Decimal("800") if m == 0 else Decimal("380")), "currency": trip.currency},
        alternatives=[{"chain": "Hilton", "property_name": "希尔顿欢朋 Hampton", "city": city, "nights": 2,
                       "nightly_rate": "360", "currency": trip.currency}])
    return 2
