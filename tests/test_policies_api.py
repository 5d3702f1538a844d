"""Travel-policy API: POST /api/v1/policy-check, policies and versions, booking checks, approvals,
the report, roles, translations by Accept-Language, and the fence between agencies."""
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone, translation
from django_tenants.utils import tenant_context

from accounts.roles import Cap, Role, role_can
from crm.policies import messages, services
from crm.policies.models import Approval, BookingCheck

from .policy_factories import RULES, flight_offer, hotel_offer, setup_account, trip_with_items, user

pytestmark = pytest.mark.django_db
WORK = {r for r in Role.values if role_can(r, Cap.PIPELINE_WORK)}
MANAGE = {r for r in Role.values if role_can(r, Cap.POLICIES_MANAGE)}


def setup_case(agency, **kwargs):
    with tenant_context(agency):
        account, boss, traveler, version = setup_account(agency, **kwargs)
        trip, flight, hotel = trip_with_items(account, traveler, owner=user(agency, "manager"))
    connection.set_schema_to_public()
    return account, boss, traveler, version, trip, flight, hotel


def check_body(account, traveler, **changes):
    at = (timezone.now() + timedelta(days=20)).replace(hour=9, minute=0, second=0, microsecond=0)
    body = {"account": account.pk, "traveler": traveler.pk, "kind": "flight",
            "offer": flight_offer(cabin="business", fare="4000", at=at, minutes=130),
            "alternatives": [flight_offer(fare="1500", number="MU5301", at=at + timedelta(minutes=30))],
            "requested_departure": at.isoformat()}
    body.update(changes)
    return body


