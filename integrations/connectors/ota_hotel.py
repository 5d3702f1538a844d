"""OpenTravel Alliance hotel messages (OTA 2003/05 schema family), as channel managers send them:

- ``OTA_HotelRateAmountNotifRQ``: ``RateAmountMessages[@HotelCode]/RateAmountMessage`` with a
  ``StatusApplicationControl`` (Start, End, InvTypeCode = room type, RatePlanCode) and
  ``Rates/Rate/BaseByGuestAmts/BaseByGuestAmt`` (AmountAfterTax or AmountBeforeTax, CurrencyCode,
  DecimalPlaces). The first amount of a rate is the room's price for the night.
- ``OTA_HotelAvailNotifRQ``: ``AvailStatusMessages[@HotelCode]/AvailStatusMessage[@BookingLimit]``
  with ``StatusApplicationControl`` and an optional ``RestrictionStatus[@Status="Close"|"Open"]``.
- ``OTA_HotelAvailRS``: ``RoomStays/RoomStay`` with ``RoomTypes``, ``RatePlans`` (``MealsIncluded``),
  ``RoomRates/RoomRate/Rates/Rate`` (EffectiveDate, ExpireDate, ``Base``) and ``BasicPropertyInfo``
  (HotelCode, HotelName, ChainCode, HotelCityCode, ``Address/CountryName[@Code]``). An ``Errors``
  element refuses the message.

End dates are inclusive, as OTA's StatusApplicationControl and Rate define them, unless
``ExpireDateExclusiveInd="true"``. Meal plans follow OTA's MPT code list.
"""
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from .base import Connector, HotelInfo, HotelRow, MessageRefused, Rejected
from .xmlsafe import iterparse, local, local_all, snippet

ROOTS = {"OTA_HotelRateAmountNotifRQ", "OTA_HotelAvailNotifRQ", "OTA_HotelAvailRS"}
RECORDS = {"RateAmountMessage", "AvailStatusMessage", "RoomStay", "Errors"}
# OTA code list MPT (meal plan type) → our board codes.
MEAL_PLANS = {"1": "AI", "3": "BB", "4": "BB", "5": "BB", "6": "BB", "7": "BB", "10": "FB", "11": "BB",
              "12": "HB", "14": "RO", "15": "RO", "17": "HB", "19": "BB"}


class RecordError(ValueError):
    pass


def _day(value: str | None, what: str) -> date:
    try:
        return date.fromisoformat((value or "")[:10])
    except ValueError:
        raise RecordError(f"{what} is not a date (YYYY-MM-DD): {value!r}") from None


