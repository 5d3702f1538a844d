"""The travel-policy engine (crm/policies/engine.py), from the policy text: no database needed.

The reference policy, as an account's travel manager would write it (version 7, CNY):
- economy for everyone; premium economy from M1; business from D1; Sales may fly premium economy
  from P5; grade ≥ M3 may fly business on flights over 6 hours (360 minutes);
- lowest logical fare within ±2 h of the requested time, at most 1 stop, accepting up to 5 % or
  CNY 100 above it;
- hotels a night: tier 1 CNY 800 (M1+: 1,200; D1+: 2,000), tier 2 CNY 600 (M1+: 900), tier 3 CNY 450;
- book at least 3 days ahead; preferred airlines CA and MU, preferred chains Marriott and Hilton;
- rail instead of air under 500 km; out of policy allowed with the traveler's manager's approval.
"""
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.policies.engine import (CabinRule, FareRule, FlightOffer, HotelCap, HotelOffer, LongFlightException, Policy,
                                 Traveler, check_flight, check_hotel, city_tier, format_duration, format_money,
                                 grade_rank, money)

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
DAY = datetime(2026, 12, 10, tzinfo=SHANGHAI)
BOOKED = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
NINE = DAY.replace(hour=9)
FX = {"USD": D("7.20"), "EUR": D("7.80"), ("JPY", "CNY"): D("0.048")}


def policy(**changes) -> Policy:
    base = dict(
        version=7, currency="CNY",
        cabin_rules=[CabinRule("economy"), CabinRule("premium_economy", "M1"), CabinRule("business", "D1"),
                     CabinRule("premium_economy", "P5", departments=frozenset({"Sales"}))],
        long_flight=LongFlightException("M3", 360, "business"),
        fare_rule=FareRule("lowest_logical", window_minutes=120, max_stops=1,
                           tolerance_amount=D("100"), tolerance_percent=D("5")),
        hotel_caps=[HotelCap(1, D("800")), HotelCap(1, D("1200"), "M1"), HotelCap(1, D("2000"), "D1"),
                    HotelCap(2, D("600")), HotelCap(2, D("900"), "M1"), HotelCap(3, D("450"))],
        advance_days=3, preferred_airlines={"CA", "MU"}, preferred_hotel_chains={"Marriott", "Hilton"},
        rail_under_km=500, out_of_policy="allowed_with_approval", approvers=["traveler_manager"])
    base.update(changes)
    return Policy(**base)


def flight(number="CA1501", at="09:00", fare="1800", *, cabin="economy", minutes=130, stops=0, currency="CNY",
           km=1100, tz=SHANGHAI, day=DAY) -> FlightOffer:
    hour, minute = map(int, at.split(":"))
    departure = day.replace(hour=hour, minute=minute, tzinfo=tz)
    return FlightOffer(number[:2], (number,), "PEK", "SHA", departure, departure + timedelta(minutes=minutes),
                       minutes, stops, cabin, D(fare), currency, km)


def hotel(rate="700", city="上海", *, chain="Marriott", name="Courtyard", currency="CNY", nights=2, country=""):
    return HotelOffer(chain, name, city, nights, D(rate), currency, date(2026, 12, 10), country)


