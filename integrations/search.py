"""Inventory search for an agency (R-INT-2): the shared inventory plus the agency's own rates, never
another agency's. Runs in the agency's context; the inventory tables are in the public schema.

Hotel results are stays: one row per property, room type and rate plan that has a rate and is not
closed for *every* night from check-in to check-out, with the stay's total. Prices are compared in
the agency's currency through its exchange rates (the policy pages' table); an offer in a currency
without a rate sorts last and is marked so."""
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from caravan.money import CENT
from caravan.tenancy import require_agency
from caravan.tenancy.scoping import visible_sql

from . import reference
from .models import FlightOffer, Hotel, HotelRate, Supplier

MAX_RESULTS = 50
MAX_NIGHTS = 30
BOARDS = ("RO", "BB", "HB", "FB", "AI")
HOTEL_SORTS = ("price", "-price", "name")
# What a search is asked with (the page's form fields and the API's query parameters); ``sort`` besides.
HOTEL_QUERY = ("city", "check_in", "check_out", "board", "chain", "max_nightly", "name")
FLIGHT_QUERY = ("origin", "destination", "date", "cabin", "max_stops", "carrier")
FLIGHT_SORTS = ("price", "departure", "duration")


@dataclass
class HotelResult:
    key: str  # feed:hotel:room:plan, what "add to trip" sends back
    hotel_code: str
    name: str
    chain: str
    city_code: str
    country: str
    supplier: str
    room_type: str
    rate_plan: str
    board: str
    nights: int
    total: Decimal
    currency: str
    nightly: Decimal
    total_local: Decimal | None  # in the agency's currency
    own_rate: bool  # the agency's own negotiated rate
    verdict: object = None


@dataclass
class FlightResult:
    pk: int
    offer_id: str
    supplier: str
    carrier: str
    flight_numbers: str
    origin: str
    destination: str
    departure: datetime
    arrival: datetime
    duration_minutes: int
    stops: int
    cabin: str
    fare_brand: str
    checked_bags: int
    price: Decimal
    currency: str
    price_local: Decimal | None
    own_rate: bool
    slices: list = field(default_factory=list)
    verdict: object = None


def exchange_table() -> dict[str, Decimal]:
    """Currency → what one unit is worth in the agency's currency (the agency's own currency is 1)."""
    from crm.policies.models import ExchangeRate

    table = {code: rate for code, rate in ExchangeRate.objects.values_list("currency", "rate")}
    table[require_agency().currency] = Decimal(1)
    return table


def _fx_arrays(table):
    return list(table), [str(v) for v in table.values()]


def _day(value, field_name: str, errors: dict) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or ""))
    except ValueError:
        errors[field_name] = [_("Enter a date (YYYY-MM-DD).")]
        return None


