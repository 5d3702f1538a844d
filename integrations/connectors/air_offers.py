"""Flight offers as JSON, in the shape of Duffel's published Offers API (``/air/offers``): each offer
has ``id``, ``total_amount`` (a decimal string), ``total_currency``, ``expires_at``, ``owner`` and
``slices``; a slice has ``origin``/``destination`` (``iata_code``), ``duration`` (ISO 8601),
``fare_brand_name`` and ``segments``; a segment has ``departing_at``/``arriving_at`` (local times
at the airports, as Duffel gives them), ``marketing_carrier`` + ``marketing_carrier_flight_number``,
``operating_carrier``, ``aircraft`` and per passenger ``cabin_class`` and ``baggages``.

The document is ``{"data": {"offers": [...]}}`` (an offer request) or ``{"data": [...]}`` (a list of
offers), read one offer at a time (``ijson``) so a large file never sits in memory whole."""
import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

import ijson

from .. import reference
from .base import Connector, MessageRefused, OfferRow, Rejected, Segment, Slice

CABINS = {"economy", "premium_economy", "business", "first"}
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:\d+S)?)?$")


class RecordError(ValueError):
    pass


def _code(value, what: str) -> str:
    code = (value or {}).get("iata_code") if isinstance(value, dict) else value
    if not isinstance(code, str) or not code.strip():
        raise RecordError(f"{what} is missing")
    return code.strip().upper()


def _local_time(value, airport: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise RecordError(f"{what} is not a date and time: {value!r}") from None
    if moment.tzinfo is None:
        zone = reference.time_zone(airport)
        if zone is None:
            raise RecordError(f"{airport} is not an IATA airport code")
        moment = moment.replace(tzinfo=zone)
    return moment


def _minutes(value) -> int | None:
    found = _DURATION.match(str(value or ""))
    if not found or not any(found.groups()):
        return None
    days, hours, minutes = (int(g or 0) for g in found.groups())
    return days * 1440 + hours * 60 + minutes


def _segment(data: dict, n: int) -> Segment:
    if not isinstance(data, dict):
        raise RecordError(f"segment {n} is not an object")
    origin, destination = _code(data.get("origin"), f"segment {n} origin"), _code(data.get("destination"), f"segment {n} destination")
    for code in (origin, destination):
        if reference.airport(code) is None:
            raise RecordError(f"{code} is not an IATA airport code")
    departure = _local_time(data.get("departing_at"), origin, f"segment {n} departing_at")
    arrival = _local_time(data.get("arriving_at"), destination, f"segment {n} arriving_at")
    if arrival <= departure:
        raise RecordError(f"segment {n} arrives before it departs")
    carrier = _code(data.get("marketing_carrier"), f"segment {n} marketing_carrier")
    number = str(data.get("marketing_carrier_flight_number") or "").strip()
    if not re.fullmatch(r"\d{1,4}[A-Z]?", number):
        raise RecordError(f"segment {n} flight number is not valid: {number!r}")
    passengers = data.get("passengers") or [{}]
    cabin = (passengers[0] or {}).get("cabin_class") or data.get("cabin_class") or ""
    if cabin not in CABINS:
        raise RecordError(f"segment {n} cabin_class is not one of {', '.join(sorted(CABINS))}: {cabin!r}")
    operating = data.get("operating_carrier")
    aircraft = data.get("aircraft")
    return Segment(origin, destination, departure, arrival, carrier, f"{carrier}{number}", cabin,
                   operating_carrier=_code(operating, "operating carrier") if operating else "",
                   aircraft=(aircraft or {}).get("iata_code", "") if isinstance(aircraft, dict) else "")


def _checked_bags(offer: dict) -> int:
    for slice_ in offer.get("slices") or []:
        for segment in (slice_ or {}).get("segments") or []:
            for passenger in (segment or {}).get("passengers") or []:
                return sum(int(b.get("quantity") or 0) for b in (passenger or {}).get("baggages") or []
                           if isinstance(b, dict) and b.get("type") == "checked")
    return 0


def offer_row(offer: dict, position: str) -> OfferRow:
    if not isinstance(offer, dict):
        raise RecordError("the offer is not an object")
    offer_id = offer.get("id")
    if not isinstance(offer_id, str) or not offer_id or len(offer_id) > 80:
        raise RecordError("id is missing or too long")
    try:
        price = Decimal(str(offer.get("total_amount")))
    except (InvalidOperation, ValueError):
        raise RecordError(f"total_amount is not a number: {offer.get('total_amount')!r}") from None
    if not price.is_finite() or price <= 0 or price >= Decimal("1e9"):
        raise RecordError("total_amount must be above zero")
    currency = str(offer.get("total_currency") or "").upper()
    slices = []
    for i, data in enumerate(offer.get("slices") or [], start=1):
        if not isinstance(data, dict):
            raise RecordError(f"slice {i} is not an object")
        segments = [_segment(s, n) for n, s in enumerate(data.get("segments") or [], start=1)]
        if not segments:
            raise RecordError(f"slice {i} has no segments")
        duration = _minutes(data.get("duration"))
        if duration is None:
            duration = int((segments[-1].arrival - segments[0].departure).total_seconds() // 60)
        slices.append(Slice(segments[0].origin, segments[-1].destination, duration,
                            str(data.get("fare_brand_name") or "")[:60], segments))
    if not slices:
        raise RecordError("the offer has no slices")
    expires = offer.get("expires_at")
    try:
        expires_at = datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None
    except (ValueError, AttributeError):
        raise RecordError(f"expires_at is not a date and time: {expires!r}") from None
    return OfferRow(position, offer_id, price.quantize(Decimal("0.01")), currency, slices,
                    checked_bags=_checked_bags(offer), expires_at=expires_at)


class AirOffersJson(Connector):
    key = "air_offers"
    label = "Flight offers JSON (Duffel Offers API shape)"
    kind = "air"
    content_type = "application/json"

    def __init__(self):
        self.message_type = ""

    def _prefix(self, stream) -> str:
        """``data.offers.item`` or ``data.item``: decided from the first events, then the stream is rewound."""
        try:
            for prefix, event, _value in ijson.parse(stream):
                if prefix == "data" and event == "start_array":
                    self.message_type = "offers list"
                    return "data.item"
                if prefix == "data.offers" and event == "start_array":
                    self.message_type = "offer request"
                    return "data.offers.item"
                if prefix == "" and event == "end_map":
                    break
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise MessageRefused(f"Malformed or cut-off JSON: {exc}") from None
        raise MessageRefused('Not a flight-offers document: expected {"data": {"offers": [...]}} or {"data": [...]}.')

    def parse(self, stream):
        prefix = self._prefix(stream)
        stream.seek(0)
        n = 0
        try:
            for offer in ijson.items(stream, prefix, use_float=False):
                n += 1
                position = f"offer {n}"
                try:
                    yield offer_row(offer, position)
                except (RecordError, TypeError, AttributeError) as exc:
                    reference_id = offer.get("id", "") if isinstance(offer, dict) else ""
                    yield Rejected(position=position, reason=str(exc), reference=str(reference_id)[:120],
                                   raw=json.dumps(offer, default=str, ensure_ascii=False)[:2000])
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise MessageRefused(f"Malformed or cut-off JSON after {n} offers: {exc}") from None
