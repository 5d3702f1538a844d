"""Trips API: trips and their status moves, items, travelers, payments with refunds, the checklist,
"prepare quote" — money as strings with a currency, the role table and the fence between agencies."""
from datetime import date

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from crm.trips import services
from crm.trips.models import ChecklistItem, Payment, Trip

from .conftest import staff
from .test_trips_services import company, opportunity, person, trip_with_items

pytestmark = pytest.mark.django_db
URL = "/api/v1/trips/"


def far_ids(agency):
    """Bravo's ids start far above alpha's, so they mean nothing on alpha's host."""
    with tenant_context(agency), connection.cursor() as cursor:
        for table in ("trips_trip", "trips_itineraryitem", "trips_traveler", "trips_payment", "trips_checklistitem",
                      "pipeline_opportunity", "crm_customer"):
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), 7000000)", [table])


def visa_trip(agency):
    """A confirmed visa trip with a deposit, as ids: trip, item, traveler, payment, checklist item, opportunity."""
    with tenant_context(agency):
        opp = opportunity(person(), code="won")
        trip = trip_with_items(agency, sell="5000.00", opportunity=opp)
        services.item_add(actor=None, trip=trip, kind="visa", description="Visa", sell="0")
        deposit = services.payment_record(actor=None, trip=trip, kind="deposit", amount="1000.00", method="bank",
                                          received_on=date(2031, 1, 1))
        traveler = trip.travelers.get()
        return {"trip": trip.pk, "item": trip.items.first().pk, "traveler": traveler.pk, "payment": deposit.pk,
                "check": traveler.checklist.first().pk, "opp": opp.pk}


def test_create_add_items_and_money_as_strings(api_client, alpha):
    with tenant_context(alpha):
        wang = person()
    client = api_client("alpha", "sales")
    response = client.post(URL, {"customer": wang.pk, "title": "Bali", "depart_on": "2031-08-01",
                                 "return_on": "2031-08-08"}, format="json")
    assert response.status_code == 201, response.content
    trip = response.json()
    assert trip["status"] == "quote" and trip["currency"] == alpha.currency and trip["balance_due_on"] == "2031-07-02"
    response = client.post(f"{URL}{trip['id']}/items/", {
        "kind": "flight", "description": "GA 891", "cost": "2500.10", "sell": "3000.55",
        "details": {"carrier": "ga", "number": "891", "from_airport": "pvg", "to_airport": "dps"}}, format="json")
    assert response.status_code == 201, response.content
    item = response.json()
    assert (item["cost"], item["sell"], item["margin"], item["currency"]) == ("2500.10", "3000.55", "500.45", "CNY")
    assert item["details"]["carrier"] == "GA"
    money = client.get(f"{URL}{trip['id']}/").json()["money"]
    assert money == {"currency": "CNY", "sell": "3000.55", "paid": "0.00", "due": "3000.55", "state": "due",
                     "cost": "2500.10", "margin": "500.45", "margin_pct": "16.68"}
    response = client.post(f"{URL}{trip['id']}/items/", {"kind": "hotel", "description": "x", "sell": 10.5},
                           format="json")
    assert response.status_code == 400 and "sell" in response.json()["error"]["fields"]
    response = client.patch(f"/api/v1/trip-items/{item['id']}/", {"sell": "1e3"}, format="json")
    assert response.status_code == 400 and "sell" in response.json()["error"]["fields"]
    assert client.patch(f"/api/v1/trip-items/{item['id']}/", {"sell": "3100"}, format="json").json()["sell"] == "3100.00"