def hotel_search(*, city: str, check_in, check_out, board: str = "", chain: str = "", max_nightly=None,
                 name: str = "", sort: str = "price", limit: int = MAX_RESULTS) -> list[HotelResult]:
    errors: dict = {}
    city = (city or "").strip().upper()
    if reference.city(city) is None:
        errors["city"] = [_("Enter an IATA city or airport code, e.g. SHA or BJS.")]
    check_in, check_out = _day(check_in, "check_in", errors), _day(check_out, "check_out", errors)
    if check_in and check_out:
        if check_out <= check_in:
            errors["check_out"] = [_("Check-out must be after check-in.")]
        elif (check_out - check_in).days > MAX_NIGHTS:
            errors["check_out"] = [_("Search at most %(n)d nights at a time.") % {"n": MAX_NIGHTS}]
    if board and board not in BOARDS:
        errors["board"] = [_("Choose a board.")]
    if sort not in HOTEL_SORTS:
        errors["sort"] = [_("Choose how to sort.")]
    cap = None
    if max_nightly not in (None, ""):
        try:
            cap = Decimal(str(max_nightly))
            if not cap.is_finite() or cap <= 0:
                raise ValueError
        except (ArithmeticError, ValueError):
            errors["max_nightly"] = [_("Enter a positive amount.")]
    if errors:
        raise ValidationError(errors)
    nights = (check_out - check_in).days
    codes, rates = _fx_arrays(exchange_table())
    fence, fence_params = visible_sql(HotelRate, "r")  # shared rates and this agency's own
    having = ["count(*) = %(nights)s"]
    if board:
        having.append("bool_and(r.board = %(board)s)")
    if cap is not None:
        having.append("max(r.amount * fx.rate) <= %(cap)s")
    where = ""
    if chain:
        where += " AND h.chain_code = %(chain)s"
    if name:
        where += " AND h.name ILIKE %(name)s"
    order = {"price": "total_local ASC NULLS LAST, h.name", "-price": "total_local DESC NULLS LAST, h.name",
             "name": "h.name, total_local"}[sort]
    sql = f"""
        SELECT r.feed_id, h.code, h.name, h.chain_code, h.city_code, h.country, s.name, r.room_type, r.rate_plan,
               min(r.board), sum(r.amount) AS total, min(r.currency), sum(r.amount * fx.rate) AS total_local,
               bool_or(r.agency_id IS NOT NULL)
        FROM {HotelRate._meta.db_table} r
        JOIN {Hotel._meta.db_table} h ON h.id = r.hotel_id
        JOIN {Supplier._meta.db_table} s ON s.id = h.supplier_id
        LEFT JOIN unnest(%(codes)s::varchar[], %(rates)s::numeric[]) AS fx(code, rate) ON fx.code = r.currency
        WHERE r.city_code = %(city)s AND r.night >= %(check_in)s AND r.night < %(check_out)s
          AND r.amount IS NOT NULL AND coalesce(r.available, 1) > 0
          AND {fence} AND s.active{where}
        GROUP BY r.feed_id, h.id, s.name, r.room_type, r.rate_plan
        HAVING {" AND ".join(having)} AND count(DISTINCT r.currency) = 1
        ORDER BY {order}
        LIMIT %(limit)s"""
    params = {"codes": codes, "rates": rates, "city": city, "check_in": check_in, "check_out": check_out,
              **fence_params, "nights": nights, "board": board, "cap": cap, "chain": chain.upper(),
              "name": f"%{name}%", "limit": min(limit, MAX_RESULTS)}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [HotelResult(key=f"{feed}:{code}:{room}:{plan}", hotel_code=code, name=hotel_name, chain=chain_code,
                        city_code=city_code, country=country, supplier=supplier, room_type=room, rate_plan=plan,
                        board=board_code or "", nights=nights, total=total, currency=currency,
                        nightly=(total / nights).quantize(CENT),
                        total_local=total_local.quantize(CENT) if total_local is not None else None,
                        own_rate=own)
            for (feed, code, hotel_name, chain_code, city_code, country, supplier, room, plan, board_code, total,
                 currency, total_local, own) in rows]


def hotel_result(key: str, *, check_in, check_out) -> HotelResult:
    """The one stay ``key`` names, priced again now (what "add to trip" uses: never a posted price):
    every night present, open, in one currency, shared or this agency's own."""
    gone = ValidationError({"key": [_("This offer is no longer available; search again.")]})
    try:
        feed, code, room, plan = key.split(":", 3)
        feed = int(feed)
    except ValueError:
        raise gone from None
    nights = (check_out - check_in).days
    rows = list(HotelRate.objects.filter(
        feed_id=feed, hotel__code=code, room_type=room, rate_plan=plan, night__gte=check_in, night__lt=check_out,
        amount__isnull=False).exclude(available__lte=0).select_related("hotel", "hotel__supplier"))
    if len(rows) != nights or len({r.currency for r in rows}) != 1:
        raise gone
    total = sum((r.amount for r in rows), Decimal(0))
    first, hotel = rows[0], rows[0].hotel
    rate = exchange_table().get(first.currency)
    return HotelResult(key=key, hotel_code=code, name=hotel.name, chain=hotel.chain_code, city_code=hotel.city_code,
                       country=hotel.country, supplier=hotel.supplier.name, room_type=room, rate_plan=plan,
                       board=first.board, nights=nights, total=total, currency=first.currency,
                       nightly=(total / nights).quantize(CENT),
                       total_local=(total * rate).quantize(CENT) if rate else None, own_rate=first.agency_id is not None)


def _airports(code: str) -> list[str]:
    """An airport code, or every airport of a metropolitan city code (BJS → PEK, PKX, …)."""
    code = (code or "").strip().upper()
    if code in reference.METRO_CODES:
        city, country, _zone = reference.METRO_CODES[code]
        return sorted(iata for iata, a in reference.airports().items() if a["city"] == city and a["country"] == country)
    return [code] if reference.airport(code) else []


