"""Supplier feeds: ingestion speed end to end from the raw message, peak memory on a large XML file,
and hotel search latency.

    .venv/bin/python -m infra.devenv bench integrations

1. HOTEL_ROWS nightly rates as one OTA_HotelRateAmountNotifRQ (one RateAmountMessage per night, the
   worst case for the parser; 500 properties × 2 room types) after their OTA_HotelAvailRS: rows per
   second from the file on disk to committed rows (parse, validate, COPY to staging, upsert).
   Target ≥ 20,000 rows/s.
2. FLIGHT_OFFERS Duffel-shaped offers (1–2 segments each): offers per second, same path.
3. Peak memory of a run over a ~200 MB OTA file, measured as the maximum resident size of a child
   process doing only that run (target ≤ 300 MB).
4. Hotel search p95 over SEARCH_ROWS rate rows (grown with COPY into the same table): 200 searches
   for random cities and stays of 1–5 nights. Target ≤ 100 ms. Then the same through the API
   (``GET /api/v1/inventory/hotels/`` with a token, in process: what the server spends per request).
Everything made here is removed afterwards (its own supplier and feeds).
"""
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

HOTEL_ROWS = int(os.environ.get("BENCH_HOTEL_ROWS", "100000"))
FLIGHT_OFFERS = int(os.environ.get("BENCH_FLIGHT_OFFERS", "50000"))
BIG_MB = int(os.environ.get("BENCH_BIG_MB", "200"))
SEARCH_ROWS = int(os.environ.get("BENCH_SEARCH_ROWS", "1000000"))
CITIES = ["SHA", "BJS", "CAN", "SZX", "CTU", "HGH", "XMN", "SYX", "TYO", "OSA", "SEL", "BKK", "SIN", "HKG", "LON",
          "PAR", "NYC", "SYD", "KMG", "CKG"]
START = date(2027, 3, 1)
NS = 'xmlns="http://www.opentravel.org/OTA/2003/05"'


def avail_rs(hotels: int) -> str:
    stays = "".join(
        f'<RoomStay><RoomRates><RoomRate RoomTypeCode="DLK" RatePlanCode="BAR"><Rates><Rate EffectiveDate="{START}" '
        f'ExpireDate="{START}"><Base AmountAfterTax="800.00" CurrencyCode="CNY"/></Rate></Rates></RoomRate></RoomRates>'
        f'<BasicPropertyInfo HotelCode="B{h:05d}" HotelName="基准酒店 Bench Hotel {h}" ChainCode="BH" '
        f'HotelCityCode="{CITIES[h % len(CITIES)]}"/></RoomStay>' for h in range(hotels))
    return f'<?xml version="1.0" encoding="UTF-8"?><OTA_HotelAvailRS {NS}><Success/><RoomStays>{stays}</RoomStays></OTA_HotelAvailRS>'