# (id, policy changes, traveler, offer, keyword arguments, compliant, failing codes, reason substring)
FLIGHT_CASES = [
    # Cabin by grade and duration
    ("economy-p2", {}, Traveler("P2"), flight(), {}, True, [], "Economy allowed for grade P2 on a 2 h 10 min flight"),
    ("business-p2-short", {}, Traveler("P2"), flight(cabin="business", fare="1800"), {}, False, ["cabin.not_allowed"],
     "Business class not allowed for grade P2 on a 2 h 10 min flight"),
    ("premium-m1", {}, Traveler("M1"), flight(cabin="premium_economy"), {}, True, [], "Premium economy allowed for grade M1"),
    ("business-m3-short", {}, Traveler("M3"), flight(cabin="business"), {}, False, ["cabin.not_allowed"],
     "(at most Premium economy)"),
    ("business-m3-over-6h", {}, Traveler("M3"), flight(cabin="business", minutes=361), {}, True, [],
     "long-flight exception over 6 h"),
    ("business-m3-exactly-6h", {}, Traveler("M3"), flight(cabin="business", minutes=360), {}, False,
     ["cabin.not_allowed"], "Business class not allowed for grade M3 on a 6 h flight"),
    ("business-m2-long", {}, Traveler("M2"), flight(cabin="business", minutes=720), {}, False, ["cabin.not_allowed"],
     "grade M2 on a 12 h flight"),
    ("business-d1", {}, Traveler("D1"), flight(cabin="business"), {}, True, [], "Business class allowed for grade D1"),
    ("first-vp-not-granted", {}, Traveler("VP1"), flight(cabin="first", minutes=800), {}, False, ["cabin.not_allowed"],
     "First class not allowed for grade VP1 on a 13 h 20 min flight (at most Business class)"),
    ("unknown-grade-economy-only", {}, Traveler("X9"), flight(cabin="premium_economy"), {}, False,
     ["cabin.not_allowed"], "grade X9"),
    ("department-sales-p5", {}, Traveler("P5", "Sales"), flight(cabin="premium_economy"), {}, True, [],
     "Premium economy allowed for grade P5"),
    ("department-sales-case-insensitive", {}, Traveler("P6", " sales "), flight(cabin="premium_economy"), {}, True, [],
     "Premium economy allowed"),
    ("department-finance-p5", {}, Traveler("P5", "Finance"), flight(cabin="premium_economy"), {}, False,
     ["cabin.not_allowed"], "Premium economy not allowed for grade P5"),
    ("department-sales-p4-below", {}, Traveler("P4", "Sales"), flight(cabin="premium_economy"), {}, False,
     ["cabin.not_allowed"], "grade P4"),
    # Fare: lowest logical within ±2 h, at most 1 stop, tolerance 5 % or CNY 100
    ("fare-lowest", {}, Traveler("P2"), flight(fare="1780"),
     {"alternatives": [flight("MU5101", "10:00", "1900")]}, True, [], "is the lowest logical fare within ±2 h"),
    ("fare-above-lowest", {}, Traveler("P2"), flight("MU5103", "09:00", "2340"),
     {"alternatives": [flight("CA1501", "08:00", "1780")]}, False, ["fare.above_lowest"],
     "Fare CNY 2,340.00 is CNY 560.00 above the lowest logical fare CNY 1,780.00 (CA1501, 08:00, within ±2 h)"),
    ("fare-within-percent", {}, Traveler("P2"), flight("MU5103", "09:00", "2560"),
     {"alternatives": [flight("CA1501", "08:00", "2440")]}, True, [], "inside the tolerance of CNY 122.00"),
    ("fare-within-amount", {}, Traveler("P2"), flight("MU5103", "09:00", "1100"),
     {"alternatives": [flight("CA1501", "08:00", "1000")]}, True, [], "inside the tolerance of CNY 100.00"),
    ("fare-just-over-amount", {}, Traveler("P2"), flight("MU5103", "09:00", "1100.01"),
     {"alternatives": [flight("CA1501", "08:00", "1000")]}, False, ["fare.above_lowest"], "CNY 100.01 above"),
    ("fare-window-edge-minus-2h", {}, Traveler("P2"), flight("MU5103", "09:00", "1800"),
     {"requested_departure": DAY.replace(hour=9), "alternatives": [flight("CA1501", "07:00", "1500")]},
     False, ["fare.above_lowest"], "(CA1501, 07:00, within ±2 h)"),
    ("fare-window-edge-plus-2h", {}, Traveler("P2"), flight("MU5103", "09:00", "1800"),
     {"requested_departure": DAY.replace(hour=9), "alternatives": [flight("CA1501", "11:00", "1500")]},
     False, ["fare.above_lowest"], "(CA1501, 11:00"),
    ("fare-window-outside", {}, Traveler("P2"), flight("MU5103", "09:00", "1800"),
     {"requested_departure": DAY.replace(hour=9), "alternatives": [flight("CA1501", "11:01", "1500")]},
     True, [], "is the lowest logical fare"),
    ("fare-window-other-time-zone", {}, Traveler("P2"), flight("MU5103", "09:00", "1800"),
     {"requested_departure": DAY.replace(hour=9),
      "alternatives": [flight("CA1501", "02:00", "1500", tz=ZoneInfo("Europe/Berlin"))]},  # 09:00 in Shanghai
     False, ["fare.above_lowest"], "CA1501, 02:00"),
    ("fare-too-many-stops", {}, Traveler("P2"), flight("MU5103", "09:00", "1800"),
     {"alternatives": [flight("CA1501", "09:30", "1200", stops=2)]}, True, [], "lowest logical"),
    ("fare-one-stop-counts", {}, Traveler("P2"), flight("MU5103", "09:00", "1800"),
     {"alternatives": [flight("CA1501", "09:30", "1200", stops=1)]}, False, ["fare.above_lowest"], "CNY 1,200.00"),
    # Issue 20: a cheaper fare in a cabin the traveler may use is the lowest logical fare of every cabin
    ("fare-cheaper-allowed-cabin-counts", {}, Traveler("M1"), flight("MU5103", "09:00", "3000", cabin="premium_economy"),
     {"alternatives": [flight("CA1501", "09:30", "1200")]}, False, ["fare.above_lowest"],
     "Fare CNY 3,000.00 is CNY 1,800.00 above the lowest logical fare CNY 1,200.00 (CA1501, 09:30, within ±2 h)"),
    ("fare-business-d1-vs-economy", {}, Traveler("D1"), flight("MU5103", "09:00", "5200", cabin="business"),
     {"alternatives": [flight("CA1501", "09:30", "1300")]}, False, ["fare.above_lowest"],
     "Fare CNY 5,200.00 is CNY 3,900.00 above the lowest logical fare CNY 1,300.00 (CA1501, 09:30"),
    ("fare-cheaper-allowed-cabin-outside-window", {}, Traveler("D1"), flight("MU5103", "09:00", "5200", cabin="business"),
     {"alternatives": [flight("CA1501", "11:01", "1300")]}, True, [], "is the lowest logical fare"),
    ("fare-cheaper-allowed-cabin-too-many-stops", {}, Traveler("D1"), flight("MU5103", "09:00", "5200", cabin="business"),
     {"alternatives": [flight("CA1501", "09:30", "1300", stops=2)]}, True, [], "is the lowest logical fare"),
    ("fare-cheaper-disallowed-cabin-ignored", {}, Traveler("M1"), flight("MU5103", "09:00", "3000", cabin="premium_economy"),
     {"alternatives": [flight("CA1501", "09:30", "1200", cabin="business")]}, True, [], "lowest logical"),
    ("fare-long-flight-cabin-counts", {}, Traveler("M3"), flight("MU5103", "09:00", "9000", cabin="first", minutes=400),
     {"alternatives": [flight("CA1501", "09:30", "6000", cabin="business", minutes=400)]}, False,
     ["cabin.not_allowed", "fare.above_lowest"], "CNY 3,000.00 above the lowest logical fare CNY 6,000.00"),
    ("best-fare-fails", {"fare_rule": FareRule("best_fare")}, Traveler("P2"), flight("MU5103", "09:00", "1800"),
     {"alternatives": [flight("CA1501", "20:00", "1500", stops=2)]}, False, ["fare.above_best"],
     "Fare CNY 1,800.00 is CNY 300.00 above the best fare CNY 1,500.00 (CA1501)"),
    ("best-fare-ignores-disallowed-cabin", {"fare_rule": FareRule("best_fare")}, Traveler("P2"),
     flight("MU5103", "09:00", "1800"), {"alternatives": [flight("CA1501", "09:00", "1500", cabin="business")]},
     True, [], "is the best available fare"),
    ("flexible", {"fare_rule": FareRule("flexible")}, Traveler("P2"), flight("MU5103", "09:00", "9800"),
     {"alternatives": [flight("CA1501", "09:00", "1500")]}, True, [], "Flexible fare rule: fare CNY 9,800.00 accepted"),
    # Currencies
    ("fx-usd-dict", {}, Traveler("P2"), flight("MU5103", "09:00", "300", currency="USD"),
     {"fx": FX, "alternatives": [flight("CA1501", "09:00", "1800")]}, False, ["fare.above_lowest"],
     "Fare CNY 2,160.00 is CNY 360.00 above"),
    ("fx-callable", {}, Traveler("P2"), flight("MU5103", "09:00", "250", currency="USD"),
     {"fx": lambda a, b: D("7.20"), "alternatives": [flight("CA1501", "09:00", "1800")]}, True, [],
     "Fare CNY 1,800.00 is the lowest"),
    ("fx-pair-key", {}, Traveler("P2"), flight("JL20", "09:00", "37500", currency="JPY"),
     {"fx": FX, "alternatives": [flight("CA1501", "09:00", "1950")]}, True, [], "Fare CNY 1,800.00"),
    ("fx-missing", {}, Traveler("P2"), flight("MU5103", "09:00", "300", currency="GBP"),
     {"fx": FX}, False, ["fx.missing"], "No exchange rate from GBP to CNY: the price GBP 300.00 cannot be judged"),
    ("fx-none-given", {}, Traveler("P2"), flight("MU5103", "09:00", "300", currency="USD"), {}, False, ["fx.missing"],
     "No exchange rate from USD to CNY"),
    ("fx-callable-raises", {}, Traveler("P2"), flight("MU5103", "09:00", "300", currency="USD"),
     {"fx": lambda a, b: {}[a]}, False, ["fx.missing"], "No exchange rate"),
    ("fx-zero-rate", {}, Traveler("P2"), flight("MU5103", "09:00", "300", currency="USD"),
     {"fx": {"USD": D("0")}}, False, ["fx.missing"], "No exchange rate"),
    ("fx-alternative-unconvertible-ignored", {}, Traveler("P2"), flight("MU5103", "09:00", "1800"),
     {"fx": FX, "alternatives": [flight("BA39", "09:00", "10", currency="GBP")]}, True, [], "lowest logical"),
    # Advance purchase: calendar days in the departure's time zone
    ("advance-3-days", {}, Traveler("P2"), flight(day=datetime(2026, 12, 4, tzinfo=SHANGHAI)),
     {"booked_at": datetime(2026, 12, 1, 23, 59, tzinfo=SHANGHAI)}, True, [], "Booked 3 days before departure"),
    ("advance-2-days", {}, Traveler("P2"), flight(day=datetime(2026, 12, 3, tzinfo=SHANGHAI)),
     {"booked_at": datetime(2026, 12, 1, 0, 1, tzinfo=SHANGHAI)}, False, ["advance.too_late"],
     "Booked 2 days before departure; the policy requires at least 3"),
    ("advance-utc-evening-is-next-day-in-shanghai", {}, Traveler("P2"), flight(day=datetime(2026, 12, 4, tzinfo=SHANGHAI)),
     {"booked_at": datetime(2026, 11, 30, 17, 0, tzinfo=ZoneInfo("UTC"))}, True, [], "Booked 3 days"),
    ("advance-utc-after-16-crosses-midnight", {}, Traveler("P2"), flight(day=datetime(2026, 12, 4, tzinfo=SHANGHAI)),
     {"booked_at": datetime(2026, 12, 1, 16, 30, tzinfo=ZoneInfo("UTC"))}, False, ["advance.too_late"], "Booked 2 days"),
    ("advance-new-york-departure", {}, Traveler("P2"),
     flight("CA981", "13:00", day=datetime(2026, 12, 4, tzinfo=NEW_YORK), tz=NEW_YORK),
     {"booked_at": datetime(2026, 12, 2, 12, 0, tzinfo=SHANGHAI)}, True, [], "Booked 3 days"),  # 23:00 on 1 Dec in NY
    ("advance-not-configured", {"advance_days": None}, Traveler("P2"), flight(day=datetime(2026, 12, 1, tzinfo=SHANGHAI)),
     {}, True, [], "Economy allowed"),
    # Preferred airlines
    ("preferred-carrier", {}, Traveler("P2"), flight("CA1501"), {}, True, [], "CA is a preferred airline"),
    ("non-preferred-with-cheaper-preferred", {}, Traveler("P2"), flight("HU7601", "09:00", "1800"),
     {"alternatives": [flight("CA1501", "09:30", "1790")]}, False, ["preferred_airline.available"],
     "HU is not a preferred airline, and a compliant flight of a preferred airline was available: CA1501 at CNY 1,790.00"),
    ("non-preferred-preferred-within-tolerance", {}, Traveler("P2"), flight("HU7601", "09:00", "1800"),
     {"alternatives": [flight("CA1501", "09:30", "1900")]}, False, ["preferred_airline.available"], "CA1501"),
    ("non-preferred-preferred-too-dear", {}, Traveler("P2"), flight("HU7601", "09:00", "1800"),
     {"alternatives": [flight("CA1501", "09:30", "1901")]}, True, [], "no compliant flight of a preferred airline"),
    ("non-preferred-preferred-not-compliant", {}, Traveler("P2"), flight("HU7601", "09:00", "1800"),
     {"alternatives": [flight("CA1501", "09:30", "1700", cabin="business")]}, True, [], "HU is not a preferred airline"),
    # Rail instead of air
    ("rail-under-threshold", {}, Traveler("P2"), flight(km=320), {}, False, ["rail.required"],
     "Rail instead of air for trips under 500 km; this flight covers 320 km"),
    ("rail-at-threshold", {}, Traveler("P2"), flight(km=500), {}, True, [], "500 km is not under"),
    ("rail-unknown-distance", {}, Traveler("P2"), flight(km=None), {}, True, [], "Distance unknown"),
    # Several failures at once
    ("several-failures", {}, Traveler("P2"), flight("HU7601", "09:00", "4000", cabin="business", km=300),
     {"alternatives": [flight("HU7603", "09:30", "3000", cabin="business")]}, False,
     ["cabin.not_allowed", "fare.above_lowest", "rail.required"], "CNY 1,000.00 above"),
]