def flight_search(*, origin: str, destination: str, day, cabin: str = "", max_stops=None, carrier: str = "",
                  sort: str = "price", limit: int = MAX_RESULTS) -> list[FlightResult]:
    errors: dict = {}
    origins, destinations = _airports(origin), _airports(destination)
    if not origins:
        errors["origin"] = [_("Enter an IATA airport or city code, e.g. PEK or BJS.")]
    if not destinations:
        errors["destination"] = [_("Enter an IATA airport or city code, e.g. PEK or BJS.")]
    day = _day(day, "date", errors)
    if cabin and cabin not in ("economy", "premium_economy", "business", "first"):
        errors["cabin"] = [_("Choose a cabin.")]
    if sort not in FLIGHT_SORTS:
        errors["sort"] = [_("Choose how to sort.")]
    if max_stops not in (None, ""):
        try:
            max_stops = int(max_stops)
            if not 0 <= max_stops <= 3:
                raise ValueError
        except ValueError:
            errors["max_stops"] = [_("Choose 0 to 3 stops.")]
    else:
        max_stops = None
    if errors:
        raise ValidationError(errors)
    fence, fence_params = visible_sql(FlightOffer, "o")  # shared offers and this agency's own
    codes, rates = _fx_arrays(exchange_table())
    where = ""
    if cabin:
        where += " AND o.cabin = %(cabin)s"
    if max_stops is not None:
        where += " AND o.stops <= %(stops)s"
    if carrier:
        where += " AND o.carrier = %(carrier)s"
    order = {"price": "price_local ASC NULLS LAST, o.departure", "departure": "o.departure, price_local",
             "duration": "o.duration_minutes, price_local"}[sort]
    sql = f"""
        SELECT o.id, o.offer_id, s.name, o.carrier, o.flight_numbers, o.origin, o.destination, o.departure, o.arrival,
               o.duration_minutes, o.stops, o.cabin, o.fare_brand, o.checked_bags, o.price, o.currency,
               o.price * fx.rate AS price_local, o.agency_id IS NOT NULL, o.slices
        FROM {FlightOffer._meta.db_table} o
        JOIN integrations_feed f ON f.id = o.feed_id
        JOIN {Supplier._meta.db_table} s ON s.id = f.supplier_id
        LEFT JOIN unnest(%(codes)s::varchar[], %(rates)s::numeric[]) AS fx(code, rate) ON fx.code = o.currency
        WHERE o.origin = ANY(%(origins)s) AND o.destination = ANY(%(destinations)s) AND o.departure_date = %(day)s
          AND {fence} AND (o.expires_at IS NULL OR o.expires_at > now())
          AND s.active{where}
        ORDER BY {order}
        LIMIT %(limit)s"""
    params = {"codes": codes, "rates": rates, "origins": origins, "destinations": destinations, "day": day,
              **fence_params, "cabin": cabin, "stops": max_stops, "carrier": (carrier or "").upper(),
              "limit": min(limit, MAX_RESULTS)}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [FlightResult(pk=r[0], offer_id=r[1], supplier=r[2], carrier=r[3], flight_numbers=r[4], origin=r[5],
                         destination=r[6], departure=r[7], arrival=r[8], duration_minutes=r[9], stops=r[10],
                         cabin=r[11], fare_brand=r[12], checked_bags=r[13], price=r[14], currency=r[15],
                         price_local=r[16].quantize(CENT) if r[16] is not None else None, own_rate=r[17],
                         slices=r[18] if isinstance(r[18], list) else []) for r in rows]


def flight_result(pk) -> FlightResult:
    """One offer by id, as this agency may see it (shared or its own: the scoped manager), not expired."""
    offer = FlightOffer.objects.filter(pk=pk).select_related("feed__supplier").first() if str(pk).isdigit() else None
    if offer is None or (offer.expires_at and offer.expires_at <= timezone.now()):
        raise ValidationError({"offer": [_("This offer is no longer available; search again.")]})
    rate = exchange_table().get(offer.currency)
    return FlightResult(pk=offer.pk, offer_id=offer.offer_id, supplier=offer.feed.supplier.name, carrier=offer.carrier,
                        flight_numbers=offer.flight_numbers, origin=offer.origin, destination=offer.destination,
                        departure=offer.departure, arrival=offer.arrival, duration_minutes=offer.duration_minutes,
                        stops=offer.stops, cabin=offer.cabin, fare_brand=offer.fare_brand,
                        checked_bags=offer.checked_bags, price=offer.price, currency=offer.currency,
                        price_local=(offer.price * rate).quantize(CENT) if rate else None,
                        own_rate=offer.agency_id is not None, slices=offer.slices)


# --- from a trip --------------------------------------------------------------------------------------

