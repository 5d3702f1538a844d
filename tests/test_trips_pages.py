"""Trip pages: list with filters and totals, the trip with travelers, itinerary, payments and checklist,
the printable quote, "Prepare quote", the card and dashboard slots — by role and across agencies."""
from datetime import date, timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.pipeline.models import Opportunity
from crm.trips import services
from crm.trips.models import ChecklistItem, Payment, Traveler, Trip

from .conftest import staff
from .test_trips_api import far_ids, visa_trip
from .test_trips_services import opportunity, person, trip_with_items

pytestmark = pytest.mark.django_db


def test_list_filters_totals_and_pages(page_client, alpha):
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        mine = trip_with_items(alpha, sell="1000.00", owner=sales)
        other = trip_with_items(alpha, sell="2000.00", status="quote", depart_on=date(2031, 9, 1),
                                return_on=date(2031, 9, 9))
        services.payment_record(actor=None, trip=mine, kind="deposit", amount="1000.00", method="bank",
                                received_on=date(2031, 1, 1))
    client = page_client("alpha", "sales")

    def shown(query=""):
        html = client.get(f"/trips/?{query}").content.decode()
        return {t.pk for t in (mine, other) if f'href="/trips/{t.pk}/"' in html}

    assert shown() == {mine.pk, other.pk}
    assert shown("owner=me") == {mine.pk}
    assert shown("status=quote") == {other.pk}
    assert shown("payment=paid") == {mine.pk}
    assert shown("depart_from=2031-08-01&depart_to=2031-12-31") == {other.pk}
    assert shown("documents=outstanding") == set()
    html = client.get("/trips/").content.decode()
    assert "3,000.00" in html and "1,000.00" in html  # total sell and paid, summed in SQL
    assert page_client("alpha", "finance").get("/trips/").status_code == 200


def test_detail_shows_everything_and_hides_costs_from_finance(page_client, alpha):
    with tenant_context(alpha):
        trip = trip_with_items(alpha, sell="10000.00", cost="7500.00")
        services.item_add(actor=None, trip=trip, kind="visa", description="Japan visa", sell="0")
    html = page_client("alpha", "sales").get(f"/trips/{trip.pk}/").content.decode()
    assert "Sanya resort" in html and "2,500.00" in html and "25.0%" in html
    assert 'data-test="checklist"' in html and "Passport" in html
    assert "Record a payment" not in html  # sales do not record payments
    finance = page_client("alpha", "finance").get(f"/trips/{trip.pk}/").content.decode()
    assert "Record a payment" in finance and "7,500.00" not in finance and "Add an item" not in finance


def test_create_trip_for_a_customer_and_edit(page_client, alpha):
    with tenant_context(alpha):
        wang = person()
    client = page_client("alpha", "sales")
    assert client.get(f"/trips/new/?customer={wang.pk}").status_code == 200
    response = client.post("/trips/new/", {"customer": wang.pk, "title": "", "return_on": "2031-01-01",
                                           "depart_on": "2031-02-01"})
    assert response.status_code == 400 and 'data-field="title"' in response.content.decode()
    response = client.post("/trips/new/", {"customer": wang.pk, "title": "Yunnan", "depart_on": "2031-02-01",
                                           "return_on": "2031-01-01"})
    assert response.status_code == 400 and 'data-field="return_on"' in response.content.decode()
    response = client.post("/trips/new/", {"customer": wang.pk, "title": "Yunnan", "depart_on": "2031-02-01",
                                           "needs_visa": "on"})
    assert response.status_code == 302
    with tenant_context(alpha):
        trip = Trip.objects.get(title="Yunnan")
        assert trip.status == "quote" and trip.needs_visa and trip.travelers.get().checklist.count() == 5
        assert trip.balance_due_on == date(2031, 1, 2)
    response = client.post(f"/trips/{trip.pk}/edit/", {"title": "Yunnan & Tibet", "depart_on": "2031-02-01",
                                                       "balance_due_on": "2031-01-15"})
    assert response.status_code == 302
    with tenant_context(alpha):
        trip.refresh_from_db()
        assert trip.title == "Yunnan & Tibet" and trip.balance_due_on == date(2031, 1, 15)
    assert page_client("alpha", "finance").post("/trips/new/", {"customer": wang.pk, "title": "x"}).status_code == 403


