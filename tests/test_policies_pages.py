"""Travel-policy pages: the card, editing with formsets and field errors, history, "check a booking",
the trip item check, approvals, the report with its CSV, exchange rates, roles, and the fence."""
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.roles import Cap, Role, role_can
from crm.customers.models import Employment
from crm.policies import services
from crm.policies.models import Approval, BookingCheck, ExchangeRate, PolicyVersion

from .policy_factories import flight_offer, person, setup_account, trip_with_items, user

pytestmark = pytest.mark.django_db
MANAGE = {r for r in Role.values if role_can(r, Cap.POLICIES_MANAGE)}
WORK = {r for r in Role.values if role_can(r, Cap.PIPELINE_WORK)}
REPORT = {r for r in Role.values if role_can(r, Cap.POLICIES_MANAGE) or role_can(r, Cap.REPORTS_VIEW)}


def setup_case(agency, **kwargs):
    with tenant_context(agency):
        account, boss, traveler, version = setup_account(agency, **kwargs)
        trip, flight, hotel = trip_with_items(account, traveler, owner=user(agency, "manager"))
    connection.set_schema_to_public()
    return account, boss, traveler, trip, flight, hotel


def policy_post(**changes) -> dict:
    data = {
        "currency": "CNY", "travel_manager": "", "effective_from": "", "note": "差旅新规 2027",
        "long_flight_min_grade": "M3", "long_flight_over_minutes": "360", "long_flight_cabin": "business",
        "fare_kind": "lowest_logical", "fare_window_minutes": "120", "fare_max_stops": "1",
        "fare_tolerance_amount": "100", "fare_tolerance_percent": "5", "advance_days": "3",
        "preferred_airlines": "CA, MU", "preferred_hotel_chains": "Marriott", "rail_under_km": "",
        "out_of_policy": "allowed_with_approval", "approvers": ["traveler_manager"],
        "cabin-TOTAL_FORMS": "3", "cabin-INITIAL_FORMS": "0", "cabin-MIN_NUM_FORMS": "0", "cabin-MAX_NUM_FORMS": "60",
        "cabin-0-max_cabin": "economy", "cabin-0-min_grade": "", "cabin-0-departments": "",
        "cabin-1-max_cabin": "premium_economy", "cabin-1-min_grade": "M1", "cabin-1-departments": "销售部, Sales",
        "cabin-2-max_cabin": "economy", "cabin-2-min_grade": "", "cabin-2-departments": "", "cabin-2-DELETE": "on",
        "cap-TOTAL_FORMS": "2", "cap-INITIAL_FORMS": "0", "cap-MIN_NUM_FORMS": "0", "cap-MAX_NUM_FORMS": "60",
        "cap-0-city_tier": "1", "cap-0-nightly_cap": "900", "cap-0-min_grade": "", "cap-0-departments": "",
        "cap-1-city_tier": "3", "cap-1-nightly_cap": "450", "cap-1-min_grade": "", "cap-1-departments": "",
    }
    data.update(changes)
    return data


def test_edit_a_policy_with_formsets_and_field_errors(alpha, page_client):
    account, *_rest = setup_case(alpha)
    client = page_client("alpha", "manager")
    form = client.get(f"/accounts/{account.pk}/policy/edit/")
    assert form.status_code == 200 and b'name="cabin-0-max_cabin"' in form.content
    # A bad grade in a row, a bad window: errors on those fields, nothing saved.
    response = client.post(f"/accounts/{account.pk}/policy/edit/", policy_post(**{
        "cabin-1-min_grade": "经理", "fare_window_minutes": "-1"}))
    assert response.status_code == 400
    assert b'data-field="cabin-1-min_grade"' in response.content and b'data-field="fare_window_minutes"' in response.content
    # The service's errors land on the form too (travel manager required by the approvers).
    response = client.post(f"/accounts/{account.pk}/policy/edit/", policy_post(approvers=["travel_manager"]))
    assert response.status_code == 400 and b'data-field="travel_manager"' in response.content
    response = client.post(f"/accounts/{account.pk}/policy/edit/", policy_post())
    assert response.status_code == 302
    with tenant_context(alpha):
        latest = PolicyVersion.objects.filter(policy__account=account).order_by("-number").first()
        assert latest.number == 2 and latest.note == "差旅新规 2027" and latest.created_by == user(alpha, "manager")
        assert latest.rules["cabin_rules"] == [
            {"max_cabin": "economy", "min_grade": None, "departments": None},
            {"max_cabin": "premium_economy", "min_grade": "M1", "departments": ["Sales", "销售部"]}]
        assert [c["nightly_cap"] for c in latest.rules["hotel_caps"]] == ["900.00", "450.00"]
    detail = client.get(f"/accounts/{account.pk}/policy/")
    assert detail.status_code == 200 and b'data-test="in-force"' in detail.content
    history = client.get(f"/accounts/{account.pk}/policy/versions/")
    assert history.content.count(b'data-test="version"') == 2 and b'data-change="hotel_caps"' in history.content
    card = client.get(f"/customers/{account.pk}/")
    assert b'data-test="policy-card"' in card.content and b'data-test="policy-edit"' in card.content


