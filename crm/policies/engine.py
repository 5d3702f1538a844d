"""Corporate travel-policy engine: judge one flight or hotel offer against a policy.

Pure Python: no Django, no database, no I/O. The same rules judge a trip item, a supplier offer
and an API request; models, pages, approvals and the API build a :class:`Policy` and call
:func:`check_flight` or :func:`check_hotel`.

Every rule yields a :class:`RuleResult` with a stable ``code``, its ``params`` (display-ready
strings and numbers) and an English ``reason`` made from ``MESSAGES[code] % params``. The web layer
translates by code: the English texts use ``%(name)s`` placeholders so that they can be wrapped in
gettext unchanged.

Choices worth knowing (the policy text leaves them open):

- **Grades** order by band, then number: ``P1 < … < P9 < M1 < … < D1 < … < E1 = VP1``. An unknown
  grade ranks below every band, so it gets only what rules without a grade give (fail closed).
- **Cabin and hotel-cap rules grant.** The traveler may use the best cabin (the highest cap) of
  all rules that apply to their grade and department; with no cabin rule applying, economy. A
  department-limited rule widens what that department gets, it never narrows the general rules.
  This keeps both rules monotonic: a higher grade never loses what a lower one had.
- **Long-flight exception** applies *over* ``over_minutes``: a flight of exactly 360 minutes is not
  over 6 hours.
- **Fares** are compared in the policy currency. ``lowest_logical`` compares with the *logical*
  offers: departing within ``±window_minutes`` (inclusive) of the requested time (the offer's own
  departure when none is given), with at most ``max_stops``, and either in a cabin the traveler may
  use on that flight (a cheaper in-policy economy fare is the lowest logical fare of a business
  fare too: the policy text names a time window and stops, not a cabin) or in the judged offer's
  own cabin (like with like, so a disallowed cabin is still compared with its own fares and a
  disallowed cheaper fare never lowers an allowed one). ``best_fare`` compares with every known
  offer in a cabin the traveler may use. The tolerance is the larger of ``tolerance_amount`` and
  ``tolerance_percent`` of the lowest fare.
- **Preferences** (airlines, hotel chains) are soft: a non-preferred choice fails only when a
  preferred alternative that passes every other rule costs no more than the choice plus the
  fare tolerance. Otherwise the choice passes with a reason saying so.
- **Advance purchase** (flights only) counts calendar days between the booking date and the
  departure date, both in the departure's time zone.
- **Rail instead of air** fails when ``distance_km < rail_under_km``; an unknown distance passes.
- **Currency**: a missing or unusable exchange rate makes the money rule fail with code
  ``fx.missing``; it never raises. Alternatives whose price cannot be converted are ignored.
- Rules the policy does not configure (no advance days, no preferred airlines, no rail threshold)
  are not checked and do not appear in the results.
"""
from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal, NamedTuple

from caravan.money import CENT  # caravan.money itself imports no Django

__all__ = [
    "CABINS", "CITY_TIERS", "MESSAGES", "RULES",
    "CabinRule", "FareRule", "FlightOffer", "HotelCap", "HotelOffer", "LongFlightException", "Policy",
    "RuleResult", "Traveler", "Verdict",
    "check_flight", "check_hotel", "city_tier", "format_duration", "format_money", "grade_rank",
    "money", "rule",
]

CABINS = ("economy", "premium_economy", "business", "first")
CABIN_RANK = {c: i for i, c in enumerate(CABINS)}
CABIN_LABELS = {"economy": "Economy", "premium_economy": "Premium economy",
                "business": "Business class", "first": "First class"}
FARE_KINDS = ("lowest_logical", "best_fare", "flexible")
OUT_OF_POLICY = ("allowed_with_approval", "forbidden")
APPROVERS = ("traveler_manager", "travel_manager")

Cabin = Literal["economy", "premium_economy", "business", "first"]
FX = Callable[[str, str], Decimal] | Mapping[Any, Decimal]

