"""Travel-policy check in-process: checks per second against a 30-rule policy.

    .venv/bin/python -m infra.devenv bench policy_engine    # or run this file with PYTHONPATH=.

Judges (1) one flight offer with 20 alternatives and (2) one hotel offer with 20 alternatives,
both for a traveler whose offer breaks some rules (so every rule and the cheapest compliant
alternative are worked out), against a policy of 30 rules: 10 cabin rules, a long-flight
exception, a fare rule, 14 hotel caps, advance purchase, preferred airlines and hotel chains,
and rail under a distance. No Django, no database. Target: a single check well under 1 ms.
BENCH_SECONDS sets how long each part runs (default 2).
"""
import os
import platform
import random
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm.policies.engine import (CabinRule, FareRule, FlightOffer, HotelCap, HotelOffer,  # noqa: E402
                                 LongFlightException, Policy, Traveler, check_flight, check_hotel)

SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))
TZ = ZoneInfo("Asia/Shanghai")


def thirty_rule_policy() -> Policy:
    cabin_rules = [CabinRule("economy")] + [
        CabinRule(cabin, grade, departments=frozenset({dept}) if dept else None)
        for cabin, grade, dept in [("premium_economy", "M1", None), ("business", "D1", None),
                                   ("first", "E1", None), ("premium_economy", "P5", "Sales"),
                                   ("premium_economy", "P7", "Engineering"), ("business", "M4", "Sales"),
                                   ("business", "M5", None), ("premium_economy", "P9", None),
                                   ("first", "D5", "Board")]]
    caps = [HotelCap(tier, Decimal(amount), grade) for tier, amount, grade in [
        (1, "800", None), (1, "1000", "P7"), (1, "1200", "M1"), (1, "1600", "M4"), (1, "2000", "D1"),
        (2, "600", None), (2, "750", "P7"), (2, "900", "M1"), (2, "1200", "M4"), (2, "1500", "D1"),
        (3, "450", None), (3, "600", "M1"), (3, "800", "M4"), (3, "1000", "D1")]]
    return Policy(version=12, currency="CNY", cabin_rules=cabin_rules,
                  long_flight=LongFlightException("M3", 360, "business"),
                  fare_rule=FareRule("lowest_logical", window_minutes=120, max_stops=1,
                                     tolerance_amount=Decimal("100"), tolerance_percent=Decimal("5")),
                  hotel_caps=caps, advance_days=3, preferred_airlines={"CA", "MU", "CZ"},
                  preferred_hotel_chains={"Marriott", "Hilton", "IHG"}, rail_under_km=500,
                  out_of_policy="allowed_with_approval", approvers=["traveler_manager", "travel_manager"])


def flights(rng: random.Random, n: int) -> list[FlightOffer]:
    day = datetime(2026, 12, 10, tzinfo=TZ)
    out = []
    for i in range(n):
        departure = day + timedelta(hours=6 + rng.random() * 8)
        minutes = rng.choice([130, 135, 150, 180])
        out.append(FlightOffer(rng.choice(["CA", "MU", "CZ", "HU", "ZH", "3U"]), (f"XX{1000 + i}",), "PEK", "SHA",
                               departure, departure + timedelta(minutes=minutes), minutes, rng.choice([0, 0, 1, 2]),
                               rng.choice(["economy", "economy", "premium_economy", "business"]),
                               Decimal(rng.randrange(90000, 400000)) / 100, rng.choice(["CNY", "CNY", "USD"]), 1100))
    return out


def hotels(rng: random.Random, n: int) -> list[HotelOffer]:
    return [HotelOffer(rng.choice(["Marriott", "Hilton", "IHG", "Jinjiang", "Atour"]), f"Hotel {i}",
                       rng.choice(["上海", "SHA", "Shanghai"]), 3, Decimal(rng.randrange(40000, 150000)) / 100,
                       rng.choice(["CNY", "CNY", "USD"]), date(2026, 12, 10)) for i in range(n)]


def rate(fn) -> tuple[float, int]:
    """Checks per second of ``fn`` over about SECONDS, and how many ran."""
    fn()  # warm up
    count, start = 0, time.perf_counter()
    deadline = start + SECONDS
    while True:
        for _ in range(100):
            fn()
        count += 100
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start), count


def main() -> int:
    rng = random.Random(42)
    policy = thirty_rule_policy()
    traveler = Traveler("P6", "Sales")
    fx = {"USD": Decimal("7.20")}
    booked_at = datetime(2026, 12, 1, 9, 30, tzinfo=TZ)
    offer = FlightOffer("HU", ("HU7601",), "PEK", "SHA", datetime(2026, 12, 10, 9, 0, tzinfo=TZ),
                        datetime(2026, 12, 10, 11, 10, tzinfo=TZ), 130, 0, "business", Decimal("3980"), "CNY", 1100)
    alternatives = flights(rng, 20)
    stay = HotelOffer("Jinjiang", "Jinjiang Metropolo", "上海", 3, Decimal("1280"), "CNY", date(2026, 12, 10))
    hotel_alternatives = hotels(rng, 20)

    flight_verdict = check_flight(policy, traveler, offer, requested_departure=offer.departure,
                                  alternatives=alternatives, booked_at=booked_at, fx=fx)
    hotel_verdict = check_hotel(policy, traveler, stay, alternatives=hotel_alternatives, booked_at=booked_at, fx=fx)
    rule_count = (len(policy.cabin_rules) + 1 + 1 + len(policy.hotel_caps) + 4)
    print(f"Policy engine, in-process · Python {platform.python_version()} · {rule_count}-rule policy")
    for label, verdict in (("flight", flight_verdict), ("hotel", hotel_verdict)):
        failed = ", ".join(r.code for r in verdict.failed) or "none"
        cheapest = verdict.cheapest_compliant.label if verdict.cheapest_compliant else "none"
        print(f"  {label}: {len(verdict.results)} rules listed, failed: {failed}; cheapest compliant {cheapest}, "
              f"missed saving {verdict.currency} {verdict.missed_saving:,.2f}")

    rows = [
        ("flight offer + 20 alternatives", lambda: check_flight(
            policy, traveler, offer, requested_departure=offer.departure, alternatives=alternatives,
            booked_at=booked_at, fx=fx)),
        ("flight offer alone", lambda: check_flight(policy, traveler, offer, booked_at=booked_at, fx=fx)),
        ("hotel offer + 20 alternatives", lambda: check_hotel(
            policy, traveler, stay, alternatives=hotel_alternatives, booked_at=booked_at, fx=fx)),
        ("hotel offer alone", lambda: check_hotel(policy, traveler, stay, booked_at=booked_at, fx=fx)),
    ]
    worst = 0.0
    for label, fn in rows:
        per_second, count = rate(fn)
        micros = 1e6 / per_second
        worst = max(worst, micros)
        print(f"  {label:32} {per_second:>10,.0f} checks/s   {micros:8.1f} µs/check   ({count:,} checks)")
    verdict = "PASS" if worst < 1000 else "FAIL"
    print(f"  slowest single check {worst:.1f} µs (target well under 1 ms): {verdict}")
    return 0 if worst < 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