def test_check_a_booking_page(alpha, page_client):
    account, _boss, traveler, *_rest = setup_case(alpha)
    client = page_client("alpha", "sales")
    assert client.get(f"/accounts/{account.pk}/policy/check/").status_code == 200
    at = (timezone.localtime() + timedelta(days=20)).replace(hour=9, minute=0)
    data = {"kind": "flight", "traveler": traveler.pk, "flight_numbers": "CA1301", "origin": "PEK",
            "destination": "SZX", "departure": at.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": "130", "stops": "0",
            "cabin": "business", "fare": "4000", "currency": "CNY", "nights": "1",
            "alt-TOTAL_FORMS": "2", "alt-INITIAL_FORMS": "0", "alt-MIN_NUM_FORMS": "0", "alt-MAX_NUM_FORMS": "50",
            "alt-0-flight_numbers": "MU5301", "alt-0-departure": (at + timedelta(minutes=40)).strftime("%Y-%m-%dT%H:%M"),
            "alt-0-cabin": "economy", "alt-0-price": "1500"}
    response = client.post(f"/accounts/{account.pk}/policy/check/", data)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-compliant="false"' in page
    assert "Business class not allowed for grade P2 on a 2 h 10 min flight (at most Economy)" in page
    assert 'data-test="cheapest"' in page and "MU5301" in page and "CNY 2,500.00" in page
    # Field errors: the offer and an alternative row.
    response = client.post(f"/accounts/{account.pk}/policy/check/", {**data, "cabin": ""})
    assert response.status_code == 400 and b'data-field="cabin"' in response.content
    response = client.post(f"/accounts/{account.pk}/policy/check/", {**data, "alt-0-price": "-3"})
    assert response.status_code == 400 and b'data-field="alt-0-price"' in response.content
    response = client.post(f"/accounts/{account.pk}/policy/check/", {**data, "alt-0-cabin": ""})
    assert response.status_code == 400 and b'data-field="alt-0-cabin"' in response.content


