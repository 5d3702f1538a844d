"""Care pages and API: complaints and surveys, roles, and the fence between agencies."""
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.roles import Cap, Role, role_can
from crm.care import services
from crm.care.models import Complaint, Survey

from .care_factories import customer, trip, user

pytestmark = pytest.mark.django_db
HANDLE = {r for r in Role.values if role_can(r, Cap.COMPLAINTS_HANDLE)}
SURVEYS = {r for r in Role.values if role_can(r, Cap.COMPLAINTS_HANDLE) or role_can(r, Cap.REPORTS_VIEW)}


def setup_case(agency, *, severity="medium", answered=True, email="wang"):
    """A customer with a returned trip, an answered low-score survey and an open complaint."""
    email = f"{email}@{agency.slug}.example.cn"
    with tenant_context(agency):
        buyer = customer("王芳", email=email, language="zh-hans", owner=user(agency, "sales"))
        journey = trip(buyer, returned_days_ago=3, owner=user(agency, "manager"))
        survey = Survey.objects.create(trip=journey, customer=buyer, email=email,
                                       sent_at=timezone.now() - timedelta(days=1))
        if answered:
            services.survey_answer(survey=survey, csat=2, nps=3, comment="导游迟到 The guide was late")
        complaint = services.complaint_log(actor=user(agency, "service"), customer=buyer, category="guide",
                                           severity=severity, description="导游迟到两小时", trip=journey)
    connection.set_schema_to_public()
    return buyer, journey, survey, complaint


# --- pages ----------------------------------------------------------------------------------------

def test_complaint_pages_for_a_handler(alpha, page_client):
    buyer, journey, survey, complaint = setup_case(alpha)
    client = page_client("alpha", "service")
    listing = client.get("/complaints/")
    assert listing.status_code == 200 and f'data-complaint="{complaint.pk}"'.encode() in listing.content
    assert client.get("/complaints/?status=resolved").content.count(b"data-complaint=") == 0
    assert client.get("/complaints/?severity=medium&overdue=&escalated=").content.count(b"data-complaint=") == 1
    detail = client.get(f"/complaints/{complaint.pk}/")
    assert detail.status_code == 200 and "导游迟到两小时".encode() in detail.content

    # Resolve without saying how: a field error, nothing changes.
    response = client.post(f"/complaints/{complaint.pk}/status/", {"status": "resolved", "resolution": "",
                                                                   "compensation": "refund"})
    assert response.status_code == 400
    assert b'data-field="resolution"' in response.content and b'data-field="compensation_amount"' in response.content
    # An illegal move: a clear error on the status.
    response = client.post(f"/complaints/{complaint.pk}/status/", {"status": "closed"})
    assert response.status_code == 400 and b'data-field="status"' in response.content

    assert client.post(f"/complaints/{complaint.pk}/status/", {"status": "in_progress"}).status_code == 302
    response = client.post(f"/complaints/{complaint.pk}/status/", {
        "status": "resolved", "resolution": "Refunded the tour", "compensation": "refund",
        "compensation_amount": "300.00"})
    assert response.status_code == 302
    with tenant_context(alpha):
        complaint.refresh_from_db()
        assert complaint.status == "resolved" and str(complaint.compensation_amount) == "300.00"
    assert b'data-test="resolution"' in client.get(f"/complaints/{complaint.pk}/").content


def test_reassign_from_the_page(alpha, page_client):
    _buyer, _journey, _survey, complaint = setup_case(alpha)
    manager = staff_pk(alpha, "manager")
    client = page_client("alpha", "service")
    assert client.post(f"/complaints/{complaint.pk}/assign/", {"owner": manager}).status_code == 302
    assert client.post(f"/complaints/{complaint.pk}/assign/", {"owner": 999999}).status_code == 400
    with tenant_context(alpha):
        assert Complaint.objects.get(pk=complaint.pk).owner_id == manager


