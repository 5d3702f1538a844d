"""Demo inventory for `make run`: two shared suppliers (hotels as OTA_HotelAvailRS, flights as
Duffel-shaped offers) and one agency's own negotiated hotel rates, for the coming weeks. The
messages are written in the suppliers' formats and go through the same path as a real push
(``services.run_file``: parse, validate, COPY, upsert). Re-running refreshes them once they no
longer reach three weeks ahead."""
import json
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path

from django.db import connection
from django.utils import timezone

from tenants.models import Agency

from . import services
from .models import Feed, FeedRun, HotelRate, Supplier

DAYS = 75
NS = 'xmlns="http://www.opentravel.org/OTA/2003/05"'
# city code, country, [(hotel code, name, chain, base nightly CNY)]
HOTELS = [
    ("SHA", "CN", [("SHAPUD", "浦东香格里拉大酒店 Pudong Shangri-La", "SG", 1280), ("SHABND", "外滩华尔道夫 Waldorf Astoria Bund", "WA", 2380),
                   ("SHAJJ1", "锦江之星 上海人民广场店 Jinjiang Inn People's Square", "JJ", 420)]),
    ("BJS", "CN", [("BJSCWH", "北京国贸大酒店 China World Summit Wing", "SG", 1680), ("BJSHYT", "北京东方君悦 Grand Hyatt Beijing", "HY", 1350),
                   ("BJSHJ2", "汉庭 北京王府井店 Hanting Wangfujing", "HT", 380)]),
    ("SZX", "CN", [("SZXFTS", "深圳福田香格里拉 Futian Shangri-La", "SG", 1150), ("SZXMAR", "深圳万豪 Shenzhen Marriott", "MC", 980)]),
    ("CAN", "CN", [("CANWHT", "广州白天鹅宾馆 White Swan Hotel", "WS", 1080), ("CANHIL", "广州希尔顿 Hilton Guangzhou", "HH", 860)]),
    ("CTU", "CN", [("CTUSHA", "成都香格里拉 Shangri-La Chengdu", "SG", 980), ("CTUJJ3", "锦江之星 成都春熙路 Jinjiang Inn Chunxi Road", "JJ", 320)]),
    ("HGH", "CN", [("HGHFSH", "杭州四季 Four Seasons Hangzhou", "FS", 2680), ("HGHHYT", "杭州凯悦 Hyatt Regency Hangzhou", "HY", 1050)]),
    ("TYO", "JP", [("TYOPEN", "東京半島酒店 The Peninsula Tokyo", "PE", 3900), ("TYOTOK", "东急 Shibuya Excel Tokyu", "TK", 1350)]),
    ("OSA", "JP", [("OSACON", "大阪康莱德 Conrad Osaka", "HH", 2600)]),
    ("SEL", "KR", [("SELLOT", "乐天酒店首尔 Lotte Hotel Seoul", "LT", 1500)]),
    ("BKK", "TH", [("BKKMOH", "曼谷文华东方 Mandarin Oriental Bangkok", "MO", 2900), ("BKKNOV", "曼谷诺富特 Novotel Sukhumvit", "NV", 620)]),
    ("SIN", "SG", [("SINMBS", "滨海湾金沙 Marina Bay Sands", "MB", 3600)]),
    ("HKG", "HK", [("HKGPEN", "香港半岛酒店 The Peninsula Hong Kong", "PE", 3500)]),
    ("PAR", "FR", [("PARRTZ", "巴黎丽兹 Ritz Paris", "RZ", 9800), ("PARIBS", "宜必思 巴黎巴士底 ibis Bastille", "IB", 880)]),
    ("LON", "GB", [("LONSAV", "伦敦萨沃伊 The Savoy", "FM", 5200)]),
]
ROUTES = [("PEK", "SHA", "CA", 135), ("PEK", "PVG", "MU", 140), ("PEK", "CAN", "CZ", 200), ("PEK", "SZX", "CA", 215),
          ("PVG", "CAN", "MU", 150), ("SHA", "SZX", "FM", 155), ("PEK", "CTU", "3U", 185), ("PVG", "HGH", "MU", 55),
          ("PVG", "NRT", "NH", 185), ("PEK", "ICN", "KE", 125), ("CAN", "BKK", "CZ", 185), ("PVG", "SIN", "SQ", 330),
          ("PEK", "CDG", "AF", 690), ("PVG", "LHR", "VS", 780)]