# --- Messages -------------------------------------------------------------------------------------
# English, %(name)s style: the web layer translates by code (gettext can wrap these texts as they are).
MESSAGES: dict[str, str] = {
    "cabin.allowed": "%(cabin)s allowed for grade %(grade)s on a %(duration)s flight",
    "cabin.long_flight": "%(cabin)s allowed for grade %(grade)s on a %(duration)s flight (long-flight exception over %(over)s)",
    "cabin.not_allowed": "%(cabin)s not allowed for grade %(grade)s on a %(duration)s flight (at most %(allowed)s)",
    "fare.flexible": "Flexible fare rule: fare %(fare)s accepted",
    "fare.lowest": "Fare %(fare)s is the lowest logical fare within ±%(window)s",
    "fare.within_tolerance": "Fare %(fare)s is %(over)s above the lowest logical fare %(lowest)s (%(flight)s, %(time)s, within ±%(window)s), inside the tolerance of %(allowance)s",
    "fare.above_lowest": "Fare %(fare)s is %(over)s above the lowest logical fare %(lowest)s (%(flight)s, %(time)s, within ±%(window)s)",
    "fare.best": "Fare %(fare)s is the best available fare",
    "fare.best_within_tolerance": "Fare %(fare)s is %(over)s above the best fare %(lowest)s (%(flight)s), inside the tolerance of %(allowance)s",
    "fare.above_best": "Fare %(fare)s is %(over)s above the best fare %(lowest)s (%(flight)s)",
    "fx.missing": "No exchange rate from %(from_currency)s to %(to_currency)s: the price %(price)s cannot be judged",
    "advance.ok": "Booked %(days)s days before departure (at least %(minimum)s required)",
    "advance.too_late": "Booked %(days)s days before departure; the policy requires at least %(minimum)s",
    "preferred_airline.preferred": "%(carrier)s is a preferred airline",
    "preferred_airline.no_alternative": "%(carrier)s is not a preferred airline, but no compliant flight of a preferred airline was available within the fare tolerance",
    "preferred_airline.available": "%(carrier)s is not a preferred airline, and a compliant flight of a preferred airline was available: %(alternative)s at %(price)s",
    "preferred_chain.preferred": "%(chain)s is a preferred hotel chain",
    "preferred_chain.no_alternative": "%(chain)s is not a preferred hotel chain, but no compliant hotel of a preferred chain was available within the tolerance",
    "preferred_chain.available": "%(chain)s is not a preferred hotel chain, and a compliant hotel of a preferred chain was available: %(alternative)s at %(price)s a night",
    "rail.ok": "Air allowed: %(distance)s km is not under the rail threshold of %(limit)s km",
    "rail.required": "Rail instead of air for trips under %(limit)s km; this flight covers %(distance)s km",
    "rail.distance_unknown": "Distance unknown: the rail rule (under %(limit)s km) was not applied",
    "hotel_cap.ok": "Nightly rate %(rate)s is within the cap %(cap)s for grade %(grade)s in tier-%(tier)s city %(city)s",
    "hotel_cap.over": "Nightly rate %(rate)s is %(over)s above the cap %(cap)s for grade %(grade)s in tier-%(tier)s city %(city)s",
    "hotel_cap.no_cap": "No hotel cap covers grade %(grade)s in tier-%(tier)s city %(city)s",
}


# --- Money, durations, grades ---------------------------------------------------------------------
def money(amount: Decimal | int | str) -> Decimal:
    """``amount`` as a Decimal rounded to the cent, half up (never via float)."""
    if type(amount) is not Decimal:
        amount = Decimal(amount)
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def format_money(amount: Decimal, currency: str) -> str:
    """``CNY 1,234.50``."""
    return f"{currency} {money(amount):,.2f}"


