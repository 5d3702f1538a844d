"""Supplier feeds (R-INT-1 … R-INT-3): the OTA hotel and Duffel-shaped flight connectors on recorded
sample messages (valid, malformed, hostile, partial), runs that fail leave the inventory as it was,
quarantine, pull from a local HTTP server, signed pushes, health alerts, the operators' pages, search
with the policy verdict, adding to a trip, and the fence between agencies' own rates."""
import hashlib
import hmac
import shutil
import threading
import time
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import tenant_context

from integrations import search, services
from integrations.models import Feed, FeedRun, FlightOffer, Hotel, HotelRate, QuarantinedRecord, Supplier
from tests.conftest import host
from tests.policy_factories import setup_account, trip_with_items

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parent / "data" / "feeds"
DEC1, DEC2, DEC3, DEC4 = date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3), date(2026, 12, 4)


@pytest.fixture(autouse=True)
def _spool(settings, tmp_path):
    settings.FEED_SPOOL_DIR = tmp_path / "spool"


def hotel_feed(agency=None, **fields) -> Feed:
    supplier, _ = Supplier.objects.get_or_create(code="hotelbeds-cn", defaults={"name": "HotelHub 酒店通", "kind": "hotel"})
    return services.feed_save(Feed(supplier=supplier, name=fields.pop("name", "Rates"), connector="ota_hotel",
                                   mode=fields.pop("mode", "push"), agency=agency, **fields))


def air_feed(agency=None) -> Feed:
    supplier, _ = Supplier.objects.get_or_create(code="skyoffers", defaults={"name": "SkyOffers", "kind": "air"})
    return services.feed_save(Feed(supplier=supplier, name="Offers", connector="air_offers", mode="push", agency=agency))


def run(feed: Feed, name: str | None = None, *, content: bytes | None = None, tmp=None) -> FeedRun:
    path = Path(tmp or "/tmp") / f"feed-{time.monotonic_ns()}.msg"
    if content is not None:
        path.write_bytes(content)
    else:
        shutil.copy(SAMPLES / name, path)
    result = services.run_file(feed, path, trigger=FeedRun.Trigger.PUSH)
    assert not path.exists()  # supplier messages are not kept once read
    return result


def rates(feed) -> dict:
    return {(r.hotel.code, r.room_type, r.night): (r.amount, r.available) for r in
            HotelRate.objects.unscoped().filter(feed=feed).select_related("hotel")}


# --- the OTA hotel connector ------------------------------------------------------------------------

def test_ota_avail_rs_makes_properties_and_nightly_rates_and_quarantines_bad_stays():
    feed = hotel_feed()
    done = run(feed, "ota_hotel_avail_rs.xml")
    assert (done.status, done.message_type) == ("succeeded", "OTA_HotelAvailRS")
    assert (done.rows_accepted, done.rows_rejected) == (3 + 3 + 3, 2)  # DLK 3 nights, EXT 3, JJ 3
    pudong = Hotel.objects.get(code="SHAPUD")
    assert (pudong.name, pudong.chain_code, pudong.city_code, pudong.country) == (
        "浦东香格里拉大酒店 Pudong Shangri-La", "SG", "SHA", "CN")
    got = rates(feed)
    assert got[("SHAPUD", "DLK", DEC1)] == (Decimal("1280.00"), 4)
    assert got[("SHAPUD", "DLK", DEC3)] == (Decimal("1480.00"), 4)  # ExpireDateExclusiveInd: the 4th is not in
    assert ("SHAPUD", "DLK", DEC4) not in got
    assert got[("SHAPUD", "EXT", DEC3)] == (Decimal("980.00"), 2)  # DecimalPlaces="2"
    assert HotelRate.objects.unscoped().get(feed=feed, hotel=pudong, room_type="DLK", night=DEC1).board == "BB"
    reasons = {q.reference: q.reason for q in QuarantinedRecord.objects.unscoped().filter(run=done)}
    assert "ISO 4217" in reasons["SHABAD"] and "IATA city" in reasons["ZZZ001"]
    assert not Hotel.objects.filter(code="ZZZ001").exists()  # (SHABAD is a valid property; its rate was bad)
    again = run(feed, "ota_hotel_avail_rs.xml")  # the same message again: nothing doubles
    assert again.status == "succeeded" and HotelRate.objects.unscoped().filter(feed=feed).count() == 9