def test_items_travelers_and_status_buttons(page_client, alpha):
    with tenant_context(alpha):
        trip = trip_with_items(alpha, status="quote")
        li = person("李雷", phones=["13912345678"])
    client = page_client("alpha", "sales")
    response = client.post(f"/trips/{trip.pk}/items/", {"kind": "flight", "description": "MU 5101", "cost": "1e3",
                                                        "sell": "1200"})
    assert response.status_code == 400 and 'data-field="cost"' in response.content.decode()
    response = client.post(f"/trips/{trip.pk}/items/", {"kind": "flight", "description": "MU 5101", "cost": "1000",
                                                        "sell": "1200.50", "carrier": "mu", "number": "5101",
                                                        "from_airport": "sha", "to_airport": "pek", "room_type": "x"})
    assert response.status_code == 302
    with tenant_context(alpha):
        flight = trip.items.get(kind="flight")
        assert flight.details == {"carrier": "MU", "number": "5101", "from_airport": "SHA", "to_airport": "PEK"}
    assert client.get(f"/trips/items/{flight.pk}/").status_code == 200
    assert client.post(f"/trips/items/{flight.pk}/", {"kind": "flight", "description": "MU 5102", "cost": "1000",
                                                      "sell": "1300"}).status_code == 302
    choices = client.get("/trips/customers/?q=李雷", HTTP_HX_REQUEST="true").content.decode()
    assert f'value="{li.pk}"' in choices
    assert client.post(f"/trips/{trip.pk}/travelers/", {"customer": li.pk}).status_code == 302
    response = client.post(f"/trips/{trip.pk}/travelers/", {"customer": li.pk})
    assert response.status_code == 400 and "already travels" in response.content.decode()
    with tenant_context(alpha):
        traveler = Traveler.objects.get(trip=trip, customer=li)
    assert client.post(f"/trips/travelers/{traveler.pk}/lead/").status_code == 302
    with tenant_context(alpha):
        assert Traveler.objects.get(pk=traveler.pk).is_lead
    response = client.post(f"/trips/{trip.pk}/status/", {"to": "completed"}, follow=True)
    assert "cannot go from" in response.content.decode()
    client.post(f"/trips/{trip.pk}/status/", {"to": "confirmed"})
    response = client.post(f"/trips/{trip.pk}/status/", {"to": "cancelled", "reason": ""})
    assert response.status_code == 400 and 'data-field="reason"' in response.content.decode()
    client.post(f"/trips/{trip.pk}/status/", {"to": "cancelled", "reason": "Typhoon"})
    with tenant_context(alpha):
        trip.refresh_from_db()
        assert trip.status == "cancelled" and trip.cancel_reason == "Typhoon"
    assert page_client("alpha", "finance").post(f"/trips/{trip.pk}/status/", {"to": "x"}).status_code == 403