def format_duration(minutes: int) -> str:
    """``2 h 10 min``, ``6 h``, ``45 min``."""
    hours, rest = divmod(int(minutes), 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


_GRADE = re.compile(r"^\s*(VP|[PMDE])\s*(\d+)\s*$", re.IGNORECASE)
GRADE_BANDS = {"P": 0, "M": 1, "D": 2, "E": 3, "VP": 3}


@lru_cache(maxsize=256)
def grade_rank(grade: str) -> tuple[int, int]:
    """Sort key of a job grade: band (P < M < D < E = VP), then number. ``ValueError`` if unknown."""
    m = _GRADE.match(grade or "")
    if not m:
        raise ValueError(f"Unknown job grade {grade!r}: expected e.g. P3, M1, D2, E1 or VP1")
    return GRADE_BANDS[m.group(1).upper()], int(m.group(2))


def _rank_or_lowest(grade: str) -> tuple[int, int]:
    try:
        return grade_rank(grade)
    except ValueError:
        return (-1, 0)


def _norm_departments(departments: Iterable[str] | None) -> frozenset[str] | None:
    return None if departments is None else frozenset(d.strip().casefold() for d in departments)


# --- City tiers -----------------------------------------------------------------------------------
def _tiers() -> dict[str, int]:
    rows = [  # (tier, IATA city code, English name(s), Chinese name)
        (1, "BJS", ("Beijing", "Peking"), "北京"), (1, "SHA", ("Shanghai",), "上海"),
        (1, "CAN", ("Guangzhou", "Canton"), "广州"), (1, "SZX", ("Shenzhen",), "深圳"),
        (2, "CTU", ("Chengdu",), "成都"), (2, "HGH", ("Hangzhou",), "杭州"), (2, "CKG", ("Chongqing",), "重庆"),
        (2, "WUH", ("Wuhan",), "武汉"), (2, "SIA", ("Xi'an", "Xian"), "西安"), (2, "SZV", ("Suzhou",), "苏州"),
        (2, "TSN", ("Tianjin",), "天津"), (2, "NKG", ("Nanjing",), "南京"), (2, "CSX", ("Changsha",), "长沙"),
        (2, "CGO", ("Zhengzhou",), "郑州"), (2, "TAO", ("Qingdao",), "青岛"), (2, "SHE", ("Shenyang",), "沈阳"),
        (2, "NGB", ("Ningbo",), "宁波"), (2, "DGM", ("Dongguan",), "东莞"), (2, "KMG", ("Kunming",), "昆明"),
        (2, "HFE", ("Hefei",), "合肥"), (2, "XMN", ("Xiamen",), "厦门"), (2, "FOC", ("Fuzhou",), "福州"),
        (2, "DLC", ("Dalian",), "大连"), (2, "HRB", ("Harbin",), "哈尔滨"), (2, "TNA", ("Jinan",), "济南"),
        (2, "FSZ", ("Foshan",), "佛山"), (2, "WUX", ("Wuxi",), "无锡"),
        (3, "ZUH", ("Zhuhai",), "珠海"), (3, "SYX", ("Sanya",), "三亚"), (3, "HAK", ("Haikou",), "海口"),
        (3, "KWL", ("Guilin",), "桂林"), (3, "LHW", ("Lanzhou",), "兰州"), (3, "URC", ("Urumqi",), "乌鲁木齐"),
        (3, "LXA", ("Lhasa",), "拉萨"), (3, "KWE", ("Guiyang",), "贵阳"), (3, "NNG", ("Nanning",), "南宁"),
        (3, "TYN", ("Taiyuan",), "太原"), (3, "SJW", ("Shijiazhuang",), "石家庄"), (3, "KHN", ("Nanchang",), "南昌"),
        (3, "CGQ", ("Changchun",), "长春"), (3, "HET", ("Hohhot",), "呼和浩特"), (3, "YNT", ("Yantai",), "烟台"),
        # Abroad: listed ones are tier 1, every other foreign city is tier 2 (see city_tier).
        (1, "TYO", ("Tokyo",), "东京"), (1, "LON", ("London",), "伦敦"), (1, "NYC", ("New York",), "纽约"),
        (1, "PAR", ("Paris",), "巴黎"), (1, "SIN", ("Singapore",), "新加坡"), (1, "HKG", ("Hong Kong",), "香港"),
        (1, "ZRH", ("Zurich",), "苏黎世"), (1, "SFO", ("San Francisco",), "旧金山"), (1, "SYD", ("Sydney",), "悉尼"),
        (2, "MFM", ("Macau", "Macao"), "澳门"), (2, "TPE", ("Taipei",), "台北"), (2, "SEL", ("Seoul",), "首尔"),
        (2, "BKK", ("Bangkok",), "曼谷"), (2, "OSA", ("Osaka",), "大阪"), (2, "FRA", ("Frankfurt",), "法兰克福"),
    ]
    table: dict[str, int] = {}
    for tier, code, names, chinese in rows:
        table[code] = tier
        table[chinese] = tier
        for name in names:
            table[name.casefold()] = tier
    return table


CITY_TIERS: dict[str, int] = _tiers()
"""City tier by IATA city code (upper case), Chinese name, or English name (case-folded)."""
CHINA_COUNTRY_CODES = frozenset({"CN", "CHN", "CHINA", "中国"})


@lru_cache(maxsize=1024)
def city_tier(city: str, country: str = "") -> int:
    """Tier (1 most expensive … 3) of a city given by IATA city code, Chinese or English name.

    Unlisted cities: tier 3 in China (a Chinese name, or ``country`` CN), tier 2 abroad (a
    ``country`` other than CN). An unlisted Latin name without a country is taken as Chinese,
    tier 3: the lowest cap, so an unknown city never raises the allowance."""
    key = (city or "").strip()
    tier = CITY_TIERS.get(key.upper()) or CITY_TIERS.get(key) or CITY_TIERS.get(key.casefold())
    if tier:
        return tier
    country = (country or "").strip().upper()
    if country and country not in CHINA_COUNTRY_CODES:
        return 2
    return 3


# --- Policy ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CabinRule:
    """Travelers of grade ≥ ``min_grade`` (any grade when None), in ``departments`` (any when None),
    may fly up to ``max_cabin``."""
    max_cabin: Cabin
    min_grade: str | None = None
    departments: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class LongFlightException:
    """Grade ≥ ``min_grade`` may fly ``cabin`` on flights longer than ``over_minutes``."""
    min_grade: str
    over_minutes: int
    cabin: Cabin
    departments: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class FareRule:
    kind: Literal["lowest_logical", "best_fare", "flexible"] = "lowest_logical"
    window_minutes: int = 120
    max_stops: int | None = None
    tolerance_amount: Decimal = Decimal("0")
    tolerance_percent: Decimal = Decimal("0")

    def allowance(self, lowest: Decimal) -> Decimal:
        """How much above ``lowest`` is still accepted: the larger of the amount and the percent."""
        return money(max(self.tolerance_amount, lowest * self.tolerance_percent / 100))


@dataclass(frozen=True, slots=True)
class HotelCap:
    """Grade ≥ ``min_grade`` (any when None) may pay up to ``nightly_cap`` a night in ``city_tier``."""
    city_tier: int
    nightly_cap: Decimal
    min_grade: str | None = None
    departments: frozenset[str] | None = None


@dataclass
class Policy:
    """One version of a corporate account's travel policy; amounts are in ``currency``."""
    version: int | str
    currency: str = "CNY"
    cabin_rules: list[CabinRule] = field(default_factory=list)
    long_flight: LongFlightException | None = None
    fare_rule: FareRule = field(default_factory=FareRule)
    hotel_caps: list[HotelCap] = field(default_factory=list)
    advance_days: int | None = None
    preferred_airlines: set[str] = field(default_factory=set)
    preferred_hotel_chains: set[str] = field(default_factory=set)
    rail_under_km: int | None = None
    out_of_policy: Literal["allowed_with_approval", "forbidden"] = "allowed_with_approval"
    approvers: list[str] = field(default_factory=lambda: ["traveler_manager"])

    def __post_init__(self):
        """Validate once, so a bad policy fails where it is built, not in the middle of a check."""
        for r in self.cabin_rules:
            _check_cabin(r.max_cabin)
        for grade in [r.min_grade for r in [*self.cabin_rules, *self.hotel_caps]] + (
                [self.long_flight.min_grade] if self.long_flight else []):
            if grade is not None:
                grade_rank(grade)
        if self.long_flight:
            _check_cabin(self.long_flight.cabin)
        if self.fare_rule.kind not in FARE_KINDS:
            raise ValueError(f"Unknown fare rule {self.fare_rule.kind!r}")
        for cap in self.hotel_caps:
            if cap.city_tier not in (1, 2, 3):
                raise ValueError(f"City tier must be 1, 2 or 3, not {cap.city_tier!r}")
        if self.out_of_policy not in OUT_OF_POLICY:
            raise ValueError(f"out_of_policy must be one of {OUT_OF_POLICY}")
        if unknown := set(self.approvers) - set(APPROVERS):
            raise ValueError(f"Unknown approvers {sorted(unknown)}")
        self.preferred_airlines = {a.strip().upper() for a in self.preferred_airlines}
        self.preferred_hotel_chains = {c.strip().casefold() for c in self.preferred_hotel_chains}


def _check_cabin(cabin: str) -> None:
    if cabin not in CABIN_RANK:
        raise ValueError(f"Unknown cabin {cabin!r}: expected one of {CABINS}")


# --- Offers and verdicts --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Traveler:
    grade: str
    department: str = ""


@dataclass(frozen=True, slots=True)
class FlightOffer:
    carrier: str
    flight_numbers: tuple[str, ...]
    origin: str
    destination: str
    departure: datetime  # aware
    arrival: datetime  # aware
    duration_minutes: int
    stops: int
    cabin: Cabin
    fare: Decimal
    currency: str
    distance_km: int | None = None

    @property
    def label(self) -> str:
        return "/".join(self.flight_numbers) or self.carrier

    @property
    def price(self) -> Decimal:
        return self.fare


@dataclass(frozen=True, slots=True)
class HotelOffer:
    chain: str
    property_name: str
    city: str
    nights: int
    nightly_rate: Decimal
    currency: str
    check_in: date
    country: str = ""  # ISO code; only consulted for cities not in CITY_TIERS

    @property
    def label(self) -> str:
        return self.property_name

    @property
    def price(self) -> Decimal:
        return self.nightly_rate


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: str
    passed: bool
    code: str
    params: dict[str, Any]
    reason: str


@dataclass(frozen=True)
class Verdict:
    compliant: bool
    results: list[RuleResult]
    cheapest_compliant: FlightOffer | HotelOffer | None
    missed_saving: Decimal
    needs_approval: bool
    forbidden: bool
    approvers: list[str]
    policy_version: int | str
    currency: str

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if not r.passed]