def test_rate_and_availability_notifications_merge_into_the_nights():
    feed = hotel_feed()
    run(feed, "ota_hotel_avail_rs.xml")
    rates_run = run(feed, "ota_rate_amount_notif.xml")
    assert (rates_run.rows_accepted, rates_run.rows_rejected) == (1 + 3, 3)
    reasons = [q.reason for q in QuarantinedRecord.objects.unscoped().filter(run=rates_run)]
    assert any("before the start" in r for r in reasons) and any("zero or more" in r for r in reasons)
    assert any("unknown property UNKNOWN9" in r for r in reasons)
    got = rates(feed)
    assert got[("SHAPUD", "DLK", DEC2)] == (Decimal("1180.00"), 4)  # the new rate; availability kept
    assert got[("SHAPUD", "DLK", date(2026, 12, 6))] == (Decimal("1350.00"), None)
    avail = run(feed, "ota_avail_notif.xml")
    assert (avail.rows_accepted, avail.rows_rejected) == (1 + 2, 1)
    got = rates(feed)
    assert got[("SHAPUD", "DLK", DEC3)] == (Decimal("1480.00"), 0)  # closed, rate kept
    assert got[("SHAPUD", "EXT", DEC1)] == (Decimal("980.00"), 0)


def test_a_message_in_gb18030_reads_the_same(tmp_path):
    feed = hotel_feed()
    text = (SAMPLES / "ota_hotel_avail_rs.xml").read_text(encoding="utf-8").replace('encoding="UTF-8"', 'encoding="GB18030"')
    done = run(feed, content=text.encode("gb18030"), tmp=tmp_path)
    assert done.status == "succeeded" and Hotel.objects.get(code="SHAJJ1").name == "锦江之星 上海人民广场店"


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<OTA_HotelAvailRS><RoomStays><RoomStay><BasicPropertyInfo HotelCode="X" HotelName="&lol3;" HotelCityCode="SHA"/>
</RoomStay></RoomStays></OTA_HotelAvailRS>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<OTA_HotelAvailRS><RoomStays><RoomStay><BasicPropertyInfo HotelCode="X" HotelName="&x;" HotelCityCode="SHA"/></RoomStay></RoomStays></OTA_HotelAvailRS>"""


@pytest.mark.parametrize("content, expected", [
    (BOMB, "DTD"),
    (XXE, "DTD"),
    (b"", "empty"),
    (b"<OTA_HotelResNotifRQ/>", "Not an OTA hotel message"),
    ('<?xml version="1.0" encoding="UTF-8"?><OTA_HotelAvailRS><RoomStays><RoomStay><BasicPropertyInfo HotelCode="A" '
     'HotelName="上海" HotelCityCode="SHA"/></RoomStay></RoomStays></OTA_HotelAvailRS>'.encode("gbk"), "encoding"),
    (b'<OTA_HotelAvailRS><Errors><Error Type="3" ShortText="Hotel not active"/></Errors></OTA_HotelAvailRS>',
     "Hotel not active"),
])
def test_hostile_and_malformed_messages_fail_the_run_and_change_nothing(content, expected, tmp_path):
    feed = hotel_feed()
    run(feed, "ota_hotel_avail_rs.xml")
    before = rates(feed)
    failed = run(feed, content=content, tmp=tmp_path)
    assert failed.status == "failed" and expected.lower() in failed.error.lower()
    assert rates(feed) == before and not QuarantinedRecord.objects.unscoped().filter(run=failed).exists()
    feed.refresh_from_db()
    assert feed.health == Feed.Health.FAILING


def test_a_cut_off_message_fails_as_a_whole_though_its_first_records_were_good(tmp_path):
    feed = hotel_feed()
    whole = (SAMPLES / "ota_rate_amount_notif.xml").read_bytes()
    run(feed, "ota_hotel_avail_rs.xml")
    before = rates(feed)
    failed = run(feed, content=whole[: len(whole) * 2 // 3], tmp=tmp_path)
    assert failed.status == "failed" and "cut-off" in failed.error
    assert rates(feed) == before  # the first RateAmountMessages were read, and nothing of them written


def test_a_message_over_the_size_limit_is_refused(settings, tmp_path):
    settings.FEED_MAX_BYTES = 2000
    feed = hotel_feed()
    failed = run(feed, "ota_hotel_avail_rs.xml")
    assert failed.status == "failed" and "larger than the limit" in failed.error
    assert not HotelRate.objects.unscoped().filter(feed=feed).exists()


# --- the flight-offers connector --------------------------------------------------------------------

def test_flight_offers_are_normalised_with_local_times_and_bad_ones_quarantined():
    feed = air_feed()
    done = run(feed, "duffel_offers.json")
    assert (done.status, done.rows_accepted, done.rows_rejected) == ("succeeded", 3, 3)
    ca = FlightOffer.objects.unscoped().get(offer_id="off_0000AAqH7LhJ0vuA5rqFVb")
    assert (ca.origin, ca.destination, ca.carrier, ca.flight_numbers, ca.cabin, ca.fare_brand, ca.checked_bags) == (
        "PEK", "SHA", "CA", "CA1501", "economy", "Economy Flex", 1)
    assert ca.departure.isoformat() == "2026-12-01T00:00:00+00:00"  # 08:00 in Beijing
    assert (ca.duration_minutes, ca.stops, ca.price, ca.currency) == (135, 0, Decimal("1260.00"), "CNY")
    mu = FlightOffer.objects.unscoped().get(offer_id="off_0000AAqH7LhJ0vuA5rqFVc")
    assert (mu.flight_numbers, mu.stops, mu.duration_minutes) == ("MU5102/MU5523", 1, 280)
    reasons = {q.reference: q.reason for q in QuarantinedRecord.objects.unscoped().filter(run=done)}
    assert set(reasons) == {"off_bad_airport", "off_bad_price", "off_expired"}
    assert "QQQ" in reasons["off_bad_airport"] and "expired" in reasons["off_expired"]
    # Each message is the supplier's current set: a new one replaces the old offers.
    one = b'{"data": [{"id": "off_only", "total_amount": "999", "total_currency": "CNY", "slices": [{"segments": [' \
          b'{"origin": {"iata_code": "PEK"}, "destination": {"iata_code": "CAN"}, "departing_at": "2026-12-02T07:00:00",' \
          b' "arriving_at": "2026-12-02T10:20:00", "marketing_carrier": {"iata_code": "CZ"},' \
          b' "marketing_carrier_flight_number": "3100", "passengers": [{"cabin_class": "economy"}]}]}]}]}'
    assert run(feed, content=one).status == "succeeded"
    assert list(FlightOffer.objects.unscoped().filter(feed=feed).values_list("offer_id", flat=True)) == ["off_only"]


@pytest.mark.parametrize("content, expected", [
    (b'{"data": {"offers": [{"id": "a", "total_amount": "1"', "cut-off"),
    (b'{"offers": []}', "Not a flight-offers document"),
    (b"\xff\xfe\x00garbage", "Malformed"),
])
def test_bad_json_fails_the_run_and_keeps_the_offers(content, expected):
    feed = air_feed()
    run(feed, "duffel_offers.json")
    failed = run(feed, content=content)
    assert failed.status == "failed" and expected in failed.error
    assert FlightOffer.objects.unscoped().filter(feed=feed).count() == 3


# --- delivery: pull, push, health -------------------------------------------------------------------

class _Supplier(BaseHTTPRequestHandler):
    body = b""
    token = "tok-123"
    basic = None  # base64 of "user:password" when the supplier wants HTTP Basic

    def do_GET(self):  # noqa: N802
        if self.headers.get("Authorization") != (f"Basic {self.basic}" if self.basic else f"Bearer {self.token}"):
            self.send_response(401)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def supplier_server(settings):
    """A supplier on this machine: reachable because the operator allows it (OUTBOUND_ALLOWED), as
    an on-premise supplier would be; caravan/outbound.py refuses loopback otherwise."""
    settings.OUTBOUND_ALLOWED = ["127.0.0.1"]
    _Supplier.body = (SAMPLES / "ota_hotel_avail_rs.xml").read_bytes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Supplier)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ota/avail"
    server.shutdown()


def test_a_pulled_feed_fetches_with_its_credentials_on_schedule(supplier_server):
    from integrations.tasks import pull_due

    supplier = Supplier.objects.create(code="pull-hotels", name="Pull Hotels", kind="hotel")
    with pytest.raises(ValidationError) as no_secret:
        services.feed_save(Feed(supplier=supplier, name="Pulled", connector="ota_hotel", mode="pull",
                                endpoint=supplier_server, auth="bearer"))
    assert "secret" in no_secret.value.message_dict
    feed = services.feed_save(Feed(supplier=supplier, name="Pulled", connector="ota_hotel", mode="pull",
                                   endpoint=supplier_server, auth="bearer", schedule_minutes=60), secret="tok-123")
    assert "tok-123" not in services.credential(feed).secret_encrypted  # encrypted at rest
    done = services.run_pull(feed)
    assert (done.status, done.rows_accepted) == ("succeeded", 9)
    Feed.objects.unscoped().filter(pk=feed.pk).update(last_run_at=timezone.now())
    assert services.due_feeds() == []
    Feed.objects.unscoped().filter(pk=feed.pk).update(last_run_at=timezone.now() - timedelta(minutes=61))
    assert [f.pk for f in services.due_feeds()] == [feed.pk]
    assert pull_due() == 1 and pull_due() == 0  # claimed: never queued twice
    services.feed_save(feed, secret="wrong")
    failed = services.run_pull(Feed.objects.unscoped().get(pk=feed.pk))
    assert failed.status == "failed" and "HTTP 401" in failed.error
    assert HotelRate.objects.unscoped().filter(feed=feed).count() == 9


def test_a_pulled_feed_needs_an_address_and_the_format_must_fit_the_supplier():
    supplier = Supplier.objects.create(code="h2", name="H2", kind="hotel")
    with pytest.raises(ValidationError) as missing:
        services.feed_save(Feed(supplier=supplier, name="x", connector="ota_hotel", mode="pull"))
    assert "endpoint" in missing.value.message_dict
    with pytest.raises(ValidationError) as wrong:
        services.feed_save(Feed(supplier=supplier, name="x", connector="air_offers", mode="push"))
    assert "connector" in wrong.value.message_dict


def _signed(secret: str, body: bytes, at: int | None = None) -> str:
    at = at or int(time.time())
    return f"t={at},v1=" + hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()


def test_pushes_are_verified_while_they_stream(client):
    feed = hotel_feed()
    body = (SAMPLES / "ota_hotel_avail_rs.xml").read_bytes()
    secret = services.push_secret(feed)
    url = f"/integrations/push/{feed.push_key}/"
    client.defaults["HTTP_HOST"] = host(None)
    assert client.post(url, body, content_type="application/xml", HTTP_X_CARAVAN_SIGNATURE=_signed("other", body)).status_code == 401
    stale = _signed(secret, body, at=int(time.time()) - 3600)
    assert client.post(url, body, content_type="application/xml", HTTP_X_CARAVAN_SIGNATURE=stale).status_code == 401
    assert client.post("/integrations/push/nope/", body, content_type="application/xml",
                       HTTP_X_CARAVAN_SIGNATURE=_signed(secret, body)).status_code == 404
    on_agency_host = client.post(url, body, content_type="application/xml", HTTP_HOST=host("alpha"),
                                 HTTP_X_CARAVAN_SIGNATURE=_signed(secret, body))
    assert on_agency_host.status_code == 404  # pushes are taken on the platform domain only
    accepted = client.post(url, body, content_type="application/xml", HTTP_X_CARAVAN_SIGNATURE=_signed(secret, body))
    assert accepted.status_code == 202
    [pushed] = list(Path(services._spool(feed).parent).glob("*.msg"))  # waiting for its run
    assert pushed.read_bytes() == body
    assert services.run_file(feed, pushed, trigger="push").rows_accepted == 9
    # A new secret: the old one stops working at once.
    services.push_secret_rotate(feed)
    assert client.post(url, body, content_type="application/xml", HTTP_X_CARAVAN_SIGNATURE=_signed(secret, body)).status_code == 401


def test_stale_and_failing_feeds_alert_operators_once(mailbox, tmp_path):
    from accounts.models import User
    from integrations.tasks import alert_operators

    User.objects.create_user(email="ops@caravan.test", password="x", is_operator=True, full_name="Ops", language="en")
    fresh = hotel_feed(name="Fresh")
    run(fresh, "ota_hotel_avail_rs.xml")
    stale = hotel_feed(name="Stale", stale_after_minutes=60)
    Feed.objects.unscoped().filter(pk=stale.pk).update(last_run_at=timezone.now() - timedelta(hours=3),
                                            last_success_at=timezone.now() - timedelta(hours=3), health="ok")
    failing = hotel_feed(name="Failing")
    run(failing, content=b"<nope", tmp=tmp_path)
    alerted = services.check_health()
    assert {f.name for f in alerted} == {"Stale", "Failing"}
    assert services.check_health() == []  # once per episode
    assert alert_operators.run([f.pk for f in alerted]) >= 1
    [message] = [m for m in mailbox if m["To"] == "ops@caravan.test"]
    assert "Stale" in message.get_payload() and "Failing" in message.get_payload()
    run(failing, "ota_hotel_avail_rs.xml")  # a success ends the episode
    failing.refresh_from_db()
    assert (failing.health, failing.alerted_at) == ("ok", None)


def test_operators_register_suppliers_and_feeds_and_read_the_quarantine(operator_client, page_client):
    assert operator_client.post("/suppliers/new/", {"code": "ota-cn", "name": "携程 OTA", "kind": "hotel",
                                                    "active": "on"}).status_code == 302
    supplier = Supplier.objects.get(code="ota-cn")
    bad = operator_client.post(f"/suppliers/{supplier.pk}/feeds/new/", {
        "name": "Rates", "connector": "ota_hotel", "mode": "pull", "auth": "none", "schedule_minutes": "30",
        "stale_after_minutes": "120", "active": "on"})
    assert bad.status_code == 400 and 'data-field="endpoint"' in bad.content.decode()
    done = operator_client.post(f"/suppliers/{supplier.pk}/feeds/new/", {
        "name": "Rates", "connector": "ota_hotel", "mode": "push", "auth": "none", "schedule_minutes": "30",
        "stale_after_minutes": "120", "active": "on"})
    feed = Feed.objects.unscoped().get(supplier=supplier)
    assert done.status_code == 302
    detail = operator_client.get(f"/feeds/{feed.pk}/").content.decode()
    assert feed.push_key in detail and 'data-test="push-url"' in detail
    finished = run(feed, "ota_hotel_avail_rs.xml")
    listing = operator_client.get("/suppliers/").content.decode()
    assert "携程 OTA" in listing and 'data-test="health">Healthy' in listing
    quarantine = operator_client.get(f"/feeds/runs/{finished.pk}/").content.decode()
    assert "SHABAD" in quarantine and "ISO 4217" in quarantine
    assert page_client("alpha", "admin").get("/suppliers/").status_code == 404  # not on an agency's host


# --- search, policy verdicts, trips, and the fence --------------------------------------------------

def test_hotel_search_prices_whole_stays_and_sorts_filters(alpha):
    feed = hotel_feed()
    run(feed, "ota_hotel_avail_rs.xml")
    run(feed, "ota_rate_amount_notif.xml")
    with tenant_context(alpha):
        found = search.hotel_search(city="sha", check_in=DEC1, check_out=DEC3)
        assert [(r.hotel_code, r.room_type, r.total) for r in found] == [
            ("SHAJJ1", "STD", Decimal("1240.00")), ("SHAPUD", "EXT", Decimal("1960.00")),
            ("SHAPUD", "DLK", Decimal("2460.00"))]
        assert [r.hotel_code for r in search.hotel_search(city="SHA", check_in=DEC1, check_out=DEC3, board="BB")] == ["SHAPUD"]
        assert [r.total for r in search.hotel_search(city="SHA", check_in=DEC1, check_out=DEC3, max_nightly="1000")] \
            == [Decimal("1240.00"), Decimal("1960.00")]
        assert search.hotel_search(city="SHA", check_in=DEC1, check_out=DEC3, sort="-price")[0].room_type == "DLK"
        assert search.hotel_search(city="SHA", check_in=DEC1, check_out=date(2026, 12, 8)) == []  # no full stay
        with pytest.raises(ValidationError) as bad:
            search.hotel_search(city="XQZ", check_in=DEC3, check_out=DEC1)
        assert {"city", "check_out"} <= set(bad.value.message_dict)
    run(feed, "ota_avail_notif.xml")
    with tenant_context(alpha):
        assert "EXT" not in [r.room_type for r in search.hotel_search(city="SHA", check_in=DEC1, check_out=DEC3)]


def test_flight_search_by_airport_or_city_code(alpha):
    feed = air_feed()
    run(feed, "duffel_offers.json")
    with tenant_context(alpha):
        assert [r.flight_numbers for r in search.flight_search(origin="PEK", destination="SHA", day=DEC1)] == [
            "CA1501", "CA1519"]
        assert [r.flight_numbers for r in search.flight_search(origin="BJS", destination="PVG", day=DEC1)] == ["MU5102/MU5523"]
        assert [r.cabin for r in search.flight_search(origin="PEK", destination="SHA", day=DEC1, cabin="business")] == ["business"]
        assert search.flight_search(origin="BJS", destination="PVG", day=DEC1, max_stops=0) == []
        assert search.flight_search(origin="PEK", destination="SHA", day=DEC1, sort="duration")[0].flight_numbers == "CA1519"


def test_an_agencys_own_rates_are_seen_by_it_alone(alpha, bravo):
    shared = hotel_feed()
    run(shared, "ota_hotel_avail_rs.xml")
    own = hotel_feed(agency=alpha, name="Alpha negotiated")
    cheap = (SAMPLES / "ota_rate_amount_notif.xml").read_text().replace("1180.00", "400.00").encode()
    cheap = cheap.replace(b'InvTypeCode="DLK" RatePlanCode="BAR"/>\n      <Rates><Rate><BaseByGuestAmts><BaseByGuestAmt AmountAfterTax="400.00"',
                          b'InvTypeCode="DLK" RatePlanCode="CORP"/>\n      <Rates><Rate><BaseByGuestAmts><BaseByGuestAmt AmountAfterTax="400.00"')
    assert run(own, content=cheap).rows_accepted == 4
    air_own = air_feed(agency=alpha)
    run(air_own, "duffel_offers.json")
    alpha_offer = FlightOffer.objects.unscoped().filter(feed=air_own).first()
    with tenant_context(alpha):
        mine = [r for r in search.hotel_search(city="SHA", check_in=DEC2, check_out=DEC3) if r.own_rate]
        assert [(r.rate_plan, r.total) for r in mine] == [("CORP", Decimal("400.00"))]
        assert search.flight_result(alpha_offer.pk).own_rate
    with tenant_context(bravo):
        assert not any(r.own_rate or r.rate_plan == "CORP" for r in search.hotel_search(city="SHA", check_in=DEC2, check_out=DEC3))
        assert all(not r.own_rate for r in search.flight_search(origin="PEK", destination="SHA", day=DEC1))
        with pytest.raises(ValidationError):
            search.flight_result(alpha_offer.pk)  # another agency's offer id: not found
        with pytest.raises(ValidationError):
            search.hotel_result(mine[0].key, check_in=DEC2, check_out=DEC3)  # another agency's rate key


def test_results_carry_the_travelers_policy_verdict_and_adding_records_it(alpha, page_client):
    feed = air_feed()
    run(feed, "duffel_offers.json")
    hotels = hotel_feed()
    run(hotels, "ota_hotel_avail_rs.xml")
    with tenant_context(alpha):
        account, _boss, traveler, _version = setup_account(alpha)
        trip, _flight, _hotel = trip_with_items(account, traveler)
        results = search.flight_search(origin="PEK", destination="SHA", day=DEC1)
        assert search.with_verdicts(trip, traveler, "flight", results) is None
        verdicts = {r.flight_numbers: r.verdict.verdict.compliant for r in results}
        assert verdicts == {"CA1501": True, "CA1519": False}  # business is not for a P2
    admin = page_client("alpha", "admin")
    page = admin.get(f"/trips/{trip.pk}/inventory/?kind=flight&search=1&origin=PEK&destination=SHA&date=2026-12-01"
                     f"&traveler={traveler.pk}")
    body = page.content.decode()
    assert page.status_code == 200 and body.count('data-test="result"') == 2 and "Business class not allowed" in body
    bad = admin.get(f"/trips/{trip.pk}/inventory/?kind=hotel&search=1&city=ZZZ&check_in=2026-12-01&check_out=2026-11-01")
    assert bad.status_code == 400 and 'data-field="city"' in bad.content.decode()
    with tenant_context(alpha):
        key = search.hotel_search(city="SHA", check_in=DEC1, check_out=DEC3)[0].key
    added = admin.post(f"/trips/{trip.pk}/inventory/", {"kind": "hotel", "key": key, "check_in": "2026-12-01",
                                                         "check_out": "2026-12-03", "traveler": traveler.pk})
    assert added.status_code == 302
    with tenant_context(alpha):
        item = trip.items.get(description__startswith="锦江之星")
        assert (item.kind, item.cost, item.sell, item.starts_on, item.ends_on) == (
            "hotel", Decimal("1240.00"), Decimal("1240.00"), DEC1, DEC3)
        assert item.details["source"] == "inventory" and item.supplier == "HotelHub 酒店通"
        assert item.policy_checks.get(traveler=traveler).compliant  # 620 a night in Shanghai for a P2: under 800
    gone = admin.post(f"/trips/{trip.pk}/inventory/", {"kind": "flight", "offer": "999999"})
    assert gone.status_code == 400 and "no longer available" in gone.content.decode()
    # Another agency's staff reach neither the trip's search page nor its itinerary, by id or by post.
    other = page_client("bravo", "admin")
    assert other.get(f"/trips/{trip.pk}/inventory/?kind=hotel&search=1&city=SHA&check_in=2026-12-01"
                     "&check_out=2026-12-03").status_code == 404
    assert other.post(f"/trips/{trip.pk}/inventory/", {"kind": "hotel", "key": key, "check_in": "2026-12-01",
                                                        "check_out": "2026-12-03"}).status_code == 404
    with tenant_context(alpha):
        assert trip.items.filter(description__startswith="锦江之星").count() == 1
