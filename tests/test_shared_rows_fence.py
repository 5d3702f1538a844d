"""The one fence over shared (public-schema) rows that belong to an agency (caravan.tenancy.scoping):
with no agency active it refuses; inside alpha it gives the shared rows plus alpha's own and never
bravo's (feeds, runs, quarantined records, hotel rates, flight offers, billing account); raw SQL gets
the same rule; alpha's searches never show bravo's negotiated rate; operators' pages see every row."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import BillingAccount
from caravan.tenancy import NoAgencyError
from caravan.tenancy.scoping import shared_q, visible_sql
from integrations.models import Feed, FeedRun, FlightOffer, Hotel, HotelRate, QuarantinedRecord, Supplier
from tenants.models import AgencyEvent
from tenants.portability.models import AgencyExport

pytestmark = pytest.mark.django_db

NIGHT = date(2026, 12, 1)
SCOPED = [Feed, FeedRun, QuarantinedRecord, HotelRate, FlightOffer, BillingAccount, AgencyExport, AgencyEvent]


@pytest.fixture
def rows(alpha, bravo):
    """A shared feed, one of alpha's own and one of bravo's, each with a run, a quarantined record, a
    hotel rate (one night in Shanghai) and a flight offer; and a billing account for alpha and bravo.
    Keyed by owner: None (shared), "alpha", "bravo"."""
    hotels = Supplier.objects.create(code="fence-hotels", name="Fence Hotels", kind="hotel")
    hotel = Hotel.objects.create(supplier=hotels, code="FENCE1", name="围栏酒店 Fence Hotel", city_code="SHA")
    made = {}
    for owner, agency, amount in ((None, None, "500.00"), ("alpha", alpha, "450.00"), ("bravo", bravo, "100.00")):
        feed = Feed.objects.unscoped().create(supplier=hotels, name=f"Fence feed {owner or 'shared'}",
                                              connector="ota_hotel", mode="push", agency=agency)
        run = FeedRun.objects.unscoped().create(feed=feed, trigger="push", status="succeeded")
        record = QuarantinedRecord.objects.unscoped().create(run=run, position="1", reason=f"bad {owner}")
        rate = HotelRate.objects.unscoped().create(
            feed=feed, agency=agency, hotel=hotel, city_code="SHA", night=NIGHT, room_type="STD",
            rate_plan=f"PLAN-{owner or 'shared'}".upper(), amount=Decimal(amount), currency="CNY", available=3)
        departure = timezone.make_aware(timezone.datetime(2026, 12, 1, 8, 0))
        offer = FlightOffer.objects.unscoped().create(
            feed=feed, agency=agency, offer_id=f"fence-{owner}", origin="PEK", destination="SHA",
            departure_date=NIGHT, departure=departure, arrival=departure + timedelta(hours=2), carrier="CA",
            flight_numbers="CA1501", cabin="economy", duration_minutes=120, stops=0, price=Decimal(amount),
            currency="CNY")
        made[owner] = {"feed": feed, "run": run, "record": record, "rate": rate, "offer": offer}
    for owner, agency in (("alpha", alpha), ("bravo", bravo)):
        made[owner]["account"] = BillingAccount.objects.unscoped().get_or_create(agency=agency)[0]
    return made


def pks(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def test_with_no_agency_active_every_scoped_manager_refuses(rows):
    for model in SCOPED:
        with pytest.raises(NoAgencyError, match="unscoped"):
            model.objects.all()
        with pytest.raises(NoAgencyError):
            model.objects.own()
    with pytest.raises(NoAgencyError):
        rows[None]["feed"].runs.all()  # a related manager is fenced too
    with pytest.raises(NoAgencyError):
        visible_sql(HotelRate, "r")
    # Platform code says so by name, and then sees every agency's rows.
    assert {rows[o]["feed"].pk for o in rows} <= pks(Feed.objects.unscoped())
    assert {rows[o]["rate"].pk for o in rows} <= pks(HotelRate.objects.unscoped())
    # Following a key from a row already read is not a new query of the table: the base manager.
    assert rows["bravo"]["run"].feed.agency_id == rows["bravo"]["feed"].agency_id
    assert FeedRun.objects.unscoped().get(pk=rows["bravo"]["run"].pk).feed.name == "Fence feed bravo"


@pytest.mark.parametrize("name,model", [("feed", Feed), ("run", FeedRun), ("record", QuarantinedRecord),
                                        ("rate", HotelRate), ("offer", FlightOffer)])
def test_an_agency_sees_the_shared_rows_and_its_own_never_anothers(alpha, bravo, rows, name, model):
    shared, mine, theirs = rows[None][name].pk, rows["alpha"][name].pk, rows["bravo"][name].pk
    with tenant_context(alpha):
        seen = pks(model.objects.all())
        assert {shared, mine} <= seen and theirs not in seen
        assert not model.objects.filter(pk=theirs).exists()
        assert pks(model.objects.own()) & {shared, mine, theirs} == {mine}
        assert pks(model.objects.shared()) & {shared, mine, theirs} == {shared}
    with tenant_context(bravo):
        seen = pks(model.objects.all())
        assert {shared, theirs} <= seen and mine not in seen


def test_related_managers_keep_the_fence_and_unscoped_stays_within_the_relation(alpha, rows):
    with tenant_context(alpha):
        assert pks(rows["alpha"]["feed"].runs.all()) == {rows["alpha"]["run"].pk}
        assert not rows["bravo"]["feed"].runs.exists()  # bravo's feed in hand still shows none of its runs
    assert pks(rows["bravo"]["feed"].runs.unscoped()) == {rows["bravo"]["run"].pk}  # that feed's runs, not all


def test_a_billing_account_is_its_agencys_alone(alpha, bravo, rows):
    with tenant_context(alpha):
        assert pks(BillingAccount.objects.all()) == {rows["alpha"]["account"].pk}
    with tenant_context(bravo):
        assert pks(BillingAccount.objects.all()) == {rows["bravo"]["account"].pk}
        with pytest.raises(TypeError):
            BillingAccount.objects.shared()  # an account always belongs to one agency


def test_raw_sql_gets_the_same_rule(alpha, rows):
    with tenant_context(alpha):
        for model, alias in ((HotelRate, "r"), (FlightOffer, "o")):
            fence, params = visible_sql(model, alias)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {alias}.id FROM {model._meta.db_table} {alias} WHERE {fence}", params)
                assert {row[0] for row in cursor.fetchall()} == pks(model.objects.all())
        fence, _params = visible_sql(BillingAccount, "b")
        assert "IS NULL" not in fence  # no shared accounts
        with pytest.raises(TypeError):
            visible_sql(FeedRun, "run")  # keyed through its feed: join the feed and fence that


def test_a_hotel_search_on_alphas_host_never_shows_bravos_negotiated_rate(rows, api_client):
    query = {"city": "SHA", "check_in": NIGHT.isoformat(), "check_out": (NIGHT + timedelta(days=1)).isoformat()}
    plans = {r["rate_plan"]: r["own_rate"] for r in
             api_client("alpha", "sales").get("/api/v1/inventory/hotels/", query).json()["results"]}
    assert plans.get("PLAN-SHARED") is False and plans.get("PLAN-ALPHA") is True and "PLAN-BRAVO" not in plans
    bravo_plans = {r["rate_plan"] for r in
                   api_client("bravo", "sales").get("/api/v1/inventory/hotels/", query).json()["results"]}
    assert "PLAN-BRAVO" in bravo_plans and "PLAN-ALPHA" not in bravo_plans
    flights = api_client("alpha", "sales").get("/api/v1/inventory/flights/", {
        "origin": "PEK", "destination": "SHA", "date": NIGHT.isoformat()}).json()["results"]
    offers = {f["offer_id"] for f in flights}
    assert {"fence-None", "fence-alpha"} <= offers and "fence-bravo" not in offers
    # Adding bravo's offer to a trip by its id is refused like an unknown one.
    from integrations import search
    from django.core.exceptions import ValidationError

    with tenant_context(rows["alpha"]["feed"].agency), pytest.raises(ValidationError):
        search.flight_result(rows["bravo"]["offer"].pk)


def test_agency_pages_show_its_own_feeds_and_operators_see_every_one(rows, page_client, operator_client):
    listing = page_client("alpha", "admin").get("/settings/suppliers/").content.decode()
    assert "Fence feed alpha" in listing and "Fence feed bravo" not in listing
    assert page_client("alpha", "admin").get(f"/settings/suppliers/runs/{rows['bravo']['run'].pk}/").status_code == 404
    console = operator_client.get("/suppliers/").content.decode()
    assert all(f"Fence feed {o}" in console for o in ("shared", "alpha", "bravo"))
    run_page = operator_client.get(f"/feeds/runs/{rows['bravo']['run'].pk}/")
    assert run_page.status_code == 200 and "bad bravo" in run_page.content.decode()
    detail = operator_client.get(f"/feeds/{rows['bravo']['feed'].pk}/")
    assert detail.status_code == 200


def test_shared_q_counts_shared_feeds_through_a_relation(rows):
    from django.db.models import Count

    supplier = Supplier.objects.annotate(shared=Count("feeds", filter=shared_q(Feed, "feeds"))).get(code="fence-hotels")
    assert supplier.shared == 1
