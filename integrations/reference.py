"""Reference data the feeds are checked against, from well-kept packages: IATA airports with their
city, country and time zone (``airportsdata``), ISO 4217 currencies and ISO 3166 countries
(``pycountry``). Hotels are placed by IATA *city* code: an airport's code, or one of the
metropolitan codes below that name a city with several airports."""
import zoneinfo
from functools import lru_cache

import airportsdata
import pycountry

# IATA metropolitan-area codes that are not themselves an airport: code → (city, country, time zone).
METRO_CODES = {
    "BJS": ("Beijing", "CN", "Asia/Shanghai"), "TYO": ("Tokyo", "JP", "Asia/Tokyo"),
    "OSA": ("Osaka", "JP", "Asia/Tokyo"), "SEL": ("Seoul", "KR", "Asia/Seoul"),
    "LON": ("London", "GB", "Europe/London"), "PAR": ("Paris", "FR", "Europe/Paris"),
    "MIL": ("Milan", "IT", "Europe/Rome"), "ROM": ("Rome", "IT", "Europe/Rome"),
    "NYC": ("New York", "US", "America/New_York"), "WAS": ("Washington", "US", "America/New_York"),
    "CHI": ("Chicago", "US", "America/Chicago"), "YTO": ("Toronto", "CA", "America/Toronto"),
    "MOW": ("Moscow", "RU", "Europe/Moscow"), "STO": ("Stockholm", "SE", "Europe/Stockholm"),
    "BER": ("Berlin", "DE", "Europe/Berlin"), "SAO": ("São Paulo", "BR", "America/Sao_Paulo"),
}
BOARDS = {"RO", "BB", "HB", "FB", "AI"}


@lru_cache(maxsize=1)
def airports() -> dict[str, dict]:
    return airportsdata.load("IATA")


def airport(code: str) -> dict | None:
    return airports().get((code or "").upper())


def city(code: str) -> tuple[str, str, str] | None:
    """(city name, country, time zone) of an IATA city or airport code, or None."""
    code = (code or "").upper()
    if code in METRO_CODES:
        return METRO_CODES[code]
    found = airports().get(code)
    return (found["city"], found["country"], found["tz"]) if found else None


def time_zone(airport_code: str) -> zoneinfo.ZoneInfo | None:
    found = airport(airport_code)
    return zoneinfo.ZoneInfo(found["tz"]) if found and found.get("tz") else None


@lru_cache(maxsize=512)
def is_currency(code: str) -> bool:
    return len(code or "") == 3 and pycountry.currencies.get(alpha_3=code.upper()) is not None


@lru_cache(maxsize=512)
def is_country(code: str) -> bool:
    return len(code or "") == 2 and pycountry.countries.get(alpha_2=code.upper()) is not None


def city_choices() -> list[tuple[str, str]]:
    """Codes a hotel search offers first: the metropolitan codes (airports are typed)."""
    return sorted(((code, f"{name} ({code})") for code, (name, _c, _z) in METRO_CODES.items()), key=lambda c: c[1])