@pytest.mark.parametrize("changes, traveler, offer, kwargs, compliant, fails, reason",
                         [c[1:] for c in FLIGHT_CASES], ids=[c[0] for c in FLIGHT_CASES])
def test_flight_policy_case(changes, traveler, offer, kwargs, compliant, fails, reason):
    kwargs = {"booked_at": BOOKED, **kwargs}
    verdict = check_flight(policy(**changes), traveler, offer, **kwargs)
    assert verdict.compliant is compliant, [r.reason for r in verdict.results]
    assert [r.code for r in verdict.failed] == fails
    assert any(reason in r.reason for r in verdict.results), [r.reason for r in verdict.results]
    assert verdict.policy_version == 7
    assert verdict.needs_approval is (not compliant)


HOTEL_CASES = [
    ("tier1-chinese-name", {}, Traveler("P5"), hotel("800", "上海"), {}, True, [],
     "Nightly rate CNY 800.00 is within the cap CNY 800.00 for grade P5 in tier-1 city 上海"),
    ("tier1-english-over", {}, Traveler("P5"), hotel("950", "Beijing"), {}, False, ["hotel_cap.over"],
     "Nightly rate CNY 950.00 is CNY 150.00 above the cap CNY 800.00 for grade P5 in tier-1 city Beijing"),
    ("tier1-iata-code", {}, Traveler("M2"), hotel("1150", "SZX"), {}, True, [], "cap CNY 1,200.00"),
    ("tier1-d1", {}, Traveler("D1"), hotel("1999.99", "广州"), {}, True, [], "cap CNY 2,000.00"),
    ("tier2-chengdu", {}, Traveler("P5"), hotel("650", "Chengdu"), {}, False, ["hotel_cap.over"], "tier-2 city Chengdu"),
    ("tier2-xian-apostrophe", {}, Traveler("M1"), hotel("900", "xi'an"), {}, True, [], "tier-2 city xi'an"),
    ("tier2-hangzhou-chinese", {}, Traveler("P5"), hotel("600", "杭州"), {}, True, [], "tier-2 city 杭州"),
    ("tier3-unlisted-chinese", {}, Traveler("P5"), hotel("460", "绵阳"), {}, False, ["hotel_cap.over"], "tier-3 city 绵阳"),
    ("tier3-unlisted-no-country", {}, Traveler("M5"), hotel("450", "Mianyang"), {}, True, [], "tier-3"),
    ("foreign-listed-tier1", {}, Traveler("P5"), hotel("100", "London", currency="GBP"), {"fx": {"GBP": D("9.10")}},
     False, ["hotel_cap.over"], "Nightly rate CNY 910.00 is CNY 110.00 above the cap CNY 800.00"),
    ("foreign-unlisted-tier2", {}, Traveler("P5"), hotel("80", "Lyon", currency="EUR", country="FR"), {"fx": FX},
     False, ["hotel_cap.over"], "CNY 624.00 is CNY 24.00 above the cap CNY 600.00 for grade P5 in tier-2 city Lyon"),
    ("hotel-fx-missing", {}, Traveler("P5"), hotel("100", "Tokyo", currency="KRW"), {"fx": FX}, False, ["fx.missing"],
     "No exchange rate from KRW to CNY"),
    ("no-cap-for-tier", {"hotel_caps": [HotelCap(1, D("800"))]}, Traveler("P5"), hotel("300", "Chengdu"), {}, False,
     ["hotel_cap.no_cap"], "No hotel cap covers grade P5 in tier-2 city Chengdu"),
    ("department-cap", {"hotel_caps": [HotelCap(1, D("800")), HotelCap(1, D("1000"), departments=frozenset({"Sales"}))]},
     Traveler("P1", "Sales"), hotel("1000", "上海"), {}, True, [], "cap CNY 1,000.00"),
    ("preferred-chain-available", {}, Traveler("P5"), hotel("700", chain="Jinjiang", name="Jinjiang Inn"),
     {"alternatives": [hotel("720", chain="Hilton", name="Hilton Hongqiao")]}, False, ["preferred_chain.available"],
     "a compliant hotel of a preferred chain was available: Hilton Hongqiao at CNY 720.00 a night"),
    ("preferred-chain-over-cap-ignored", {}, Traveler("P5"), hotel("700", chain="Jinjiang", name="Jinjiang Inn"),
     {"alternatives": [hotel("810", chain="Hilton"), hotel("900", chain="Marriott")]}, True, [],
     "Jinjiang is not a preferred hotel chain, but no compliant hotel"),
]