def test_status_actions_and_illegal_transition(api_client, alpha):
    with tenant_context(alpha):
        trip = trip_with_items(alpha, status="quote")
    client = api_client("alpha", "sales")
    assert client.post(f"{URL}{trip.pk}/complete/").status_code == 400
    assert client.post(f"{URL}{trip.pk}/confirm/").json()["status"] == "confirmed"
    response = client.post(f"{URL}{trip.pk}/cancel/", {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["error"]["fields"]
    assert client.post(f"{URL}{trip.pk}/complete/").json()["status"] == "completed"
    response = client.post(f"{URL}{trip.pk}/cancel/", {"reason": "late"}, format="json")
    assert response.status_code == 400 and "status" in response.json()["error"]["fields"]


def test_payments_refunds_and_roles(api_client, alpha):
    with tenant_context(alpha):
        trip = trip_with_items(alpha, sell="2000.00")
    url = f"{URL}{trip.pk}/payments/"
    body = {"kind": "deposit", "amount": "500.00", "method": "alipay", "received_on": "2031-01-02"}
    for role in ("sales", "manager", "service", "call_center"):
        assert api_client("alpha", role).post(url, body, format="json").status_code == 403, role
    finance = api_client("alpha", "finance")
    for amount in (500.0, "1e3", "5.001"):
        response = finance.post(url, {**body, "amount": amount}, format="json")
        assert response.status_code == 400 and "amount" in response.json()["error"]["fields"], amount
    response = finance.post(url, body, format="json")
    assert response.status_code == 201, response.content
    deposit = response.json()
    assert (deposit["amount"], deposit["currency"], deposit["refundable"]) == ("500.00", "CNY", "500.00")
    response = finance.post(url, {**body, "kind": "balance", "amount": "1500.01"}, format="json")
    assert response.status_code == 400 and "overpay" in response.json()["error"]["fields"]["amount"][0]
    refund = {**body, "kind": "refund", "amount": "200.00", "refund_of": deposit["id"]}
    assert finance.post(url, refund, format="json").status_code == 201
    assert finance.post(url, {**refund, "amount": "300.00"}, format="json").status_code == 201
    assert finance.post(url, {**refund, "amount": "0.01"}, format="json").status_code == 400
    listed = api_client("alpha", "sales").get(url).json()
    assert [p["kind"] for p in listed] == ["deposit", "refund", "refund"] and listed[0]["refundable"] == "0.00"
    assert api_client("alpha", "service").get(url).status_code == 403  # no payments.view
    assert api_client("alpha", "finance").get(f"{URL}{trip.pk}/").json()["money"]["paid"] == "0.00"
    assert "cost" not in api_client("alpha", "finance").get(f"{URL}{trip.pk}/").json()["money"]
    assert api_client("alpha", "finance").post(f"{URL}{trip.pk}/items/", {}, format="json").status_code == 403


def test_travelers_checklist_and_visa_cancellation(api_client, alpha):
    with tenant_context(alpha):
        acme = company()
        trip = services.trip_create(actor=None, customer=acme, title="Fair", status="confirmed")
        li = person("李雷")
        from crm.customers import services as crm_services
        crm_services.employment_set(actor=None, company=acme, person=li)
    client = api_client("alpha", "service")
    assert client.post(f"{URL}{trip.pk}/travelers/", {"customer": li.pk}, format="json").status_code == 201
    response = client.post(f"{URL}{trip.pk}/travelers/", {"customer": li.pk}, format="json")
    assert response.status_code == 400 and "already travels" in response.json()["error"]["fields"]["customer"][0]
    assert client.patch(f"{URL}{trip.pk}/", {"needs_visa": True}, format="json").json()["needs_visa"] is True
    checklist = client.get(f"{URL}{trip.pk}/checklist/").json()
    assert len(checklist) == 5 and {c["status"] for c in checklist} == {"required"}
    item = checklist[0]["id"]
    response = client.post(f"/api/v1/checklist-items/{item}/status/", {"status": "returned"}, format="json")
    assert response.status_code == 400
    response = client.post(f"/api/v1/checklist-items/{item}/status/", {"status": "received"}, format="json")
    assert response.json()["status"] == "received" and response.json()["received_at"]
    traveler = client.get(f"{URL}{trip.pk}/travelers/").json()[0]
    assert traveler["company"]["id"] == acme.pk
    assert client.post(f"{URL}{trip.pk}/complete/").status_code == 200
    traveler = client.get(f"{URL}{trip.pk}/travelers/").json()[0]
    assert traveler["visa_cancellation"] == "awaiting"
    url = f"/api/v1/travelers/{traveler['id']}/visa-cancellation/"
    assert client.post(url, {"visa_cancellation": "done"}, format="json").status_code == 400
    assert client.post(url, {"visa_cancellation": "received"}, format="json").json()["visa_cancellation"] == "received"


def test_prepare_quote_on_an_opportunity(api_client, alpha):
    with tenant_context(alpha):
        opp = opportunity(person(), owner=staff(alpha, "sales"))
    client = api_client("alpha", "sales")
    response = client.post(f"/api/v1/opportunities/{opp.pk}/quote/")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "quote" and response.json()["opportunity"] == opp.pk
    assert client.post(f"/api/v1/opportunities/{opp.pk}/quote/").status_code == 400
    assert api_client("alpha", "finance").post(f"/api/v1/opportunities/{opp.pk}/quote/").status_code == 403


def test_list_filters(api_client, alpha):
    with tenant_context(alpha):
        paid = trip_with_items(alpha, sell="100.00")
        services.payment_record(actor=None, trip=paid, kind="deposit", amount="100.00", method="cash",
                                received_on=date(2031, 1, 1))
        unpaid = trip_with_items(alpha, sell="100.00", depart_on=date(2031, 9, 1), return_on=date(2031, 9, 2))
    client = api_client("alpha", "finance")
    ids = lambda query: [t["id"] for t in client.get(f"{URL}?{query}").json()["results"]]  # noqa: E731
    assert ids("payment=paid") == [paid.pk]
    assert unpaid.pk in ids("payment=due") + ids("payment=overdue") and paid.pk not in ids("payment=due")
    assert ids("depart_from=2031-08-01") == [unpaid.pk]
    assert client.get(f"{URL}?payment=maybe").status_code == 400


# --- the fence ------------------------------------------------------------------------------------

ENDPOINTS = [  # method, path (formatted with bravo's ids), body
    ("get", "/api/v1/trips/{trip}/", None),
    ("patch", "/api/v1/trips/{trip}/", {"title": "x"}),
    ("post", "/api/v1/trips/{trip}/confirm/", {}),
    ("post", "/api/v1/trips/{trip}/complete/", {}),
    ("post", "/api/v1/trips/{trip}/cancel/", {"reason": "x"}),
    ("get", "/api/v1/trips/{trip}/items/", None),
    ("post", "/api/v1/trips/{trip}/items/", {"kind": "tour", "description": "x"}),
    ("patch", "/api/v1/trip-items/{item}/", {"sell": "1.00"}),
    ("delete", "/api/v1/trip-items/{item}/", None),
    ("get", "/api/v1/trips/{trip}/travelers/", None),
    ("post", "/api/v1/trips/{trip}/travelers/", {"customer": 1}),
    ("delete", "/api/v1/travelers/{traveler}/", None),
    ("post", "/api/v1/travelers/{traveler}/lead/", {}),
    ("post", "/api/v1/travelers/{traveler}/visa-cancellation/", {"visa_cancellation": "received"}),
    ("get", "/api/v1/trips/{trip}/payments/", None),
    ("post", "/api/v1/trips/{trip}/payments/", {"kind": "refund", "amount": "1.00", "method": "bank",
                                                "received_on": "2031-01-01", "refund_of": "{payment}"}),
    ("get", "/api/v1/trips/{trip}/checklist/", None),
    ("post", "/api/v1/checklist-items/{check}/status/", {"status": "received"}),
    ("delete", "/api/v1/checklist-items/{check}/", None),
    ("post", "/api/v1/opportunities/{opp}/quote/", {}),
]


@pytest.mark.parametrize("method,path,body", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_other_agencys_ids_are_not_found(api_client, alpha, bravo, method, path, body):
    far_ids(bravo)
    ids = visa_trip(bravo)
    url = path.format(**ids)
    if body:
        body = {k: (int(v.format(**ids)) if isinstance(v, str) and v.startswith("{") else v) for k, v in body.items()}
    response = getattr(api_client("alpha", "admin"), method)(url, body, format="json")
    assert response.status_code == 404, response.content
    # The same call on bravo's host with alpha's token: not even authenticated there.
    response = getattr(api_client("alpha", "admin", on="bravo.localhost"), method)(url, body, format="json")
    assert response.status_code == 401
    with tenant_context(bravo):
        assert Trip.objects.get(pk=ids["trip"]).status == "confirmed"
        assert Payment.objects.filter(trip_id=ids["trip"]).count() == 1
        assert ChecklistItem.objects.get(pk=ids["check"]).status == "required"


def test_list_shows_only_own_agency(api_client, alpha, bravo):
    visa_trip(bravo)
    assert api_client("alpha", "admin").get(URL).json()["results"] == []
    assert api_client("alpha", "admin", on="localhost").get(URL).status_code == 404  # not on the platform domain


def test_anonymous_is_refused(api_client):
    assert api_client("alpha").get(URL).status_code == 401
