"""Test data for the policy tests (no tests here). Rows are written inside ``tenant_context``.

The reference policy follows tests/test_policy_engine.py: economy for everyone, premium economy from
M1, business from D1, business from M3 on flights over 6 hours; lowest logical fare within ±2 h, at
most 1 stop, tolerance CNY 100 or 5 %; hotel caps tier 1 CNY 800 (M1+: 1,200), tier 2 600, tier 3
450; out of policy allowed with the traveler's manager's approval.
"""
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import User
from crm.customers import services as crm_services
from crm.customers.models import ChangeLog, Customer, Employment
from crm.policies import services
from crm.trips.models import ItineraryItem, Traveler, Trip

RULES = {
    "cabin_rules": [{"max_cabin": "economy"}, {"max_cabin": "premium_economy", "min_grade": "M1"},
                    {"max_cabin": "business", "min_grade": "D1"}],
    "long_flight": {"min_grade": "M3", "over_minutes": 360, "cabin": "business"},
    "fare_rule": {"kind": "lowest_logical", "window_minutes": 120, "max_stops": 1, "tolerance_amount": "100",
                  "tolerance_percent": "5"},
    "hotel_caps": [{"city_tier": 1, "nightly_cap": "800"}, {"city_tier": 1, "nightly_cap": "1200", "min_grade": "M1"},
                   {"city_tier": 2, "nightly_cap": "600"}, {"city_tier": 3, "nightly_cap": "450"}],
    "out_of_policy": "allowed_with_approval", "approvers": ["traveler_manager"],
}


def user(agency, role: str) -> User:
    return User.objects.get(email=f"{role}@{agency.slug}.test")


def person(name: str, *, email: str | None = None, language: str = "en") -> Customer:
    return crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=name, kind=Customer.Kind.PERSON,
                                        language=language, emails=[email] if email else [])


def company(name: str = "华为差旅 Acme Corp") -> Customer:
    return crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=name, kind=Customer.Kind.COMPANY)


def employ(account: Customer, who: Customer, *, grade: str = "P2", department: str = "Sales",
           reports_to: Customer | None = None) -> Employment:
    return crm_services.employment_set(actor=None, company=account, person=who, job_grade=grade,
                                       department=department, reports_to=reports_to)


def policy(account: Customer, *, rules: dict | None = None, actor: User | None = None, effective_from=None, **changes):
    return services.policy_save(actor=actor, account=account, rules={**RULES, **(rules or {})}, currency="CNY",
                                effective_from=effective_from or timezone.now() - timedelta(days=30), **changes)


def setup_account(agency, *, manager_email: str | None = "boss@acme.example.cn", rules: dict | None = None):
    """An account with a policy, a P2 traveler (Sales) reporting to an M3 manager with an e-mail."""
    account = company()
    boss = person("李经理 Manager Li", email=manager_email)
    traveler = person("王芳 Wang Fang", email=f"wang-{agency.slug}@acme.example.cn")
    employ(account, boss, grade="M3", department="Sales")
    employ(account, traveler, grade="P2", department="Sales", reports_to=boss)
    version = policy(account, rules=rules)
    return account, boss, traveler, version


def trip_with_items(account: Customer, traveler: Customer, *, owner: User | None = None, days_ahead: int = 20):
    """A trip of the account with the traveler, a flight item and a hotel item."""
    start = timezone.localdate() + timedelta(days=days_ahead)
    trip = Trip.objects.create(customer=account, title="深圳出差 Shenzhen visit", destination="深圳", currency="CNY",
                               depart_on=start, return_on=start + timedelta(days=2), owner=owner)
    Traveler.objects.create(trip=trip, customer=traveler, company=account, is_lead=True)
    flight = ItineraryItem.objects.create(trip=trip, kind="flight", description="CA1301 北京–深圳", starts_on=start,
                                          sell=Decimal("2600.00"), cost=Decimal("2400.00"),
                                          details={"carrier": "CA", "number": "1301", "from_airport": "PEK",
                                                   "to_airport": "SZX"})
    hotel = ItineraryItem.objects.create(trip=trip, kind="hotel", description="深圳福田香格里拉", supplier="Shangri-La",
                                         starts_on=start, ends_on=start + timedelta(days=2), sell=Decimal("2000.00"))
    return trip, flight, hotel


def flight_offer(*, cabin: str = "economy", fare: str = "1500", at=None, minutes: int = 190, number: str = "CA1301",
                 currency: str = "CNY") -> dict:
    at = at or (timezone.now() + timedelta(days=20)).replace(hour=9, minute=0, second=0, microsecond=0)
    return {"carrier": number[:2], "flight_numbers": [number], "origin": "PEK", "destination": "SZX",
            "departure": at.isoformat(), "duration_minutes": minutes, "stops": 0, "cabin": cabin, "fare": fare,
            "currency": currency}


def hotel_offer(*, rate: str = "700", city: str = "深圳", chain: str = "Shangri-La", nights: int = 2,
                name: str = "深圳福田香格里拉", currency: str = "CNY") -> dict:
    return {"chain": chain, "property_name": name, "city": city, "nights": nights, "nightly_rate": rate,
            "currency": currency, "check_in": (timezone.localdate() + timedelta(days=20)).isoformat()}