# --- Rule registry --------------------------------------------------------------------------------
class Outcome(NamedTuple):
    """What a rule function returns; ``params`` values render with ``str()`` into the message."""
    passed: bool
    code: str
    params: dict[str, Any]


class _Money(NamedTuple):
    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


class _Minutes(int):
    def __str__(self) -> str:
        return format_duration(self)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    name: str
    kind: Literal["flight", "hotel"]
    stage: int
    fn: Callable[[Any, Any], Outcome | None]


RULES: list[RuleSpec] = []
"""Every rule, in the order results are listed. Stage 1 rules judge an offer on its own (with the
known fares); stage 2 rules (preferences) may look at which alternatives pass stage 1."""


def rule(name: str, kind: Literal["flight", "hotel"], *, stage: int = 1):
    """Register ``fn(ctx, offer) -> Outcome | None`` (None: the policy does not configure the rule)."""
    def register(fn):
        RULES.append(RuleSpec(name, kind, stage, fn))
        return fn
    return register


# --- Context: what a check computes once for the offer and all its alternatives -------------------
class _FxMissing(Exception):
    pass


def _rate(fx: FX | None, source: str, target: str) -> Decimal:
    if source == target:
        return Decimal(1)
    try:
        if fx is None:
            raise _FxMissing
        if callable(fx):
            rate = fx(source, target)
        else:
            rate = fx.get((source, target))
            if rate is None:
                rate = fx.get(source)
        rate = Decimal(rate)
    except (_FxMissing, LookupError, TypeError, ValueError, ArithmeticError, InvalidOperation):
        raise _FxMissing from None
    if not rate.is_finite() or rate <= 0:
        raise _FxMissing
    return rate