def trip_traveler(trip, customer_id):
    """The traveler on ``trip`` with this customer id, or None (not on the trip, or not a number)."""
    try:
        customer_id = int(customer_id)
    except (TypeError, ValueError):
        return None
    traveler = trip.travelers.filter(customer_id=customer_id).select_related("customer").first()
    return traveler.customer if traveler else None


def with_verdicts(trip, traveler, kind: str, results: list) -> str | None:
    """Judge each result against the policy ``traveler`` travels under on ``trip`` (the other results are
    the alternatives). Sets ``result.verdict`` (a ``CheckOutcome``); returns why nothing was judged, if so."""
    from crm.policies import selectors as policy_selectors
    from crm.policies import services as policy_services

    if traveler is None or not results:
        return None
    account = policy_services.trip_account(trip, traveler)
    if account is None:
        return _("%(name)s does not travel for a corporate account with a travel policy on this trip.") % {
            "name": traveler.name}
    offers = [offer_dict(kind, r) for r in results]
    now = timezone.now()
    context = policy_selectors.check_context(account=account, traveler=traveler, at=now)  # once for all results
    for i, result in enumerate(results):
        try:
            result.verdict = policy_services.policy_check(
                account=account, kind=kind, offer=offers[i], alternatives=offers[:i] + offers[i + 1:][:19],
                traveler=traveler, booked_at=now, context=context)
        except ValidationError as exc:
            return "; ".join(exc.messages)
    return None


def offer_dict(kind: str, result) -> dict:
    """A result as the policy engine's offer (``crm.policies.services.flight_offer`` / ``hotel_offer``)."""
    if kind == "flight":
        return {"carrier": result.carrier, "flight_numbers": result.flight_numbers.split("/"),
                "origin": result.origin, "destination": result.destination,
                "departure": result.departure.isoformat(), "arrival": result.arrival.isoformat(),
                "duration_minutes": result.duration_minutes, "stops": result.stops, "cabin": result.cabin,
                "fare": str(result.price), "currency": result.currency}
    return {"chain": result.chain, "property_name": result.name, "city": result.city_code, "country": result.country,
            "nights": result.nights, "nightly_rate": str(result.nightly), "currency": result.currency}


def add_to_trip(*, actor, trip, kind: str, key: str = "", offer: str = "", check_in=None, check_out=None,
                traveler=None):
    """Add the chosen result to the trip's itinerary, priced again from the inventory (never from the
    form), in the agency's currency; with a traveler under a policy, the verdict is recorded on the
    item (and an approval asked for when the policy says so). Returns the item."""
    from crm.policies import services as policy_services
    from crm.trips import services as trip_services

    if kind == "hotel":
        errors: dict = {}
        check_in, check_out = _day(check_in, "check_in", errors), _day(check_out, "check_out", errors)
        if errors:
            raise ValidationError(errors)
        result = hotel_result(key, check_in=check_in, check_out=check_out)
        local_price = result.total_local
        description = f"{result.name} · {result.room_type} / {result.rate_plan}"
        details = {"source": "inventory", "hotel": result.hotel_code, "room_type": result.room_type,
                   "rate_plan": result.rate_plan, "board": result.board, "nights": result.nights,
                   "price": f"{result.total} {result.currency}"}
        starts_on, ends_on = check_in, check_out
    elif kind == "flight":
        result = flight_result(offer)
        local_price = result.price_local
        description = f"{result.flight_numbers} {result.origin}→{result.destination}"
        details = {"source": "inventory", "offer": result.offer_id, "flights": result.flight_numbers,
                   "cabin": result.cabin, "fare_brand": result.fare_brand, "bags": result.checked_bags,
                   "price": f"{result.price} {result.currency}"}
        starts_on = ends_on = result.departure.date()
    else:
        raise ValidationError({"kind": [_("Choose flight or hotel.")]})
    if local_price is None:
        raise ValidationError({"offer": [_("No exchange rate for %(currency)s: an admin adds it on the exchange "
                                           "rates page.") % {"currency": result.currency}]})
    with transaction.atomic():
        item = trip_services.item_add(actor=actor, trip=trip, kind=kind, description=description[:300],
                                      supplier=result.supplier[:120], starts_on=starts_on, ends_on=ends_on,
                                      cost=local_price, sell=local_price, details=details)
        if traveler is not None and policy_services.trip_account(trip, traveler) is not None:
            offer_data = offer_dict(kind, result)
            policy_services.booking_check_record(actor=actor, item=item, traveler=traveler, offer=offer_data)
    return item