def rate_notif(path: Path, hotels: int, rows: int) -> None:
    nights = max(1, rows // (hotels * 2))
    with open(path, "w", encoding="utf-8") as out:
        out.write(f'<?xml version="1.0" encoding="UTF-8"?><OTA_HotelRateAmountNotifRQ {NS} Version="3.000">')
        written = 0
        for h in range(hotels):
            out.write(f'<RateAmountMessages HotelCode="B{h:05d}">')
            for room in ("DLK", "TWN"):
                for n in range(nights):
                    if written >= rows:
                        break
                    day = START + timedelta(days=n)
                    out.write(f'<RateAmountMessage><StatusApplicationControl Start="{day}" End="{day}" InvTypeCode="{room}" '
                              f'RatePlanCode="BAR"/><Rates><Rate><BaseByGuestAmts><BaseByGuestAmt AmountAfterTax='
                              f'"{500 + (h * 7 + n * 13) % 900}.00" CurrencyCode="CNY"/></BaseByGuestAmts></Rate></Rates>'
                              '</RateAmountMessage>')
                    written += 1
            out.write("</RateAmountMessages>")
        out.write("</OTA_HotelRateAmountNotifRQ>")


def offers(path: Path, count: int) -> None:
    airports = ["PEK", "PVG", "SHA", "CAN", "SZX", "CTU", "HGH", "XMN", "KMG", "CKG"]
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"data": {"offers": [')
        for i in range(count):
            a, b = random.sample(airports, 2)
            day = START + timedelta(days=i % 60)
            hour = 6 + i % 14
            segment = ('{"origin": {"iata_code": "%s"}, "destination": {"iata_code": "%s"}, "departing_at": "%sT%02d:00:00",'
                       ' "arriving_at": "%sT%02d:30:00", "marketing_carrier": {"iata_code": "CA"},'
                       ' "marketing_carrier_flight_number": "%d", "passengers": [{"cabin_class": "economy",'
                       ' "baggages": [{"type": "checked", "quantity": 1}]}]}') % (a, b, day, hour, day, hour + 2, 1000 + i % 8000)
            out.write(("," if i else "") + '{"id": "off_bench_%d", "total_amount": "%d.00", "total_currency": "CNY",'
                      ' "slices": [{"origin": {"iata_code": "%s"}, "destination": {"iata_code": "%s"}, "duration":'
                      ' "PT2H30M", "fare_brand_name": "Economy", "segments": [%s]}]}' % (i, 600 + i % 2000, a, b, segment))
        out.write("]}}")


def big_file(path: Path, megabytes: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(f'<?xml version="1.0" encoding="UTF-8"?><OTA_HotelRateAmountNotifRQ {NS}><RateAmountMessages HotelCode="B00000">')
        message = ('<RateAmountMessage><StatusApplicationControl Start="{d}" End="{d}" InvTypeCode="R{r}" RatePlanCode="BAR"/>'
                   '<Rates><Rate><BaseByGuestAmts><BaseByGuestAmt AmountAfterTax="880.00" CurrencyCode="CNY"/>'
                   '</BaseByGuestAmts></Rate></Rates></RateAmountMessage>')
        r = 0
        while out.tell() < megabytes * 1024 * 1024:
            out.write("".join(message.format(d=START + timedelta(days=n), r=r) for n in range(365)))
            r += 1
        out.write("</RateAmountMessages></OTA_HotelRateAmountNotifRQ>")


def main() -> int:
    if sys.argv[1:2] == ["--memory-child"]:
        return memory_child(int(sys.argv[2]), Path(sys.argv[3]))
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate_platform", verbosity=0)
    from integrations import services
    from integrations.models import Feed, HotelRate, Supplier

    Supplier.objects.filter(code__startswith="bench-").delete()
    hotels_supplier = Supplier.objects.create(code="bench-hotels", name="Bench hotels", kind="hotel")
    air_supplier = Supplier.objects.create(code="bench-air", name="Bench air", kind="air")
    hotel_feed = services.feed_save(Feed(supplier=hotels_supplier, name="rates", connector="ota_hotel", mode="push"))
    air_feed = services.feed_save(Feed(supplier=air_supplier, name="offers", connector="air_offers", mode="push"))
    work = Path(tempfile.mkdtemp(prefix="bench-feeds-"))
    try:
        hotels = 500
        (work / "avail.xml").write_text(avail_rs(hotels), encoding="utf-8")
        services.run_file(hotel_feed, work / "avail.xml", trigger="manual")
        rate_notif(work / "rates.xml", hotels, HOTEL_ROWS)
        run, size, seconds = timed_run(services, hotel_feed, work / "rates.xml")
        print(f"hotel rates: {run.rows_accepted:,} rows ({size / 1e6:.1f} MB OTA XML) in {seconds:.2f} s = "
              f"{run.rows_accepted / seconds:,.0f} rows/s end to end (target >= 20,000)")

        offers(work / "offers.json", FLIGHT_OFFERS)
        run, size, seconds = timed_run(services, air_feed, work / "offers.json")
        print(f"flight offers: {run.rows_accepted:,} offers ({size / 1e6:.1f} MB JSON) in {seconds:.2f} s = "
              f"{run.rows_accepted / seconds:,.0f} offers/s end to end")

        big_file(work / "big.xml", BIG_MB)
        size = (work / "big.xml").stat().st_size
        child = subprocess.run([sys.executable, __file__, "--memory-child", str(hotel_feed.pk), str(work / "big.xml")],
                               capture_output=True, text=True, env=os.environ.copy())
        print(child.stdout.strip() or child.stderr[-2000:])

        # Search over SEARCH_ROWS rows: grow the table with COPY (synthetic nights for the bench hotels).
        existing = HotelRate.objects.unscoped().filter(feed=hotel_feed).count()
        missing = max(0, SEARCH_ROWS - existing)
        hotel_rows = list(hotels_supplier.hotels.values_list("id", "city_code"))
        with connection.cursor() as cursor, cursor.copy(
                f"COPY {HotelRate._meta.db_table} (feed_id, hotel_id, city_code, night, room_type, rate_plan, board, "
                "amount, currency, available, updated_at) FROM STDIN") as copy:
            per_hotel = missing // len(hotel_rows) + 1
            written = 0
            for hotel_id, city in hotel_rows:
                for k in range(per_hotel):
                    if written >= missing:
                        break
                    plan, night = divmod(k, 400)
                    copy.write_row((hotel_feed.pk, hotel_id, city, START + timedelta(days=400 + night), "STD",
                                    f"P{plan}", "BB", 300 + (hotel_id * 31 + k) % 1500, "CNY", 5, "now"))
                    written += 1
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {HotelRate._meta.db_table}")
        total_rows = HotelRate.objects.unscoped().count()
        from django_tenants.utils import tenant_context

        from integrations import search
        from tenants.models import Agency

        agency = Agency.objects.agencies().first()
        if agency is None:
            from tenants.services import agency_onboard

            agency = agency_onboard(name="Bench feeds", slug="bench-feeds", plan="starter",
                                    admin_email="admin@bench-feeds.test", actor="bench").agency
        timings = []
        rng = random.Random(8)
        with tenant_context(agency):
            for _ in range(200):
                stay = random_stay(rng)
                started = time.perf_counter()
                search.hotel_search(**stay)
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        print(f"hotel search over {total_rows:,} rate rows: p50 {statistics.median(timings):.1f} ms, "
              f"p95 {timings[int(len(timings) * 0.95) - 1]:.1f} ms (target p95 <= 100 ms), 200 searches")
        api_search(agency, rng)
    finally:
        Supplier.objects.filter(code__startswith="bench-").delete()
        for path in work.glob("*"):
            path.unlink()
        work.rmdir()
    return 0


def timed_run(services, feed, path: Path):
    """Run a feed on the message at ``path``: the run, the message's size, the seconds it took."""
    size = path.stat().st_size
    started = time.perf_counter()
    run = services.run_file(feed, path, trigger="manual")
    seconds = time.perf_counter() - started
    assert run.status == "succeeded", run.error
    return run, size, seconds


def random_stay(rng) -> dict:
    """A search: a random city, a check-in within the bench's nights, 1–5 nights."""
    check_in = START + timedelta(days=rng.randrange(0, 700))
    return {"city": rng.choice(CITIES), "check_in": check_in, "check_out": check_in + timedelta(days=rng.randint(1, 5))}


def api_search(agency, rng) -> None:
    """The same searches through the API, in process (middleware, token, serializer; no network)."""
    from django.test import Client
    from django_tenants.utils import tenant_context
    from accounts.scopes import all_scopes
    from accounts.tokens import token_create

    from accounts.models import User

    with tenant_context(agency):
        user, _ = User.objects.get_or_create(email="bench-inventory@bench.test",
                                             defaults={"full_name": "Bench", "role": "sales"})
        _token, secret = token_create(user=user, name="bench", scopes=all_scopes())
    client = Client(HTTP_HOST=agency.get_primary_domain().domain, HTTP_AUTHORIZATION=f"Token {secret}")
    timings = []
    try:
        for _ in range(200):
            query = {name: str(value) for name, value in random_stay(rng).items()}
            started = time.perf_counter()
            response = client.get("/api/v1/inventory/hotels/", query)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:300]
    finally:
        with tenant_context(agency):
            user.delete()
    timings.sort()
    print(f"hotel search through the API (GET /api/v1/inventory/hotels/, in process): p50 "
          f"{statistics.median(timings):.1f} ms, p95 {timings[int(len(timings) * 0.95) - 1]:.1f} ms, 200 requests")


def memory_child(feed_id: int, path: Path) -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from integrations.ingest import ingest
    from integrations.models import Feed

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    run = ingest(Feed.objects.unscoped().get(pk=feed_id), path, trigger="manual")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"large file: {path.stat().st_size / 1e6:.0f} MB OTA XML, {run.rows_accepted:,} rows in {seconds:.1f} s "
          f"({run.status}); peak memory {peak:.0f} MB (process after start-up {before:.0f} MB; target <= 300 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