@pytest.mark.parametrize("changes, traveler, offer, kwargs, compliant, fails, reason",
                         [c[1:] for c in HOTEL_CASES], ids=[c[0] for c in HOTEL_CASES])
def test_hotel_policy_case(changes, traveler, offer, kwargs, compliant, fails, reason):
    verdict = check_hotel(policy(**changes), traveler, offer, booked_at=BOOKED, **kwargs)
    assert verdict.compliant is compliant, [r.reason for r in verdict.results]
    assert [r.code for r in verdict.failed] == fails
    assert any(reason in r.reason for r in verdict.results), [r.reason for r in verdict.results]


# --- Verdict as a whole ---------------------------------------------------------------------------
def test_every_configured_rule_is_listed_with_a_reason_and_params():
    verdict = check_flight(policy(), Traveler("P2"), flight(), booked_at=BOOKED)
    assert [r.rule for r in verdict.results] == ["cabin", "fare", "advance_purchase", "rail", "preferred_airline"]
    assert all(r.reason and r.code for r in verdict.results)
    assert verdict.results[0].params == {"cabin": "Economy", "grade": "P2", "duration": "2 h 10 min"}


def test_unconfigured_rules_are_not_listed():
    bare = Policy(version="2026-01")
    verdict = check_flight(bare, Traveler("P1"), flight(), booked_at=BOOKED)
    assert [r.rule for r in verdict.results] == ["cabin", "fare"]
    assert verdict.policy_version == "2026-01"