class _Context:
    """The offer under judgement, its alternatives, and what rules share: prices in the policy
    currency (None when unconvertible), the traveler's rank, and caches."""

    def __init__(self, policy: Policy, traveler: Traveler, offer, alternatives, fx: FX | None, *,
                 booked_at: datetime, requested_departure: datetime | None = None):
        self.policy, self.traveler, self.offer = policy, traveler, offer
        self.booked_at, self.requested_departure = booked_at, requested_departure
        self.base_ok: Callable[[Any], bool] = lambda o: True  # set by _judge
        self.currency = policy.currency
        self.rank = _rank_or_lowest(traveler.grade)
        self.department = traveler.department.strip().casefold()
        self.pool = [offer, *(a for a in alternatives if a is not offer)]
        rates: dict[str, Decimal | None] = {}
        self.prices: dict[int, Decimal | None] = {}
        for o in self.pool:
            if o.currency not in rates:
                try:
                    rates[o.currency] = _rate(fx, o.currency, self.currency)
                except _FxMissing:
                    rates[o.currency] = None
            rate = rates[o.currency]
            self.prices[id(o)] = None if rate is None else money(o.price * rate)
        self._memo: dict[str, Any] = {}

    def price(self, o) -> Decimal | None:
        return self.prices[id(o)]

    def applies(self, min_grade: str | None, departments: frozenset[str] | None) -> bool:
        if min_grade is not None and self.rank < grade_rank(min_grade):
            return False
        return departments is None or self.department in _norm_departments(departments)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def fx_missing(self, o) -> Outcome:
        return Outcome(False, "fx.missing", {"from_currency": o.currency, "to_currency": self.currency,
                                             "price": _Money(o.price, o.currency)})