def test_record_payment_and_refund_from_the_page(page_client, alpha):
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        opp = opportunity(person(), owner=sales, code="quoted")
        trip = services.quote_from_opportunity(actor=sales, opportunity=opp)
        services.item_add(actor=None, trip=trip, kind="tour", description="Kyoto", sell="3000", cost="2000")
    url = f"/trips/{trip.pk}/payments/"
    body = {"kind": "deposit", "amount": "1000.00", "method": "wechat", "received_on": "2031-01-05"}
    assert page_client("alpha", "sales").post(url, body).status_code == 403
    client = page_client("alpha", "finance")
    response = client.post(url, {**body, "amount": "1000.005"})
    assert response.status_code == 400 and 'data-field="amount"' in response.content.decode()
    assert client.post(url, body).status_code == 302
    response = client.post(url, {**body, "kind": "balance", "amount": "2000.01"})
    assert response.status_code == 400 and "overpay" in response.content.decode()
    with tenant_context(alpha):
        deposit = Payment.objects.get(trip=trip)
        opp.refresh_from_db()
        assert opp.stage.kind == "deposit"
        assert trip.tasks.filter(kind="deposit_call", owner=sales).count() == 1
    refund = {"kind": "refund", "amount": "400.00", "method": "wechat", "received_on": "2031-01-06",
              "refund_of": deposit.pk}
    assert client.post(url, refund).status_code == 302
    response = client.post(url, {**refund, "amount": "600.01"})
    assert response.status_code == 400 and "At most" in response.content.decode()
    html = client.get(f"/trips/{trip.pk}/").content.decode()
    assert "Up to CNY 600.00 can be refunded" in html and "2,400.00" in html