def test_cheapest_compliant_alternative_and_missed_saving():
    offer = flight("MU5103", "09:00", "2340", cabin="business")
    alternatives = [flight("CA1501", "08:00", "1780"), flight("CA1503", "10:00", "1750", stops=2),
                    flight("CA1505", "09:10", "1500", cabin="premium_economy")]
    verdict = check_flight(policy(), Traveler("P2"), offer, alternatives=alternatives, booked_at=BOOKED)
    assert not verdict.compliant and verdict.needs_approval and not verdict.forbidden
    assert verdict.approvers == ["traveler_manager"]
    # CA1503 has 2 stops, but stops only shape the logical comparison: its own fare is the lowest.
    assert verdict.cheapest_compliant.flight_numbers == ("CA1503",)
    assert verdict.missed_saving == D("590.00")


def test_a_cheaper_in_policy_economy_fare_is_proposed_for_an_allowed_business_fare():
    """Issue 20: a director may fly business, but an economy fare 30 minutes later at CNY 1,300 is the
    lowest logical fare (±2 h, ≤ 1 stop): the CNY 5,200 business fare fails the fare rule, and the
    economy flight is proposed with the saving missed. Same-cabin comparison passed it."""
    offer = flight("MU5103", "09:00", "5200", cabin="business")
    economy = flight("CA1501", "09:30", "1300")
    verdict = check_flight(policy(), Traveler("D1"), offer, alternatives=[economy], booked_at=BOOKED,
                           requested_departure=NINE)
    assert [r.code for r in verdict.failed] == ["fare.above_lowest"]
    assert verdict.results[0].code == "cabin.allowed"  # the cabin itself is granted
    assert not verdict.compliant and verdict.needs_approval
    assert verdict.cheapest_compliant is economy and verdict.missed_saving == D("3900.00")
    again = check_flight(policy(), Traveler("D1"), economy, alternatives=[offer], booked_at=BOOKED,
                         requested_departure=NINE)
    assert again.compliant