@pytest.mark.parametrize("path", ["/api/v1/policy-check", "/api/v1/policy-check/"])
def test_policy_check(alpha, api_client, path):
    account, _boss, traveler, version, *_rest = setup_case(alpha)
    response = api_client("alpha", "sales").post(path, check_body(account, traveler), format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["compliant"] is False and data["needs_approval"] is True and data["forbidden"] is False
    assert data["policy"] == {"id": version.policy_id, "version": 1, "version_id": version.pk,
                              "effective_from": version.effective_from.isoformat(), "currency": "CNY"}
    assert data["traveler"] == {"id": traveler.pk, "grade": "P2", "department": "Sales"}
    [cabin, fare] = data["results"]
    assert cabin == {"rule": "cabin", "passed": False, "code": "cabin.not_allowed", "label": "Cabin class",
                     "params": {"cabin": "Business class", "grade": "P2", "duration": "2 h 10 min",
                                "allowed": "Economy"},
                     "reason": "Business class not allowed for grade P2 on a 2 h 10 min flight (at most Economy)"}
    # The economy fare 30 minutes later is in policy for P2: it is the lowest logical fare (issue 20).
    assert fare["code"] == "fare.above_lowest" and fare["passed"] is False
    assert fare["reason"].startswith("Fare CNY 4,000.00 is CNY 2,500.00 above the lowest logical fare CNY 1,500.00 (MU5301, ")
    assert data["cheapest_compliant"]["flight_numbers"] == ["MU5301"]
    assert data["cheapest_compliant"]["price_in_policy_currency"] == "1500.00"
    assert (data["missed_saving"], data["price"], data["currency"]) == ("2500.00", "4000.00", "CNY")
    with tenant_context(alpha):
        assert not BookingCheck.objects.exists()  # a check writes nothing


def test_policy_check_proposes_a_cheaper_in_policy_economy_fare_to_a_director(alpha, api_client):
    """Issue 20: a D1 may fly business, but the CNY 1,300 economy fare 30 minutes later is the lowest
    logical fare (±2 h, ≤ 1 stop): the CNY 5,200 business fare fails the fare rule and the economy is proposed."""
    account, _boss, traveler, *_rest = setup_case(alpha)
    at = (timezone.now() + timedelta(days=20)).replace(hour=9, minute=0, second=0, microsecond=0)
    body = check_body(account, traveler, grade="D1",
                      offer=flight_offer(cabin="business", fare="5200", at=at, minutes=130, number="CA1501"),
                      alternatives=[flight_offer(cabin="economy", fare="1300", at=at + timedelta(minutes=30),
                                                 minutes=130, number="MU5101")])
    response = api_client("alpha", "sales").post("/api/v1/policy-check", body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    [cabin, fare] = data["results"]
    assert cabin["code"] == "cabin.allowed" and cabin["passed"] is True
    assert fare["code"] == "fare.above_lowest" and fare["passed"] is False
    assert "CNY 3,900.00 above the lowest logical fare CNY 1,300.00 (MU5101" in fare["reason"]
    assert data["compliant"] is False and data["needs_approval"] is True
    assert data["cheapest_compliant"]["flight_numbers"] == ["MU5101"]
    assert data["missed_saving"] == "3900.00"


def test_policy_check_by_grade_and_hotel(alpha, api_client):
    account, *_rest = setup_case(alpha)
    response = api_client("alpha", "sales").post("/api/v1/policy-check", {
        "account": account.pk, "grade": "M1", "department": "R&D", "kind": "hotel",
        "offer": hotel_offer(rate="1300", city="Shanghai"), "alternatives": [hotel_offer(rate="1000", name="全季")]},
        format="json")
    data = response.json()
    assert response.status_code == 200 and data["compliant"] is False
    assert data["results"][0]["reason"] == ("Nightly rate CNY 1,300.00 is CNY 100.00 above the cap CNY 1,200.00 "
                                            "for grade M1 in tier-1 city Shanghai")
    assert data["missed_saving"] == "600.00"


def test_policy_check_field_errors(alpha, api_client):
    account, _boss, traveler, *_rest = setup_case(alpha)
    client = api_client("alpha", "sales")
    bad = check_body(account, traveler, offer={**flight_offer(), "fare": "lots", "cabin": "sofa"},
                     alternatives=[{**flight_offer(), "departure": "soon"}])
    response = client.post("/api/v1/policy-check", bad, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"offer.fare", "offer.cabin", "alternatives.0.departure"}
    response = client.post("/api/v1/policy-check", {"kind": "boat"}, format="json")
    assert set(response.json()["error"]["fields"]) == {"account", "kind", "offer"}
    response = client.post("/api/v1/policy-check", {**check_body(account, traveler), "account": traveler.pk}, format="json")
    assert response.status_code == 400 and set(response.json()["error"]["fields"]) == {"account"}
    response = client.post("/api/v1/policy-check", check_body(
        account, traveler, booked_at=(timezone.now() - timedelta(days=365)).isoformat()), format="json")
    assert response.status_code == 400 and "no travel policy" in response.json()["error"]["fields"]["account"][0]


def test_reasons_follow_accept_language(alpha, api_client):
    account, _boss, traveler, *_rest = setup_case(alpha)
    client = api_client("alpha", "sales")
    response = client.post("/api/v1/policy-check", check_body(account, traveler), format="json",
                           HTTP_ACCEPT_LANGUAGE="zh-hans")
    cabin = response.json()["results"][0]
    with translation.override("zh-hans"):
        assert cabin["reason"] == messages.reason(cabin["code"], cabin["params"])
        assert cabin["label"] == str(messages.RULE_LABELS["cabin"])


def test_policies_and_versions(alpha, api_client):
    account, boss, _traveler, version, *_rest = setup_case(alpha)
    client = api_client("alpha", "manager")
    listing = client.get(f"/api/v1/travel-policies/?account={account.pk}").json()
    [policy] = listing["results"]
    assert policy["in_force"]["number"] == 1 and policy["latest_number"] == 1
    response = client.post("/api/v1/travel-policies/", {
        "account": account.pk, "rules": {**RULES, "advance_days": 3, "approvers": ["travel_manager"]},
        "travel_manager": boss.pk, "note": "Three days ahead"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["number"] == 2 and response.json()["rules"]["advance_days"] == 3
    versions = client.get(f"/api/v1/travel-policies/{policy['id']}/versions/").json()
    assert [v["number"] for v in versions] == [2, 1]
    response = client.post("/api/v1/travel-policies/", {
        "account": account.pk, "rules": {"hotel_caps": [{"city_tier": 9, "nightly_cap": "x"}]}}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"hotel_caps.0.city_tier", "hotel_caps.0.nightly_cap"}
    assert api_client("alpha", "sales").post("/api/v1/travel-policies/", {
        "account": account.pk, "rules": RULES}, format="json").status_code == 403


def test_booking_checks_approvals_and_report(alpha, api_client):
    account, _boss, traveler, version, trip, flight, hotel = setup_case(alpha)
    sales = api_client("alpha", "sales")
    body = {"item": flight.pk, "traveler": traveler.pk, "offer": flight_offer(cabin="business", fare="4000"),
            "alternatives": [flight_offer(fare="1500", number="MU5301")]}
    response = sales.post("/api/v1/booking-checks/", body, format="json")
    assert response.status_code == 201, response.content
    check = response.json()
    # The economy alternative is in policy for P2, so it is also the lowest logical fare (issue 20).
    assert check["compliant"] is False and check["failed_codes"] == ["cabin.not_allowed", "fare.above_lowest"]
    assert check["approval"]["status"] == "pending"
    assert sales.post("/api/v1/booking-checks/", {**body, "item": 999999}, format="json").json()["error"]["fields"] == {
        "item": ["No such itinerary item."]}
    listed = sales.get(f"/api/v1/booking-checks/?trip={trip.pk}").json()["results"]
    assert [c["id"] for c in listed] == [check["id"]]
    approval_id = check["approval"]["id"]
    # The requester sees it, cannot decide; sales cannot decide at all; a manager can, once.
    assert sales.get(f"/api/v1/approvals/{approval_id}/").json()["reasons"] == [
        "Business class not allowed for grade P2 on a 3 h 10 min flight (at most Economy)",
        "Fare CNY 4,000.00 is CNY 2,500.00 above the lowest logical fare CNY 1,500.00 (MU5301, 09:00, within ±2 h)"]
    assert sales.post(f"/api/v1/approvals/{approval_id}/decide/", {"decision": "approved"},
                      format="json").status_code == 403
    manager = api_client("alpha", "manager")
    pending = manager.get("/api/v1/approvals/?status=pending").json()["results"]
    assert [a["id"] for a in pending] == [approval_id]
    response = manager.post(f"/api/v1/approvals/{approval_id}/decide/", {"decision": "rejected"}, format="json")
    assert response.status_code == 400 and set(response.json()["error"]["fields"]) == {"comment"}
    response = manager.post(f"/api/v1/approvals/{approval_id}/decide/", {"decision": "approved", "comment": "OK"},
                            format="json")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    response = manager.post(f"/api/v1/approvals/{approval_id}/decide/", {"decision": "rejected", "comment": "no"},
                            format="json")
    assert response.status_code == 409 and response.json()["error"]["existing"]["status"] == "approved"
    report = manager.get(f"/api/v1/travel-policies/{version.policy_id}/report/").json()
    assert (report["checked"], report["compliant"], report["compliance_rate"]) == (1, 0, 0.0)
    assert report["exception_reasons"] == [{"code": "cabin.not_allowed", "label": "Cabin above the grade's allowance",
                                            "count": 1},
                                           {"code": "fare.above_lowest", "label": "Fare above the lowest logical fare",
                                            "count": 1}]
    assert report["approvals"] == {"pending": 0, "approved": 1, "rejected": 0}
    assert report["proposal"]["saving"] == "2500.00" and report["missed_savings"] == "2500.00"
    assert api_client("alpha", "sales").get(f"/api/v1/travel-policies/{version.policy_id}/report/").status_code == 403
    bad = manager.get(f"/api/v1/travel-policies/{version.policy_id}/report/?from=2026-05-02&to=2026-05-01")
    assert bad.status_code == 400


@pytest.mark.parametrize("role", sorted(Role.values))
def test_roles_on_the_api(alpha, api_client, role):
    account, _boss, traveler, version, *_rest = setup_case(alpha)
    client = api_client("alpha", role)
    assert client.post("/api/v1/policy-check", check_body(account, traveler), format="json").status_code == (
        200 if role in WORK else 403)
    assert client.get("/api/v1/travel-policies/").status_code == 200
    assert client.get("/api/v1/booking-checks/").status_code == (200 if role in WORK else 403)
    assert client.get("/api/v1/approvals/").status_code == 200


def test_the_fence_between_agencies(alpha, bravo, api_client):
    account, _boss, traveler, version, trip, flight, _hotel = setup_case(alpha)
    with tenant_context(alpha):
        check = services.booking_check_record(actor=None, item=flight, traveler=traveler,
                                              offer=flight_offer(cabin="business", fare="4000"))
        approval_id = check.approval.pk
    connection.set_schema_to_public()
    bravo_admin = api_client("bravo", "admin")
    # alpha's ids on bravo's host: not found (as field errors or 404), never alpha's data.
    response = bravo_admin.post("/api/v1/policy-check", check_body(account, traveler), format="json")
    assert response.status_code == 400 and set(response.json()["error"]["fields"]) <= {"account", "traveler"}
    assert bravo_admin.get(f"/api/v1/travel-policies/{version.policy_id}/").status_code == 404
    assert bravo_admin.get(f"/api/v1/travel-policies/{version.policy_id}/report/").status_code == 404
    assert bravo_admin.get(f"/api/v1/approvals/{approval_id}/").status_code == 404
    assert bravo_admin.post(f"/api/v1/approvals/{approval_id}/decide/", {"decision": "approved"},
                            format="json").status_code == 404
    assert bravo_admin.get(f"/api/v1/booking-checks/{check.pk}/").status_code == 404
    assert bravo_admin.post("/api/v1/booking-checks/", {"item": flight.pk, "traveler": traveler.pk,
                                                        "offer": flight_offer()}, format="json").status_code == 400
    # alpha's token on bravo's host: unknown there.
    assert api_client("alpha", "admin", on="bravo.localhost").post(
        "/api/v1/policy-check", check_body(account, traveler), format="json").status_code == 401
    # Nor on the platform domain.
    assert api_client("alpha", "admin", on="localhost").get("/api/v1/approvals/").status_code in (401, 404)
    with tenant_context(alpha):
        assert Approval.objects.get(pk=approval_id).status == "pending"