def test_check_page_proposes_a_cheaper_in_policy_economy_fare_for_business(alpha, page_client):
    """Issue 20: a D1 may fly business, but the form's economy alternative (CNY 1,300, 30 minutes
    later) is the lowest logical fare: the CNY 5,200 business fare fails the fare rule, and the page
    proposes the economy flight with the saving missed."""
    account, *_rest = setup_case(alpha)
    at = (timezone.localtime() + timedelta(days=20)).replace(hour=9, minute=0)
    data = {"kind": "flight", "grade": "D1", "department": "Sales", "flight_numbers": "CA1501", "origin": "PEK",
            "destination": "SHA", "departure": at.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": "130", "stops": "0",
            "cabin": "business", "fare": "5200", "currency": "CNY", "nights": "1",
            "requested_departure": at.strftime("%Y-%m-%dT%H:%M"),
            "alt-TOTAL_FORMS": "3", "alt-INITIAL_FORMS": "0", "alt-MIN_NUM_FORMS": "0", "alt-MAX_NUM_FORMS": "50",
            "alt-0-flight_numbers": "MU5101", "alt-0-departure": (at + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"),
            "alt-0-cabin": "economy", "alt-0-price": "1300"}
    response = page_client("alpha", "sales").post(f"/accounts/{account.pk}/policy/check/", data)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-compliant="false"' in page
    assert "Business class allowed for grade D1" in page
    assert "Fare CNY 5,200.00 is CNY 3,900.00 above the lowest logical fare CNY 1,300.00 (MU5101, " in page
    assert 'data-test="cheapest"' in page and "CNY 3,900.00" in page


def test_trip_item_check_records_and_the_trip_shows_it(alpha, page_client):
    account, _boss, traveler, trip, flight, hotel = setup_case(alpha)
    client = page_client("alpha", "sales")
    trip_page = client.get(f"/trips/{trip.pk}/")
    assert f"/trips/items/{flight.pk}/policy-check/".encode() in trip_page.content
    form = client.get(f"/trips/items/{flight.pk}/policy-check/")
    assert form.status_code == 200 and b'value="CA1301"' in form.content and b'value="2600.00"' in form.content
    at = (timezone.localtime() + timedelta(days=20)).replace(hour=9, minute=0)
    data = {"traveler": traveler.pk, "flight_numbers": "CA1301", "origin": "PEK", "destination": "SZX",
            "departure": at.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": "190", "stops": "0", "cabin": "business",
            "fare": "2600", "currency": "CNY", "alt-TOTAL_FORMS": "0", "alt-INITIAL_FORMS": "0",
            "alt-MIN_NUM_FORMS": "0", "alt-MAX_NUM_FORMS": "50"}
    assert client.post(f"/trips/items/{flight.pk}/policy-check/", {**data, "cabin": ""}).status_code == 400
    response = client.post(f"/trips/items/{flight.pk}/policy-check/", data)
    assert response.status_code == 302 and response["Location"].endswith(f"/trips/{trip.pk}/#policy")
    with tenant_context(alpha):
        check = BookingCheck.objects.get(item=flight)
        approval = Approval.objects.get(booking_check=check)
    shown = client.get(f"/trips/{trip.pk}/").content.decode()
    assert f'data-check="{check.pk}"' in shown and 'data-test="approval-status"' in shown
    assert "Business class not allowed for grade P2" in shown
    # Hotel item: in policy, no approval.
    hotel_data = {"traveler": traveler.pk, "property_name": "深圳福田香格里拉", "chain": "Shangri-La", "city": "深圳",
                  "nights": "2", "nightly_rate": "700", "currency": "CNY", "alt-TOTAL_FORMS": "0",
                  "alt-INITIAL_FORMS": "0", "alt-MIN_NUM_FORMS": "0", "alt-MAX_NUM_FORMS": "50"}
    assert client.post(f"/trips/items/{hotel.pk}/policy-check/", hotel_data).status_code == 302
    with tenant_context(alpha):
        assert BookingCheck.objects.get(item=hotel).compliant
    # The approval: the requester sees it but cannot decide; a manager decides.
    mine = client.get(f"/approvals/{approval.pk}/")
    assert mine.status_code == 200 and b'data-test="requester-note"' in mine.content
    assert b'data-test="decide-form"' not in mine.content
    assert client.post(f"/approvals/{approval.pk}/", {"decision": "approved"}).status_code == 403
    manager = page_client("alpha", "manager")
    assert f'data-approval="{approval.pk}"'.encode() in manager.get("/approvals/").content
    assert b'data-test="policy-dashboard"' in manager.get("/").content
    assert manager.post(f"/approvals/{approval.pk}/", {"decision": "rejected", "comment": ""}).status_code == 400
    assert manager.post(f"/approvals/{approval.pk}/", {"decision": "approved", "comment": "OK"}).status_code == 302
    again = manager.post(f"/approvals/{approval.pk}/", {"decision": "rejected", "comment": "No"}, follow=True)
    assert b"already decided" in again.content
    with tenant_context(alpha):
        approval.refresh_from_db()
        assert approval.status == "approved" and approval.decided_by == user(alpha, "manager")
    assert b'data-test="policy-person-approvals"' in client.get(f"/customers/{traveler.pk}/").content


def test_forbidden_item_shows_a_clear_message(alpha, page_client):
    account, _boss, traveler, trip, flight, _hotel = setup_case(alpha, rules={"out_of_policy": "forbidden"})
    at = (timezone.localtime() + timedelta(days=20)).replace(hour=9, minute=0)
    response = page_client("alpha", "sales").post(f"/trips/items/{flight.pk}/policy-check/", {
        "traveler": traveler.pk, "flight_numbers": "CA1301", "departure": at.strftime("%Y-%m-%dT%H:%M"),
        "duration_minutes": "190", "cabin": "first", "fare": "9000", "alt-TOTAL_FORMS": "0",
        "alt-INITIAL_FORMS": "0", "alt-MIN_NUM_FORMS": "0", "alt-MAX_NUM_FORMS": "50"}, follow=True)
    assert b"forbids out-of-policy bookings" in response.content and b'data-test="forbidden"' in response.content


def test_employment_form_sets_reports_to(alpha, page_client):
    account, boss, traveler, *_rest = setup_case(alpha)
    with tenant_context(alpha):
        newcomer = person("新人 Newcomer")
    client = page_client("alpha", "sales")
    response = client.post(f"/customers/{account.pk}/company/link/", {
        "person": newcomer.pk, "job_grade": "P1", "department": "Sales", "is_traveler": "on",
        "reports_to": boss.pk})
    assert response.status_code in (200, 302), response.content[:500]
    with tenant_context(alpha):
        assert Employment.objects.get(company=account, person=newcomer).reports_to == boss
    section = client.get(f"/customers/{account.pk}/company/").content.decode()
    assert section.count('data-test="reports-to">李经理 Manager Li') == 2 and 'name="reports_to"' in section


def test_report_page_and_csv(alpha, page_client):
    account, _boss, traveler, trip, flight, _hotel = setup_case(alpha)
    with tenant_context(alpha):
        services.booking_check_record(actor=None, item=flight, traveler=traveler,
                                      offer=flight_offer(cabin="business", fare="4000"),
                                      alternatives=[flight_offer(fare="1500", number="MU5301")])
    client = page_client("alpha", "finance")  # reads reports
    page = client.get(f"/accounts/{account.pk}/policy/report/")
    assert page.status_code == 200
    assert b'data-test="compliance-rate">0.0%' in page.content and b'data-code="cabin.not_allowed"' in page.content
    assert b'data-test="proposed-saving">2,500.00' in page.content
    bad = client.get(f"/accounts/{account.pk}/policy/report/?date_from=2026-05-02&date_to=2026-05-01")
    assert b'data-field="date_to"' in bad.content
    csv = b"".join(client.get(f"/accounts/{account.pk}/policy/report/?format=csv").streaming_content).decode()
    assert csv.startswith("\ufeff") and "cabin.not_allowed" in csv and "2500.00" in csv


def test_exchange_rates_page(alpha, page_client):
    client = page_client("alpha", "admin")
    assert client.get("/settings/exchange-rates/").status_code == 200
    assert client.post("/settings/exchange-rates/", {"currency": "USD", "rate": "-1"}).status_code == 400
    assert client.post("/settings/exchange-rates/", {"currency": "usd", "rate": "7.1850"}).status_code == 302
    with tenant_context(alpha):
        assert str(ExchangeRate.objects.get(currency="USD").rate) == "7.18500000"
    assert client.post("/settings/exchange-rates/", {"delete": "USD"}).status_code == 302
    assert page_client("alpha", "manager").get("/settings/exchange-rates/").status_code == 403


@pytest.mark.parametrize("role", sorted(Role.values))
def test_roles_on_the_pages(alpha, page_client, role):
    account, _boss, _traveler, trip, flight, _hotel = setup_case(alpha)
    client = page_client("alpha", role)
    assert client.get(f"/accounts/{account.pk}/policy/").status_code == 200  # every role sees customers
    assert client.get(f"/accounts/{account.pk}/policy/edit/").status_code == (200 if role in MANAGE else 403)
    assert client.get(f"/accounts/{account.pk}/policy/check/").status_code == (200 if role in WORK else 403)
    assert client.get(f"/trips/items/{flight.pk}/policy-check/").status_code == (200 if role in WORK else 403)
    assert client.get(f"/accounts/{account.pk}/policy/report/").status_code == (200 if role in REPORT else 403)
    assert client.get("/approvals/").status_code == 200


def test_the_fence_between_agencies(alpha, bravo, page_client):
    account, _boss, _traveler, trip, flight, _hotel = setup_case(alpha)
    with tenant_context(alpha):
        check = services.booking_check_record(actor=None, item=flight, traveler=_traveler,
                                              offer=flight_offer(cabin="business", fare="4000"))
        approval = check.approval
        token = services.approval_token(approval)
    bravo_manager = page_client("bravo", "manager")
    for path in (f"/accounts/{account.pk}/policy/", f"/accounts/{account.pk}/policy/edit/",
                 f"/accounts/{account.pk}/policy/check/", f"/accounts/{account.pk}/policy/report/",
                 f"/trips/items/{flight.pk}/policy-check/", f"/approvals/{approval.pk}/"):
        assert bravo_manager.get(path).status_code == 404, path
    assert bravo_manager.post(f"/approvals/{approval.pk}/", {"decision": "approved"}).status_code == 404
    assert page_client("bravo").get(f"/approval/{token}/").status_code == 404
    # alpha's session cookie on bravo's host finds nobody.
    assert page_client("alpha", "manager", on="bravo.localhost").get("/approvals/").status_code == 302
    with tenant_context(alpha):
        assert Approval.objects.get(pk=approval.pk).status == "pending"