def test_compliant_offer_misses_nothing():
    verdict = check_flight(policy(), Traveler("P2"), flight(fare="1800"),
                           alternatives=[flight("CA1503", "09:10", "1750")], booked_at=BOOKED)
    assert verdict.compliant and verdict.missed_saving == D("0.00") and verdict.approvers == []


def test_forbidden_out_of_policy():
    verdict = check_flight(policy(out_of_policy="forbidden", approvers=["travel_manager"]), Traveler("P2"),
                           flight(cabin="business"), booked_at=BOOKED)
    assert verdict.forbidden and not verdict.needs_approval and verdict.approvers == []


def test_hotel_missed_saving_counts_every_night():
    verdict = check_hotel(policy(), Traveler("P5"), hotel("950", nights=3),
                          alternatives=[hotel("780", name="Courtyard Pudong"), hotel("500", chain="Hilton", name="Hampton")],
                          booked_at=BOOKED)
    assert verdict.cheapest_compliant.property_name == "Hampton"
    assert verdict.missed_saving == D("1350.00")


def test_versions_are_carried():
    for version in (1, 2, "v3"):
        assert check_hotel(policy(version=version), Traveler("P1"), hotel(), booked_at=BOOKED).policy_version == version


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        check_flight(policy(), Traveler("P1"), flight(), booked_at=datetime(2026, 12, 1))