# --- Flight rules ---------------------------------------------------------------------------------
def _allowed_cabins(ctx: _Context) -> tuple[str, str | None, int]:
    """(cabin any flight may use, cabin of the long-flight exception or None, its threshold)."""
    def compute():
        base = "economy"
        for r in ctx.policy.cabin_rules:
            if CABIN_RANK[r.max_cabin] > CABIN_RANK[base] and ctx.applies(r.min_grade, r.departments):
                base = r.max_cabin
        lf = ctx.policy.long_flight
        if lf and ctx.applies(lf.min_grade, lf.departments):
            return base, lf.cabin, lf.over_minutes
        return base, None, 0
    return ctx.memo("cabins", compute)


def _cabin_ok(ctx: _Context, o: FlightOffer) -> bool:
    base, long_cabin, over = _allowed_cabins(ctx)
    allowed = CABIN_RANK[base]
    if long_cabin and o.duration_minutes > over:
        allowed = max(allowed, CABIN_RANK[long_cabin])
    return CABIN_RANK[o.cabin] <= allowed


@rule("cabin", "flight")
def cabin_by_grade(ctx: _Context, o: FlightOffer) -> Outcome:
    base, long_cabin, over = _allowed_cabins(ctx)
    params = {"cabin": CABIN_LABELS[o.cabin], "grade": ctx.traveler.grade,
              "duration": _Minutes(o.duration_minutes)}
    if CABIN_RANK[o.cabin] <= CABIN_RANK[base]:
        return Outcome(True, "cabin.allowed", params)
    if long_cabin and o.duration_minutes > over and CABIN_RANK[o.cabin] <= CABIN_RANK[long_cabin]:
        return Outcome(True, "cabin.long_flight", params | {"over": _Minutes(over)})
    allowed = long_cabin if long_cabin and o.duration_minutes > over and CABIN_RANK[long_cabin] > CABIN_RANK[base] else base
    return Outcome(False, "cabin.not_allowed", params | {"allowed": CABIN_LABELS[allowed]})


def _lowest_fares(ctx: _Context) -> dict[str, tuple[Decimal, FlightOffer]]:
    """The lowest known fares and their flights among the offers the fare rule compares with:
    ``lowest_logical`` keys each cabin's lowest by cabin, and the lowest in a cabin the traveler may
    use under ``"*"``; ``best_fare`` has only ``"*"`` (every offer in a cabin the traveler may use)."""
    def compute():
        fr = ctx.policy.fare_rule
        lowest: dict[str, tuple[Decimal, FlightOffer]] = {}

        def keep(key: str, p: Decimal, o: FlightOffer) -> None:
            if key not in lowest or p < lowest[key][0]:
                lowest[key] = (p, o)

        if fr.kind == "lowest_logical":
            reference = ctx.requested_departure or ctx.offer.departure
            window = timedelta(minutes=fr.window_minutes)
            for o in ctx.pool:
                p = ctx.price(o)
                if p is None or abs(o.departure - reference) > window:
                    continue
                if fr.max_stops is not None and o.stops > fr.max_stops:
                    continue
                keep(o.cabin, p, o)
                if _cabin_ok(ctx, o):
                    keep("*", p, o)
        else:  # best_fare: every offer in a cabin the traveler may use, under one key
            for o in ctx.pool:
                p = ctx.price(o)
                if p is not None and _cabin_ok(ctx, o):
                    keep("*", p, o)
        return lowest
    return ctx.memo("lowest", compute)


def _lowest_for(ctx: _Context, o: FlightOffer) -> tuple[Decimal, FlightOffer] | None:
    """The lowest fare ``o`` is judged against (see the module notes), or None when none is known."""
    lowest = _lowest_fares(ctx)
    if ctx.policy.fare_rule.kind != "lowest_logical":
        return lowest.get("*")
    found = [x for x in (lowest.get("*"), lowest.get(o.cabin)) if x is not None]
    return min(found, key=lambda x: x[0]) if found else None