def _avail_rs(start: date, days: int, *, own: bool = False) -> str:
    """One OTA_HotelAvailRS with a week-long rate range per room and plan (the rate varies by week)."""
    stays = []
    for city, country, hotels in HOTELS:
        if own and city not in ("SHA", "BJS", "SZX"):
            continue
        for code, name, chain, base in hotels:
            rooms = [("STD", "BAR", "19", 1.0), ("STD", "RO", "14", 0.88), ("DLX", "BAR", "19", 1.35)]
            if own:
                rooms = [("STD", "CORP", "19", 0.8)]  # the agency's negotiated corporate rate, breakfast included
            room_rates = []
            for room, plan, meal, factor in rooms:
                rates = []
                for week in range(0, days, 7):
                    first = start + timedelta(days=week)
                    last = min(first + timedelta(days=6), start + timedelta(days=days - 1))
                    amount = round(base * factor * (1.15 if (week // 7) % 4 == 3 else 1.0))
                    rates.append(f'<Rate EffectiveDate="{first}" ExpireDate="{last}"><Base AmountAfterTax="{amount}.00" '
                                 'CurrencyCode="CNY"/></Rate>')
                room_rates.append(f'<RoomRate RoomTypeCode="{room}" RatePlanCode="{plan}" NumberOfUnits="{5 if own else 8}">'
                                  f'<Rates>{"".join(rates)}</Rates></RoomRate>')
            plans = "".join(f'<RatePlan RatePlanCode="{plan}"><MealsIncluded MealPlanCodes="{meal}"/></RatePlan>'
                            for _r, plan, meal, _f in rooms)
            stays.append(f'<RoomStay><RatePlans>{plans}</RatePlans><RoomRates>{"".join(room_rates)}</RoomRates>'
                         f'<BasicPropertyInfo HotelCode="{code}" HotelName="{name}" ChainCode="{chain}" HotelCityCode="{city}">'
                         f'<Address><CountryName Code="{country}"/></Address></BasicPropertyInfo></RoomStay>')
    return (f'<?xml version="1.0" encoding="UTF-8"?><OTA_HotelAvailRS {NS} Version="6.000"><Success/>'
            f'<RoomStays>{"".join(stays)}</RoomStays></OTA_HotelAvailRS>')


def _offers(start: date, days: int) -> str:
    offers = []
    n = 0
    for origin, destination, carrier, minutes in ROUTES:
        for a, b in ((origin, destination), (destination, origin)):
            for day in range(days):
                when = start + timedelta(days=day)
                for hour, cabin, fare, brand, price_factor in ((8, "economy", 1.0, "Economy Flex", 1.0),
                                                               (13, "economy", 0.8, "Economy Saver", 0.8),
                                                               (18, "business", 3.2, "Business", 3.2)):
                    n += 1
                    departing = datetime.combine(when, time(hour, 5 * (n % 12)))
                    arriving = departing + timedelta(minutes=minutes)
                    price = round((400 + minutes * 6) * price_factor)
                    segment = {"origin": {"iata_code": a}, "destination": {"iata_code": b},
                               "departing_at": departing.isoformat(), "arriving_at": arriving.isoformat(),
                               "marketing_carrier": {"iata_code": carrier}, "marketing_carrier_flight_number": str(100 + n % 900),
                               "passengers": [{"cabin_class": cabin, "baggages": [{"type": "checked", "quantity": 2 if cabin == "business" else 1}]}]}
                    offers.append({"id": f"off_demo_{n}", "total_amount": f"{price}.00", "total_currency": "CNY",
                                   "expires_at": (timezone.now() + timedelta(days=days + 7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "owner": {"iata_code": carrier},
                                   "slices": [{"origin": {"iata_code": a}, "destination": {"iata_code": b},
                                               "duration": f"PT{minutes // 60}H{minutes % 60}M", "fare_brand_name": brand,
                                               "segments": [segment]}]})
    return json.dumps({"data": {"offers": offers}}, ensure_ascii=False)


def _feed(supplier: Supplier, name: str, connector: str, agency: Agency | None = None) -> Feed:
    feed = Feed.objects.unscoped().filter(supplier=supplier, name=name).first()
    if feed is None:
        feed = services.feed_save(Feed(supplier=supplier, name=name, connector=connector, mode=Feed.Mode.PUSH,
                                       agency=agency, stale_after_minutes=7 * 24 * 60))
    return feed


def _push(feed: Feed, content: str) -> FeedRun:
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".msg", delete=False) as out:
        out.write(content)
    return services.run_file(feed, Path(out.name), trigger=FeedRun.Trigger.PUSH)


def seed_inventory(own_rates_for: Agency | None = None) -> dict:
    """Shared hotel and flight inventory for the next ``DAYS`` days, and ``own_rates_for``'s negotiated
    hotel rates. Does nothing while the hotel inventory still reaches three weeks ahead."""
    connection.set_schema_to_public()
    today = timezone.localdate()
    hotels = Supplier.objects.get_or_create(code="demo-hotelhub", defaults={"name": "HotelHub 酒店通", "kind": "hotel"})[0]
    air = Supplier.objects.get_or_create(code="demo-skyoffers", defaults={"name": "SkyOffers 天合航旅", "kind": "air"})[0]
    hotel_feed = _feed(hotels, "Channel manager (OTA)", "ota_hotel")
    if HotelRate.objects.unscoped().filter(feed=hotel_feed, night__gte=today + timedelta(days=21)).exists():
        return {}
    counts = {"hotel rates": _push(hotel_feed, _avail_rs(today, DAYS)).rows_accepted,
              "flight offers": _push(_feed(air, "Offers (JSON)", "air_offers"), _offers(today + timedelta(days=1), 60)).rows_accepted}
    if own_rates_for is not None:
        own = _feed(hotels, f"{own_rates_for.slug} corporate rates", "ota_hotel", agency=own_rates_for)
        counts["own rates"] = _push(own, _avail_rs(today, DAYS, own=True)).rows_accepted
    return counts