def test_checklist_buttons_with_htmx_and_visa_cancellation(page_client, alpha):
    with tenant_context(alpha):
        trip = trip_with_items(alpha)
        services.item_add(actor=None, trip=trip, kind="visa", description="Visa")
        traveler = trip.travelers.get()
        passport = traveler.checklist.get(document="passport")
    client = page_client("alpha", "service")
    response = client.post(f"/trips/checklist/{passport.pk}/status/", {"to": "received"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and f'id="checklist-{traveler.pk}"' in response.content.decode()
    assert "Returned to the traveler" in response.content.decode()
    response = client.post(f"/trips/checklist/{passport.pk}/status/", {"to": "waived"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "cannot go from" in response.content.decode()
    response = client.post(f"/trips/travelers/{traveler.pk}/checklist/add/", {"document": "household"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Household register" in response.content.decode()
    with tenant_context(alpha):
        assert ChecklistItem.objects.get(pk=passport.pk).status == "received"
        assert traveler.checklist.count() == 6
    client.post(f"/trips/{trip.pk}/status/", {"to": "completed"})
    html = client.get(f"/trips/{trip.pk}/").content.decode()
    assert 'data-test="visa-cancellation"' in html and "Passport received" in html
    client.post(f"/trips/travelers/{traveler.pk}/visa-cancellation/", {"to": "received"})
    client.post(f"/trips/travelers/{traveler.pk}/visa-cancellation/", {"to": "done"})
    with tenant_context(alpha):
        assert Traveler.objects.get(pk=traveler.pk).visa_cancellation == "done"


def test_printable_quote_shows_sell_prices_not_costs(page_client, alpha):
    with tenant_context(alpha):
        trip = trip_with_items(alpha, sell="12345.67", cost="9876.54", status="quote")
    html = page_client("alpha", "sales").get(f"/trips/{trip.pk}/quote/").content.decode()
    # The print button is a data-print behaviour of caravan.js (the CSP allows no inline handlers).
    assert "12,345.67" in html and "9,876.54" not in html and "Quotation" in html and "data-print" in html


def test_prepare_quote_button(page_client, alpha):
    with tenant_context(alpha):
        opp = opportunity(person(), owner=staff(alpha, "sales"))
    client = page_client("alpha", "sales")
    response = client.post(f"/pipeline/{opp.pk}/quote/")
    with tenant_context(alpha):
        trip = Trip.objects.get(opportunity=opp)
        assert Opportunity.objects.get(pk=opp.pk).stage.code == "quoted"
    assert response.status_code == 302 and response["Location"] == f"/trips/{trip.pk}/"
    assert client.post(f"/pipeline/{opp.pk}/quote/")["Location"] == f"/trips/{trip.pk}/"  # a second click opens it
    assert page_client("alpha", "finance").post(f"/pipeline/{opp.pk}/quote/").status_code == 403
    from django.template.loader import render_to_string
    with tenant_context(alpha):
        opp = Opportunity.objects.select_related("stage").get(pk=opp.pk)
        assert f"/trips/{trip.pk}/" in render_to_string("frontend/trips/_opportunity_quote.html",
                                                        {"opportunity": opp})


def test_card_and_dashboard_slots(page_client, alpha):
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        wang = person()
        soon = timezone.localdate() + timedelta(days=5)
        trip = trip_with_items(alpha, customer=wang, owner=sales, depart_on=soon, return_on=soon + timedelta(days=3))
        Trip.objects.filter(pk=trip.pk).update(balance_due_on=soon - timedelta(days=10))
    card = page_client("alpha", "sales").get(f"/customers/{wang.pk}/").content.decode()
    assert 'data-test="customer-trips"' in card and f"/trips/{trip.pk}/" in card
    dashboard = page_client("alpha", "sales").get("/").content.decode()
    assert 'data-test="trips-departing"' in dashboard and f"/trips/{trip.pk}/" in dashboard
    assert f"/trips/{trip.pk}/" not in page_client("alpha", "service").get("/").content.decode()  # not theirs
    assert f"/trips/{trip.pk}/" in page_client("alpha", "manager").get("/").content.decode()
    finance = page_client("alpha", "finance").get("/").content.decode()
    assert 'data-test="trips-overdue"' in finance and f"/trips/{trip.pk}/" in finance


# --- the fence ------------------------------------------------------------------------------------

PAGES = [  # method, path with bravo's ids, body
    ("get", "/trips/{trip}/", None), ("get", "/trips/{trip}/edit/", None), ("get", "/trips/{trip}/quote/", None),
    ("post", "/trips/{trip}/edit/", {"title": "x"}), ("post", "/trips/{trip}/status/", {"to": "completed"}),
    ("post", "/trips/{trip}/travelers/", {"customer": 1}), ("post", "/trips/{trip}/items/", {"kind": "tour"}),
    ("post", "/trips/{trip}/payments/", {"kind": "deposit", "amount": "1", "method": "bank",
                                         "received_on": "2031-01-01"}),
    ("get", "/trips/items/{item}/", None), ("post", "/trips/items/{item}/", {"remove": "1"}),
    ("post", "/trips/travelers/{traveler}/remove/", {}), ("post", "/trips/travelers/{traveler}/lead/", {}),
    ("post", "/trips/travelers/{traveler}/checklist/add/", {"document": "photos"}),
    ("post", "/trips/checklist/{check}/status/", {"to": "received"}),
    ("post", "/trips/checklist/{check}/remove/", {}),
    ("post", "/pipeline/{opp}/quote/", {}),
]


@pytest.mark.parametrize("method,path,body", PAGES, ids=[f"{m} {p}" for m, p, _ in PAGES])
def test_other_agencys_ids_are_not_found_on_pages(page_client, alpha, bravo, method, path, body):
    far_ids(bravo)
    ids = visa_trip(bravo)
    url = path.format(**ids)
    response = getattr(page_client("alpha", "admin"), method)(url, body or {})
    assert response.status_code == 404
    # Alpha's session on bravo's host is nobody there.
    response = getattr(page_client("alpha", "admin", on="bravo.localhost"), method)(url, body or {})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    with tenant_context(bravo):
        trip = Trip.objects.get(pk=ids["trip"])
        assert trip.status == "confirmed" and trip.items.count() == 2 and trip.travelers.count() == 1
        assert ChecklistItem.objects.get(pk=ids["check"]).status == "required"
        assert Payment.objects.filter(trip=trip).count() == 1


def test_list_shows_only_own_agency_and_needs_sign_in(page_client, alpha, bravo):
    ids = visa_trip(bravo)
    assert f"/trips/{ids['trip']}/" not in page_client("alpha", "admin").get("/trips/").content.decode()
    assert page_client("alpha").get("/trips/").status_code == 302
    assert page_client(None, None).get("/trips/").status_code == 404  # not on the platform domain
