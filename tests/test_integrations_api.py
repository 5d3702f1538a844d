"""Inventory API (R-INT-2): hotel and flight search with field errors, the traveler's policy verdict on
each result, adding a result to a trip, an agency's own rates seen by its own token only, and the
fence: another agency's token, host, trip and traveler ids."""
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from integrations.models import FlightOffer
from tests.conftest import host
from tests.policy_factories import person, setup_account, trip_with_items
from tests.test_integrations import DEC1, SAMPLES, air_feed, hotel_feed, run

pytestmark = pytest.mark.django_db

HOTELS = "/api/v1/inventory/hotels/"
FLIGHTS = "/api/v1/inventory/flights/"


@pytest.fixture(autouse=True)
def _spool(settings, tmp_path):
    settings.FEED_SPOOL_DIR = tmp_path / "spool"


@pytest.fixture
def inventory():
    run(hotel_feed(), "ota_hotel_avail_rs.xml")
    run(air_feed(), "duffel_offers.json")


def test_hotel_search_answers_stays_and_field_errors(alpha, api_client, inventory):
    api = api_client("alpha", "sales")
    found = api.get(HOTELS, {"city": "SHA", "check_in": "2026-12-01", "check_out": "2026-12-03"})
    assert found.status_code == 200
    body = found.json()
    assert body["currency"] == alpha.currency and body["policy_note"] is None
    first = body["results"][0]
    assert (first["name"], first["total"], first["nightly"], first["currency"], first["nights"]) == (
        "锦江之星 上海人民广场店", "1240.00", "620.00", "CNY", 2)
    assert first["own_rate"] is False and first["verdict"] is None and first["key"].count(":") == 3
    bad = api.get(HOTELS, {"city": "ZZZ", "check_in": "2026-12-03", "check_out": "2026-12-01", "board": "XX"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"city", "check_out", "board"}
    assert api_client("alpha").get(HOTELS, {"city": "SHA"}).status_code in (401, 403)  # no token
    assert api_client("alpha", "finance").get(HOTELS, {"city": "SHA"}).status_code == 403  # not pipeline work


def test_flight_search_with_the_travelers_verdict_and_adding_to_a_trip(alpha, api_client, inventory):
    with tenant_context(alpha):
        account, _boss, traveler, _version = setup_account(alpha)
        trip, _flight, _hotel = trip_with_items(account, traveler)
    api = api_client("alpha", "sales")
    found = api.get(FLIGHTS, {"origin": "BJS", "destination": "SHA", "date": "2026-12-01", "trip": trip.pk,
                              "traveler": traveler.pk})
    assert found.status_code == 200
    verdicts = {r["flight_numbers"]: r["verdict"]["compliant"] for r in found.json()["results"]}
    assert verdicts == {"CA1501": True, "CA1519": False}  # business is not for a P2
    [business] = [r for r in found.json()["results"] if r["flight_numbers"] == "CA1519"]
    assert business["verdict"]["policy"]["id"] and business["verdict"]["results"]
    # A traveler who is not on the trip, or a trip that does not exist: field errors.
    with tenant_context(alpha):
        stranger = person("路人 Passer-by")
    assert set(api.get(FLIGHTS, {"origin": "PEK", "destination": "SHA", "date": "2026-12-01", "trip": trip.pk,
                                 "traveler": stranger.pk}).json()["error"]["fields"]) == {"traveler"}
    assert set(api.get(FLIGHTS, {"origin": "PEK", "destination": "SHA", "date": "2026-12-01",
                                 "trip": 987654}).json()["error"]["fields"]) == {"trip"}
    added = api.post(f"/api/v1/trips/{trip.pk}/inventory/", {"kind": "flight", "offer": str(business["offer"]),
                                                             "traveler": traveler.pk}, format="json")
    assert added.status_code == 201
    item = added.json()
    assert (item["kind"], item["description"], item["details"]["source"]) == ("flight", "CA1519 PEK→SHA", "inventory")
    assert item["sell"] == business["price_local"]  # priced from the inventory, in the agency's currency
    with tenant_context(alpha):
        check = trip.items.get(pk=item["id"]).policy_checks.get(traveler=traveler)
        assert not check.compliant  # recorded on the item
    gone = api.post(f"/api/v1/trips/{trip.pk}/inventory/", {"kind": "hotel", "key": "1:NOPE:STD:BAR",
                                                            "check_in": "2026-12-01", "check_out": "2026-12-03"},
                    format="json")
    assert gone.status_code == 400 and "key" in gone.json()["error"]["fields"]


def test_the_api_never_crosses_between_agencies(alpha, bravo, api_client, inventory):
    own = air_feed(agency=alpha)
    run(own, content=(SAMPLES / "duffel_offers.json").read_bytes().replace(b'"total_amount": "', b'"total_amount": "1'))
    alpha_offer = FlightOffer.objects.unscoped().filter(feed=own).first()
    query = {"origin": "PEK", "destination": "SHA", "date": DEC1.isoformat()}
    mine = api_client("alpha", "sales").get(FLIGHTS, query).json()["results"]
    assert any(r["own_rate"] for r in mine)
    theirs = api_client("bravo", "sales").get(FLIGHTS, query).json()["results"]
    assert theirs and not any(r["own_rate"] or r["offer"] == alpha_offer.pk for r in theirs)
    with tenant_context(alpha):
        account, _boss, traveler, _version = setup_account(alpha)
        trip, _flight, _hotel = trip_with_items(account, traveler)
        items_before = trip.items.count()
    bravo_api = api_client("bravo", "admin")
    # Another agency's trip by id: not found; its traveler's id: not on any of bravo's trips.
    assert bravo_api.post(f"/api/v1/trips/{trip.pk}/inventory/", {"kind": "flight", "offer": str(theirs[0]["offer"])},
                          format="json").status_code == 404
    assert "trip" in bravo_api.get(FLIGHTS, {**query, "trip": trip.pk, "traveler": traveler.pk}).json()["error"]["fields"]
    # Alpha's own offer, added from bravo's trip: unavailable.
    with tenant_context(bravo):
        b_account, _b, b_traveler, _bv = setup_account(bravo)
        b_trip, _f, _h = trip_with_items(b_account, b_traveler)
    refused = bravo_api.post(f"/api/v1/trips/{b_trip.pk}/inventory/", {"kind": "flight", "offer": str(alpha_offer.pk)},
                             format="json")
    assert refused.status_code == 400 and "offer" in refused.json()["error"]["fields"]
    # Alpha's token on bravo's host is refused; the platform domain has no agency API.
    wrong_host = api_client("alpha", "sales", on=host("bravo")).get(FLIGHTS, query)
    assert wrong_host.status_code in (401, 403)
    assert api_client("alpha", "sales", on=host(None)).get(FLIGHTS, query).status_code == 404
    with tenant_context(alpha):
        assert trip.items.count() == items_before
    assert Decimal(mine[0]["price"]) > 0