def staff_pk(agency, role):
    with tenant_context(agency):
        return user(agency, role).pk


def test_log_from_the_card_a_trip_and_a_survey(alpha, page_client):
    buyer, journey, survey, _complaint = setup_case(alpha)
    client = page_client("alpha", "call_center")
    form = client.get(f"/customers/{buyer.pk}/complaints/new/?trip={journey.pk}")
    assert form.status_code == 200 and f'<option value="{journey.pk}" selected'.encode() in form.content
    from_survey = client.get(f"/customers/{buyer.pk}/complaints/new/?survey={survey.pk}")
    assert b'data-test="from-survey"' in from_survey.content and "导游迟到 The guide was late".encode() in from_survey.content
    bad = client.post(f"/customers/{buyer.pk}/complaints/new/", {"category": "", "severity": "high", "description": ""})
    assert bad.status_code == 400 and b'data-field="category"' in bad.content and b'data-field="description"' in bad.content
    response = client.post(f"/customers/{buyer.pk}/complaints/new/?survey={survey.pk}", {
        "category": "guide", "severity": "high", "description": "Late guide", "trip": journey.pk, "survey": survey.pk})
    assert response.status_code == 302
    with tenant_context(alpha):
        logged = Complaint.objects.get(description="Late guide")
        assert logged.survey_id == survey.pk and logged.trip_id == journey.pk
        assert logged.owner == user(alpha, "manager")  # the trip's owner
        assert response["Location"] == f"/complaints/{logged.pk}/"


def test_dashboard_shows_complaints_near_their_deadline(alpha, page_client):
    _buyer, _journey, _survey, complaint = setup_case(alpha, severity="critical")
    mine = page_client("alpha", "service").get("/")  # service logged it, but the trip's owner owns it
    assert b'data-test="care-dashboard"' in mine.content
    assert f"/complaints/{complaint.pk}/".encode() not in mine.content
    assert f"/complaints/{complaint.pk}/".encode() in page_client("alpha", "manager").get("/").content
    assert b'data-test="care-dashboard"' not in page_client("alpha", "sales").get("/").content


@pytest.mark.parametrize("role", sorted(Role.values))
def test_roles_on_the_pages(alpha, page_client, role):
    buyer, _journey, _survey, complaint = setup_case(alpha)
    client = page_client("alpha", role)
    handle = 200 if role in HANDLE else 403
    assert client.get("/complaints/").status_code == handle
    assert client.get(f"/complaints/{complaint.pk}/").status_code == handle
    assert client.get(f"/customers/{buyer.pk}/complaints/new/").status_code == handle
    assert client.post(f"/complaints/{complaint.pk}/status/", {"status": "in_progress"}).status_code == (
        302 if role in HANDLE else 403)
    assert client.get("/care/surveys/").status_code == (200 if role in SURVEYS else 403)


def test_signed_out_visitors_are_sent_to_sign_in(alpha, page_client):
    _buyer, _journey, _survey, complaint = setup_case(alpha)
    anonymous = page_client(None, on="alpha.localhost")
    for path in ("/complaints/", f"/complaints/{complaint.pk}/", "/care/surveys/"):
        response = anonymous.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_survey_report_figures(alpha, page_client):
    setup_case(alpha)
    with tenant_context(alpha):
        for n, (csat, nps) in enumerate([(5, 10), (4, 9), (3, 7)]):
            buyer = customer(f"Happy {n}", email=f"happy{n}@example.com")
            survey = Survey.objects.create(trip=trip(buyer, returned_days_ago=2), customer=buyer,
                                           email=f"happy{n}@example.com", sent_at=timezone.now())
            services.survey_answer(survey=survey, csat=csat, nps=nps)
        buyer = customer("Silent", email="silent@example.com")
        Survey.objects.create(trip=trip(buyer, returned_days_ago=2), customer=buyer, email="silent@example.com",
                              sent_at=timezone.now())
    connection.set_schema_to_public()
    report = page_client("alpha", "finance").get("/care/surveys/").content.decode()
    assert 'data-test="response-rate">80.0%' in report
    assert 'data-test="avg-csat">3.5' in report
    assert 'data-test="nps">25<' in report  # 2 promoters, 1 passive, 1 detractor of 4
    api = page_client("alpha", "manager").get("/care/surveys/?date_from=2000-01-01&date_to=1999-01-01")
    assert api.status_code == 200 and b'data-field="date_to"' in api.content