def _amount(element, what: str = "amount") -> tuple[Decimal, str]:
    raw = element.get("AmountAfterTax") or element.get("AmountBeforeTax")
    if raw is None:
        raise RecordError(f"{what} has no AmountAfterTax or AmountBeforeTax")
    try:
        value = Decimal(raw)
        places = element.get("DecimalPlaces")
        if places is not None and "." not in raw:
            value = value.scaleb(-int(places))
    except (InvalidOperation, ValueError):
        raise RecordError(f"{what} is not a number: {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise RecordError(f"{what} must be zero or more: {raw!r}")
    return value, (element.get("CurrencyCode") or "").upper()


def _board(meals) -> str:
    if meals is None:
        return ""
    for code in (meals.get("MealPlanCodes") or meals.get("MealPlanCode") or "").split():
        if code in MEAL_PLANS:
            return MEAL_PLANS[code]
    if (meals.get("Breakfast") or "").lower() == "true":
        return "BB"
    return ""


def _control(message) -> tuple[date, date, str, str]:
    control = local(message, "StatusApplicationControl")
    if control is None:
        raise RecordError("StatusApplicationControl is missing")
    start, end = _day(control.get("Start"), "Start"), _day(control.get("End"), "End")
    room, plan = control.get("InvTypeCode") or control.get("InvCode") or "", control.get("RatePlanCode") or ""
    if not room:
        raise RecordError("InvTypeCode (room type) is missing")
    return start, end, room, plan


class OtaHotel(Connector):
    key = "ota_hotel"
    label = "OpenTravel (OTA) hotel XML: OTA_HotelAvailRS, OTA_HotelRateAmountNotifRQ, OTA_HotelAvailNotifRQ"
    kind = "hotel"
    content_type = "application/xml"

    def __init__(self):
        self.message_type = ""

    def parse(self, stream):
        hotel_code = ""
        counts = {"RateAmountMessage": 0, "AvailStatusMessage": 0, "RoomStay": 0}
        for event, name, element in iterparse(stream, RECORDS):
            if event == "start":
                if not self.message_type:
                    if name not in ROOTS:
                        raise MessageRefused(f"Not an OTA hotel message this feed reads: <{name}>.")
                    self.message_type = name
                elif name in ("RateAmountMessages", "AvailStatusMessages"):
                    hotel_code = element.get("HotelCode") or ""
                continue
            if name == "Errors":
                texts = [e.get("ShortText") or e.text or e.get("Code") or "" for e in local_all(element, "Error")]
                raise MessageRefused("The supplier answered with errors: " + "; ".join(t for t in texts if t)[:500])
            counts[name] += 1
            position = f"{name} {counts[name]}"
            try:
                if name == "RoomStay":
                    yield from self._room_stay(element, position)
                else:
                    yield self._notification(name, element, position, hotel_code)
            except RecordError as exc:
                yield Rejected(position=position, reason=str(exc), reference=hotel_code, raw=snippet(element))

    @staticmethod
    def _notification(name, message, position, hotel_code) -> HotelRow:
        if not hotel_code:
            raise RecordError("HotelCode is missing on the messages element")
        start, end, room, plan = _control(message)
        if name == "RateAmountMessage":
            amount_element = local(message, "BaseByGuestAmt")
            if amount_element is None:
                amount_element = local(message, "Base")
            if amount_element is None:
                raise RecordError("Rates/Rate/BaseByGuestAmts/BaseByGuestAmt is missing")
            amount, currency = _amount(amount_element)
            return HotelRow(position, hotel_code, room, plan, start, end, amount=amount, currency=currency,
                            board=_board(local(message, "MealsIncluded")))
        limit = message.get("BookingLimit")
        restriction = local(message, "RestrictionStatus")
        closed = restriction is not None and (restriction.get("Status") or "").lower() == "close"
        if closed:
            available = 0
        elif limit is not None:
            try:
                available = int(limit)
            except ValueError:
                raise RecordError(f"BookingLimit is not a whole number: {limit!r}") from None
            if available < 0:
                raise RecordError("BookingLimit must be zero or more")
        elif restriction is not None:
            available = None  # opened again without a count: availability stays as it was
        else:
            raise RecordError("Neither BookingLimit nor RestrictionStatus is given")
        return HotelRow(position, hotel_code, room, plan, start, end, available=available)

    @staticmethod
    def _room_stay(stay, position):
        info = local(stay, "BasicPropertyInfo")
        if info is None or not info.get("HotelCode"):
            raise RecordError("BasicPropertyInfo/@HotelCode is missing")
        country = local(info, "CountryName")
        hotel = HotelInfo(code=info.get("HotelCode"), name=(info.get("HotelName") or "").strip(),
                          chain_code=(info.get("ChainCode") or "").strip(),
                          city_code=(info.get("HotelCityCode") or "").upper(),
                          country=((country.get("Code") if country is not None else "") or "").upper())
        if not hotel.name:
            raise RecordError("BasicPropertyInfo/@HotelName is missing")
        boards = {plan.get("RatePlanCode"): _board(local(plan, "MealsIncluded"))
                  for plan in local_all(stay, "RatePlan")}
        units = {room.get("RoomTypeCode"): room.get("NumberOfUnits") for room in local_all(stay, "RoomType")}
        rows = []
        for room_rate in local_all(stay, "RoomRate"):
            room, plan = room_rate.get("RoomTypeCode") or "", room_rate.get("RatePlanCode") or ""
            if not room:
                raise RecordError("RoomRate/@RoomTypeCode is missing")
            count = room_rate.get("NumberOfUnits") or units.get(room)
            for rate in local_all(room_rate, "Rate"):
                start = _day(rate.get("EffectiveDate"), "Rate/@EffectiveDate")
                end = _day(rate.get("ExpireDate") or rate.get("EffectiveDate"), "Rate/@ExpireDate")
                if (rate.get("ExpireDateExclusiveInd") or "").lower() == "true":
                    end -= timedelta(days=1)
                base = local(rate, "Base")
                if base is None:
                    raise RecordError("Rate/Base is missing")
                amount, currency = _amount(base, "Rate/Base")
                try:
                    available = int(count) if count is not None else None
                except ValueError:
                    raise RecordError(f"NumberOfUnits is not a whole number: {count!r}") from None
                rows.append(HotelRow(position, hotel.code, room, plan, start, end, amount=amount, currency=currency,
                                     available=available, board=boards.get(plan, ""), hotel=hotel))
        if not rows:
            raise RecordError("The RoomStay has no RoomRate")
        yield from rows