def test_bad_policies_are_refused_where_built():
    for changes in ({"cabin_rules": [CabinRule("luxury")]}, {"cabin_rules": [CabinRule("economy", "Q3")]},
                    {"fare_rule": FareRule("cheapest")}, {"out_of_policy": "maybe"}, {"approvers": ["ceo"]},
                    {"hotel_caps": [HotelCap(4, D("100"))]}):
        with pytest.raises(ValueError):
            policy(**changes)


def test_grades_money_durations_and_city_tiers():
    assert grade_rank("P9") < grade_rank("M1") < grade_rank("M10") < grade_rank("D1") < grade_rank("E1")
    assert grade_rank("vp2") == grade_rank("E2")
    assert money("2.345") == D("2.35") and money("-2.345") == D("-2.35")
    assert format_money(D("1234.5"), "CNY") == "CNY 1,234.50"
    assert [format_duration(m) for m in (130, 360, 45, 0)] == ["2 h 10 min", "6 h", "45 min", "0 min"]
    assert city_tier("BJS") == city_tier("北京") == city_tier("beijing") == 1
    assert city_tier("Hong Kong") == city_tier("TYO") == 1
    assert city_tier("Wuhan") == city_tier("长沙") == 2
    assert city_tier("Lyon", "FR") == 2 and city_tier("Mianyang", "CN") == 3


# --- Properties: the monotonic rules ----------------------------------------------------------------
GRADES = [f"{band}{n}" for band in ("P", "M", "D", "E") for n in range(1, 10)]
amounts = st.decimals(min_value=D("1"), max_value=D("20000"), places=2)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(rate=amounts, cap=amounts, raise_by=amounts, grade=st.sampled_from(GRADES),
       city=st.sampled_from(["上海", "Chengdu", "Mianyang", "LON"]))