# --- API ------------------------------------------------------------------------------------------

def test_api_complaints_flow(alpha, api_client):
    buyer, journey, survey, _complaint = setup_case(alpha)
    client = api_client("alpha", "service")
    created = client.post("/api/v1/complaints/", {"customer": buyer.pk, "category": "hotel", "severity": "high",
                                                  "description": "No hot water", "trip": journey.pk}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "open" and body["currency"] == alpha.currency and body["owner"]["id"] == staff_pk(alpha, "manager")
    pk = body["id"]
    assert client.get(f"/api/v1/complaints/{pk}/").json()["description"] == "No hot water"
    assert len(client.get("/api/v1/complaints/?severity=high").json()["results"]) == 1
    assert client.get("/api/v1/complaints/?status=bogus").status_code == 400

    illegal = client.post(f"/api/v1/complaints/{pk}/status/", {"status": "closed"}, format="json")
    assert illegal.status_code == 400 and "status" in illegal.json()["error"]["fields"]
    missing = client.post(f"/api/v1/complaints/{pk}/status/", {"status": "resolved", "compensation": "voucher"},
                          format="json")
    assert set(missing.json()["error"]["fields"]) == {"resolution", "compensation_amount"}
    resolved = client.post(f"/api/v1/complaints/{pk}/status/", {
        "status": "resolved", "resolution": "Voucher for next stay", "compensation": "voucher",
        "compensation_amount": "200.00"}, format="json")
    assert resolved.status_code == 200 and resolved.json()["compensation_amount"] == "200.00"
    assert client.post(f"/api/v1/complaints/{pk}/status/", {"status": "closed"}, format="json").json()["status"] == "closed"

    other = setup_case(alpha, email="other")[3]
    moved = client.post(f"/api/v1/complaints/{other.pk}/assign/", {"owner": staff_pk(alpha, "manager")}, format="json")
    assert moved.status_code == 200 and moved.json()["owner"]["id"] == staff_pk(alpha, "manager")
    bad = client.post("/api/v1/complaints/", {"customer": buyer.pk, "category": "nope", "description": ""}, format="json")
    assert bad.status_code == 400 and {"category", "description"} <= set(bad.json()["error"]["fields"])


def test_api_surveys_and_report(alpha, api_client):
    _buyer, _journey, survey, _complaint = setup_case(alpha)
    client = api_client("alpha", "finance")
    listing = client.get("/api/v1/surveys/").json()["results"]
    assert [s["id"] for s in listing] == [survey.pk] and listing[0]["is_low"] is True
    assert client.get(f"/api/v1/surveys/{survey.pk}/").json()["csat"] == 2
    today = timezone.localdate()
    report = client.get(f"/api/v1/surveys/report/?from={today - timedelta(days=7)}&to={today}").json()
    assert report["sent"] == 1 and report["answered"] == 1 and report["nps"] == -100
    assert report["csat_distribution"]["2"] == 1 and report["low_scores"][0]["id"] == survey.pk
    assert client.get("/api/v1/surveys/report/?from=2025-02-01&to=2025-01-01").status_code == 400
    assert client.post("/api/v1/surveys/", {}, format="json").status_code in (403, 405)


@pytest.mark.parametrize("role", sorted(Role.values))
def test_roles_on_the_api(alpha, api_client, role):
    buyer, _journey, survey, complaint = setup_case(alpha)
    client = api_client("alpha", role)
    handle = role in HANDLE
    assert client.get("/api/v1/complaints/").status_code == (200 if handle else 403)
    assert client.get(f"/api/v1/complaints/{complaint.pk}/").status_code == (200 if handle else 403)
    assert client.post("/api/v1/complaints/", {"customer": buyer.pk, "category": "hotel", "description": "x"},
                       format="json").status_code == (201 if handle else 403)
    assert client.post(f"/api/v1/complaints/{complaint.pk}/status/", {"status": "in_progress"},
                       format="json").status_code == (200 if handle else 403)
    assert client.post(f"/api/v1/complaints/{complaint.pk}/assign/", {"owner": staff_pk(alpha, "manager")},
                       format="json").status_code == (200 if handle else 403)
    surveys = 200 if role in SURVEYS else 403
    assert client.get("/api/v1/surveys/").status_code == surveys
    assert client.get(f"/api/v1/surveys/{survey.pk}/").status_code == surveys
    assert client.get("/api/v1/surveys/report/").status_code == surveys


# --- the fence between agencies -------------------------------------------------------------------

def test_bravos_complaints_and_surveys_are_out_of_reach_from_alpha(alpha, bravo, page_client, api_client):
    b_buyer, b_trip, b_survey, b_complaint = setup_case(bravo)  # alpha has none of these ids
    pages = page_client("alpha", "admin")
    for path in (f"/complaints/{b_complaint.pk}/", f"/customers/{b_buyer.pk}/complaints/new/"):
        assert pages.get(path).status_code == 404, path
    assert pages.post(f"/complaints/{b_complaint.pk}/status/", {"status": "in_progress"}).status_code == 404
    assert pages.post(f"/complaints/{b_complaint.pk}/assign/", {"owner": staff_pk(alpha, "manager")}).status_code == 404
    assert pages.post(f"/customers/{b_buyer.pk}/complaints/new/", {
        "category": "hotel", "severity": "low", "description": "x"}).status_code == 404
    assert "导游迟到".encode() not in pages.get("/complaints/").content
    assert "导游迟到".encode() not in pages.get("/care/surveys/").content

    api = api_client("alpha", "admin")
    assert api.get(f"/api/v1/complaints/{b_complaint.pk}/").status_code == 404
    assert api.post(f"/api/v1/complaints/{b_complaint.pk}/status/", {"status": "in_progress"}, format="json").status_code == 404
    assert api.post(f"/api/v1/complaints/{b_complaint.pk}/assign/", {"owner": 1}, format="json").status_code == 404
    assert api.get(f"/api/v1/surveys/{b_survey.pk}/").status_code == 404
    assert api.get("/api/v1/complaints/").json()["results"] == []
    assert api.get("/api/v1/surveys/").json()["results"] == []
    created = api.post("/api/v1/complaints/", {"customer": b_buyer.pk, "category": "hotel", "description": "x",
                                               "trip": b_trip.pk}, format="json")
    assert created.status_code == 400 and "customer" in created.json()["error"]["fields"]

    # Alpha's credentials on bravo's host: a session means nothing there, a token is refused.
    on_bravo = page_client("alpha", "admin", on="bravo.localhost")
    response = on_bravo.get(f"/complaints/{b_complaint.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert api_client("alpha", "admin", on="bravo.localhost").get("/api/v1/complaints/").status_code == 401
    assert api_client("alpha", "admin", on="bravo.localhost").get("/api/v1/surveys/report/").status_code == 401
    # Nothing of bravo changed.
    with tenant_context(bravo):
        b_complaint.refresh_from_db()
        assert b_complaint.status == "open" and b_complaint.owner == user(bravo, "manager")


def test_platform_domain_serves_none_of_it(page_client, api_client, operator_client):
    assert operator_client.get("/api/v1/complaints/").status_code == 404
    for path in ("/complaints/", "/care/surveys/"):
        assert page_client(None, on="localhost").get(path).status_code == 404