@rule("fare", "flight")
def fare_rule(ctx: _Context, o: FlightOffer) -> Outcome:
    fr = ctx.policy.fare_rule
    price = ctx.price(o)
    if fr.kind == "flexible":
        shown = _Money(price, ctx.currency) if price is not None else _Money(o.fare, o.currency)
        return Outcome(True, "fare.flexible", {"fare": shown})
    if price is None:
        return ctx.fx_missing(o)
    best = _lowest_for(ctx, o)
    lowest, cheapest = (price, o) if best is None or best[0] >= price else best
    params = {"fare": _Money(price, ctx.currency), "window": _Minutes(fr.window_minutes)}
    if cheapest is o or lowest >= price:
        return Outcome(True, "fare.lowest" if fr.kind == "lowest_logical" else "fare.best", params)
    allowance = fr.allowance(lowest)
    within = price - lowest <= allowance
    if o is not ctx.offer:  # an alternative: only pass/fail matters, skip building the explanation
        return Outcome(within, "", {})
    params |= {"over": _Money(price - lowest, ctx.currency), "lowest": _Money(lowest, ctx.currency),
               "flight": cheapest.label, "time": cheapest.departure.strftime("%H:%M"),
               "allowance": _Money(allowance, ctx.currency)}
    if fr.kind == "lowest_logical":
        return Outcome(within, "fare.within_tolerance" if within else "fare.above_lowest", params)
    return Outcome(within, "fare.best_within_tolerance" if within else "fare.above_best", params)


@rule("advance_purchase", "flight")
def advance_purchase(ctx: _Context, o: FlightOffer) -> Outcome | None:
    minimum = ctx.policy.advance_days
    if minimum is None:
        return None
    booked = ctx.booked_at.astimezone(o.departure.tzinfo).date()
    days = (o.departure.date() - booked).days
    return Outcome(days >= minimum, "advance.ok" if days >= minimum else "advance.too_late",
                   {"days": days, "minimum": minimum})


@rule("rail", "flight")
def rail_instead_of_air(ctx: _Context, o: FlightOffer) -> Outcome | None:
    limit = ctx.policy.rail_under_km
    if limit is None:
        return None
    if o.distance_km is None:
        return Outcome(True, "rail.distance_unknown", {"limit": limit})
    ok = o.distance_km >= limit
    return Outcome(ok, "rail.ok" if ok else "rail.required", {"limit": limit, "distance": o.distance_km})


def _preference(ctx: _Context, o, *, preferred: set[str], key: Callable[[Any], str], name: str,
                what: str) -> Outcome | None:
    """Soft preference: fail only if a preferred offer passing every stage-1 rule costs at most
    the choice plus the fare tolerance."""
    if not preferred:
        return None
    params = {what: getattr(o, what)}
    if key(o) in preferred:
        return Outcome(True, f"{name}.preferred", params)
    price = ctx.price(o)
    best = ctx.memo(f"{name}.best", lambda: min(
        ((ctx.price(a), i, a) for i, a in enumerate(ctx.pool) if key(a) in preferred and ctx.price(a) is not None and ctx.base_ok(a)),
        default=None))
    if price is None or best is None or best[0] > price + ctx.policy.fare_rule.allowance(price):
        return Outcome(True, f"{name}.no_alternative", params)
    return Outcome(False, f"{name}.available",
                   params | {"alternative": best[2].label, "price": _Money(best[0], ctx.currency)})


@rule("preferred_airline", "flight", stage=2)
def preferred_airline(ctx: _Context, o: FlightOffer) -> Outcome | None:
    return _preference(ctx, o, preferred=ctx.policy.preferred_airlines, key=lambda a: a.carrier.strip().upper(),
                       name="preferred_airline", what="carrier")


# --- Hotel rules ----------------------------------------------------------------------------------
def _cap_for(ctx: _Context, tier: int) -> Decimal | None:
    """Highest nightly cap that applies to the traveler in a city tier (caps grant, like cabins)."""
    def compute():
        caps = [c.nightly_cap for c in ctx.policy.hotel_caps
                if c.city_tier == tier and ctx.applies(c.min_grade, c.departments)]
        return money(max(caps)) if caps else None
    return ctx.memo(f"cap{tier}", compute)


@rule("hotel_cap", "hotel")
def hotel_cap(ctx: _Context, o: HotelOffer) -> Outcome:
    tier = city_tier(o.city, o.country)
    params = {"grade": ctx.traveler.grade, "tier": tier, "city": o.city}
    cap = _cap_for(ctx, tier)
    if cap is None:
        return Outcome(False, "hotel_cap.no_cap", params)
    rate = ctx.price(o)
    if rate is None:
        return ctx.fx_missing(o)
    params |= {"rate": _Money(rate, ctx.currency), "cap": _Money(cap, ctx.currency)}
    if o is not ctx.offer:  # an alternative: only pass/fail matters
        return Outcome(rate <= cap, "", {})
    if rate <= cap:
        return Outcome(True, "hotel_cap.ok", params)
    return Outcome(False, "hotel_cap.over", params | {"over": _Money(rate - cap, ctx.currency)})


