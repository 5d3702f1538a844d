"""Connectors: one small class per supplier format behind one interface (see ``base.Connector``).
Adding a supplier format is one module here, registered in ``CONNECTORS``, plus its tests."""
from .air_offers import AirOffersJson
from .base import Connector, HotelRow, MessageRefused, OfferRow, Rejected
from .ota_hotel import OtaHotel

CONNECTORS: dict[str, type[Connector]] = {c.key: c for c in (OtaHotel, AirOffersJson)}

__all__ = ["CONNECTORS", "Connector", "HotelRow", "MessageRefused", "OfferRow", "Rejected"]