def test_raising_a_hotel_cap_never_turns_a_pass_into_a_fail(rate, cap, raise_by, grade, city):
    def passes(c):
        caps = [HotelCap(t, c) for t in (1, 2, 3)]
        verdict = check_hotel(policy(hotel_caps=caps), Traveler(grade), hotel(rate, city), booked_at=BOOKED)
        return next(r for r in verdict.results if r.rule == "hotel_cap").passed
    assert not passes(cap) or passes(cap + raise_by)


@PROPERTY
@given(low=st.sampled_from(GRADES), high=st.sampled_from(GRADES), minutes=st.integers(30, 900),
       cabin=st.sampled_from(["economy", "premium_economy", "business", "first"]),
       department=st.sampled_from(["", "Sales", "Finance"]))
def test_a_higher_grade_never_loses_a_cabin(low, high, minutes, cabin, department):
    if grade_rank(low) > grade_rank(high):
        low, high = high, low
    offer = flight(cabin=cabin, minutes=minutes)

    def passes(grade):
        verdict = check_flight(policy(), Traveler(grade, department), offer, booked_at=BOOKED)
        return verdict.results[0].passed
    assert not passes(low) or passes(high)


@PROPERTY
@given(fare=amounts, cut=amounts, alt_fares=st.lists(amounts, max_size=6),
       kind=st.sampled_from(["lowest_logical", "best_fare", "flexible"]),
       percent=st.sampled_from([D(0), D(5)]), amount=st.sampled_from([D(0), D(100)]))
def test_lowering_the_fare_never_turns_a_fare_pass_into_a_fail(fare, cut, alt_fares, kind, percent, amount):
    fare_rule = FareRule(kind, tolerance_percent=percent, tolerance_amount=amount)
    alternatives = [flight(f"CA{1500 + i}", f"{8 + i}:00", f) for i, f in enumerate(alt_fares)]

    def passes(f):
        verdict = check_flight(policy(fare_rule=fare_rule), Traveler("P3"), flight("MU5103", "09:00", f),
                               alternatives=alternatives, booked_at=BOOKED)
        return next(r for r in verdict.results if r.rule == "fare").passed
    lower = max(D("0.01"), fare - cut)
    assert not passes(fare) or passes(lower)


offers = st.builds(lambda n, h, fare, cabin, stops, km, carrier: flight(f"{carrier}{n}", f"{h}:00", fare, cabin=cabin,
                                                                        stops=stops, km=km),
                   st.integers(100, 9999), st.integers(5, 13), amounts,
                   st.sampled_from(["economy", "premium_economy", "business"]), st.integers(0, 2),
                   st.sampled_from([300, 800, 2000]), st.sampled_from(["CA", "MU", "HU", "ZH"]))


@PROPERTY
@given(offer=offers, alternatives=st.lists(offers, max_size=8), more=st.lists(offers, max_size=8),
       grade=st.sampled_from(GRADES))
def test_missed_saving_is_never_negative(offer, alternatives, more, grade):
    for alts in (alternatives, alternatives + more):
        verdict = check_flight(policy(), Traveler(grade), offer, alternatives=alts, booked_at=BOOKED,
                               requested_departure=NINE)
        assert verdict.missed_saving >= 0
        if verdict.compliant:
            assert verdict.missed_saving == 0 and verdict.cheapest_compliant is not None
        if verdict.cheapest_compliant is not None and verdict.cheapest_compliant is not offer:
            again = check_flight(policy(), Traveler(grade), verdict.cheapest_compliant,
                                 alternatives=[offer, *alts], booked_at=BOOKED, requested_departure=NINE)
            assert again.compliant


def test_replacing_an_offer_keeps_the_verdict_pure():
    offer = flight()
    first = check_flight(policy(), Traveler("P2"), offer, booked_at=BOOKED)
    second = check_flight(policy(), Traveler("P2"), replace(offer), booked_at=BOOKED)
    assert first == second


def test_engine_imports_without_django():
    """The engine is plain Python (ARCHITECTURE): importing it, with caravan.money, loads no Django or Celery."""
    import subprocess
    import sys

    code = ("import sys; import crm.policies.engine; "
            "bad = [m for m in ('django', 'celery') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
