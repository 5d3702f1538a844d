"""The connector interface: ``parse(stream)`` yields normalised rows or ``Rejected`` records, one by
one, from a binary stream of the supplier's message (fetching, validating codes against reference
data and writing are shared: ``integrations.ingest``).

A connector raises ``MessageRefused`` when the message as a whole cannot be trusted (not its format,
hostile XML, malformed or cut off): the run fails and the inventory stays as it was. A bad *record*
is yielded as ``Rejected`` with a reason and the run goes on."""
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import BinaryIO, ClassVar, Iterator


class MessageRefused(Exception):
    """The whole message is refused; the reason is safe to show operators (no message content)."""


@dataclass(slots=True)
class Rejected:
    position: str
    reason: str
    reference: str = ""
    raw: str = ""


@dataclass(slots=True)
class HotelInfo:
    """A property as a message describes it (OTA_HotelAvailRS BasicPropertyInfo)."""
    code: str
    name: str
    chain_code: str = ""
    city_code: str = ""
    country: str = ""


@dataclass(slots=True)
class HotelRow:
    """Nights ``start``…``end`` (inclusive) of a room type under a rate plan: a rate, availability, or both."""
    position: str
    hotel_code: str
    room_type: str
    rate_plan: str
    start: date
    end: date
    amount: Decimal | None = None
    currency: str = ""
    available: int | None = None
    board: str = ""
    hotel: HotelInfo | None = None


@dataclass(slots=True)
class Segment:
    origin: str
    destination: str
    departure: datetime  # aware
    arrival: datetime  # aware
    carrier: str
    flight_number: str
    cabin: str
    operating_carrier: str = ""
    aircraft: str = ""


@dataclass(slots=True)
class Slice:
    origin: str
    destination: str
    duration_minutes: int
    fare_brand: str
    segments: list[Segment] = field(default_factory=list)


@dataclass(slots=True)
class OfferRow:
    position: str
    offer_id: str
    price: Decimal
    currency: str
    slices: list[Slice]
    checked_bags: int = 0
    expires_at: datetime | None = None


class Connector:
    key: ClassVar[str]
    label: ClassVar[str]
    kind: ClassVar[str]  # Supplier.Kind
    content_type: ClassVar[str]

    def parse(self, stream: BinaryIO) -> Iterator[HotelRow | OfferRow | HotelInfo | Rejected]:
        raise NotImplementedError