@rule("preferred_chain", "hotel", stage=2)
def preferred_chain(ctx: _Context, o: HotelOffer) -> Outcome | None:
    return _preference(ctx, o, preferred=ctx.policy.preferred_hotel_chains, key=lambda a: a.chain.strip().casefold(),
                       name="preferred_chain", what="chain")


# --- Checks ---------------------------------------------------------------------------------------
def _render(spec: RuleSpec, outcome: Outcome) -> RuleResult:
    params = {k: v if type(v) in (int, str) else str(v) for k, v in outcome.params.items()}
    return RuleResult(spec.name, outcome.passed, outcome.code, params, MESSAGES[outcome.code] % params)


def _judge(ctx: _Context, kind: str, total: Callable[[Any], Decimal | None]) -> Verdict:
    specs = [s for s in RULES if s.kind == kind]
    stage1 = [s for s in specs if s.stage == 1]
    stage2 = [s for s in specs if s.stage == 2]
    base: dict[int, bool] = {}

    def base_ok(o) -> bool:
        if id(o) not in base:
            base[id(o)] = all(out is None or out.passed for out in (s.fn(ctx, o) for s in stage1))
        return base[id(o)]

    ctx.base_ok = base_ok
    outcomes = [(s, s.fn(ctx, ctx.offer)) for s in specs]
    results = [_render(s, out) for s, out in outcomes if out is not None]
    compliant = all(r.passed for r in results)

    cheapest, cheapest_total = None, None
    for o in ctx.pool:
        t = total(o)
        if t is None or (cheapest_total is not None and t >= cheapest_total):
            continue
        if o is ctx.offer:
            ok = compliant
        else:
            ok = base_ok(o) and all(out is None or out.passed for out in (s.fn(ctx, o) for s in stage2))
        if ok:
            cheapest, cheapest_total = o, t
    offer_total = total(ctx.offer)
    saving = Decimal("0.00")
    if not compliant and cheapest is not None and offer_total is not None:
        saving = max(saving, money(offer_total - cheapest_total))
    policy = ctx.policy
    needs_approval = not compliant and policy.out_of_policy == "allowed_with_approval"
    return Verdict(compliant=compliant, results=results, cheapest_compliant=cheapest, missed_saving=saving,
                   needs_approval=needs_approval, forbidden=not compliant and policy.out_of_policy == "forbidden",
                   approvers=list(policy.approvers) if needs_approval else [], policy_version=policy.version,
                   currency=policy.currency)


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be a time-zone-aware datetime")


def check_flight(policy: Policy, traveler: Traveler, offer: FlightOffer, *,
                 requested_departure: datetime | None = None, alternatives: Iterable[FlightOffer] = (),
                 booked_at: datetime, fx: FX | None = None) -> Verdict:
    """Judge a flight offer for a traveler against ``policy`` (the version in force at ``booked_at``).

    ``alternatives`` are other offers for the same trip: they set the lowest logical / best fare,
    and the cheapest of them that passes every rule is the proposed alternative. ``fx`` converts
    into the policy currency: ``fx(from, to) -> rate``, or a mapping ``{"USD": rate}`` or
    ``{("USD", "CNY"): rate}``. Naive datetimes are a programming error (``ValueError``)."""
    _aware("booked_at", booked_at)
    _aware("requested_departure", requested_departure)
    alternatives = list(alternatives)
    for o in (offer, *alternatives):
        _aware("departure", o.departure)
    ctx = _Context(policy, traveler, offer, alternatives, fx, booked_at=booked_at,
                   requested_departure=requested_departure)
    return _judge(ctx, "flight", ctx.price)


def check_hotel(policy: Policy, traveler: Traveler, offer: HotelOffer, *,
                alternatives: Iterable[HotelOffer] = (), booked_at: datetime,
                fx: FX | None = None) -> Verdict:
    """Judge a hotel offer; the missed saving compares the stay (nightly rate × the offer's nights)."""
    _aware("booked_at", booked_at)
    ctx = _Context(policy, traveler, offer, list(alternatives), fx, booked_at=booked_at)

    def total(o: HotelOffer) -> Decimal | None:
        rate = ctx.price(o)
        return None if rate is None else rate * offer.nights
    return _judge(ctx, "hotel", total)
