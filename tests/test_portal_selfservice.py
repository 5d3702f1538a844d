"""The customer's own details in the portal, their trip's survey and "Something went wrong?" (issue 21).
Every change goes through the services staff use and lands in the card's change log, marked as the
customer's own (``ChangeLog.Via.PORTAL``, no actor); staff edits of the same things are logged too."""
import uuid
from datetime import date

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from crm.campaigns.consent import may_email
from crm.campaigns.models import Consent
from crm.care.models import Complaint, Survey
from crm.customers import services as customers
from crm.customers.models import ChangeLog, FamilyDate, LoyaltyMembership, Preferences
from crm.pipeline.models import Task

from .conftest import host, staff
from .portal_helpers import confirmed_trip, forget_limits, person, portal_client


pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def wang(alpha):
    with tenant_context(alpha):
        customer = person("王芳", f"wang.{uuid.uuid4().hex[:8]}@example.cn", language="zh-hans")
        customer.trip = confirmed_trip(customer, title="京都红叶")
        customer.other = person("赵敏", f"zhao.{uuid.uuid4().hex[:8]}@example.cn")
        customer.other_trip = confirmed_trip(customer.other, title="Other trip")
        forget_limits(customer)
    connection.set_schema_to_public()
    return customer


def _post(client, **data):
    return client.post("/portal/me/", data)


def test_preferences_change_is_logged_as_the_customers_own(alpha, wang):
    client = portal_client(alpha, wang)
    page = client.get("/portal/me/")
    assert page.status_code == 200 and 'data-test="portal-preferences"' in page.content.decode()
    response = _post(client, action="preferences", **{"preferences-seat": "aisle", "preferences-meal": "AVML",
                                                      "preferences-cabin": "", "preferences-airlines": "ca，mu",
                                                      "preferences-room_type": "high floor"})
    assert response.status_code == 302
    with tenant_context(alpha):
        prefs = Preferences.objects.get(customer=wang)
        assert (prefs.seat, prefs.meal, prefs.airlines, prefs.room_type) == ("aisle", "AVML", ["CA", "MU"], "high floor")
        log = {c.field: c for c in ChangeLog.objects.filter(customer=wang, field__startswith="preferences.")}
        assert set(log) == {"preferences.seat", "preferences.meal", "preferences.airlines", "preferences.room_type"}
        assert all(c.via == ChangeLog.Via.PORTAL and c.actor_id is None for c in log.values())
        assert (log["preferences.seat"].old, log["preferences.seat"].new) == ("", "aisle")
        assert log["preferences.airlines"].new == "CA, MU"
    _post(client, action="preferences", **{"preferences-seat": "window", "preferences-meal": "AVML",
                                           "preferences-airlines": "CA, MU", "preferences-room_type": "high floor"})
    with tenant_context(alpha):
        [change] = ChangeLog.objects.filter(customer=wang, field="preferences.seat", old="aisle")
        assert change.new == "window"
        assert ChangeLog.objects.filter(customer=wang, field="preferences.meal").count() == 1  # unchanged: no entry
    # A bad airline code: the service's message on the form.
    response = _post(client, action="preferences", **{"preferences-airlines": "CAX"})
    assert response.status_code == 400 and "IATA" in response.content.decode()


def test_staff_edits_are_logged_the_same_way(alpha, wang):
    sales = staff(alpha, "sales")
    with tenant_context(alpha):
        customers.customer_preferences_set(actor=sales, customer=wang, seat="window")
        customers.loyalty_set(actor=sales, customer=wang, programme="CA", number="123")
        row = customers.family_date_add(actor=sales, customer=wang, label="Anniversary", date=date(2020, 5, 1))
        customers.family_date_remove(actor=sales, customer=wang, family_date=row)
        entries = list(ChangeLog.objects.filter(customer=wang, actor=sales).values_list("via", "field", "old", "new"))
        assert ("page", "preferences.seat", "", "window") in entries
        assert ("page", "loyalty.CA", "", "123") in entries
        assert ("page", "family_dates", "", "Anniversary: 2020-05-01") in entries
        assert ("page", "family_dates", "Anniversary: 2020-05-01", "") in entries


def test_loyalty_and_family_dates(alpha, wang):
    client = portal_client(alpha, wang)
    assert _post(client, action="loyalty", **{"loyalty-programme": "CA", "loyalty-number": "PHX123"}).status_code == 302
    assert _post(client, action="family", **{"family-label": "结婚纪念日", "family-date": "2015-10-01"}).status_code == 302
    page = client.get("/portal/me/").content.decode()
    assert "PHX123" in page and "结婚纪念日" in page
    with tenant_context(alpha):
        membership = LoyaltyMembership.objects.get(customer=wang)
        family_date = FamilyDate.objects.get(customer=wang)
        other_date = customers.family_date_add(actor=None, customer=wang.other, label="Birthday", date=date(1990, 1, 1))
        assert ChangeLog.objects.filter(customer=wang, via="portal", field="loyalty.CA", new="PHX123").exists()
        assert ChangeLog.objects.filter(customer=wang, via="portal", field="family_dates").exists()
    # Another customer's row cannot be removed by its id.
    _post(client, action="family_remove", pk=other_date.pk)
    with tenant_context(alpha):
        assert FamilyDate.objects.filter(pk=other_date.pk).exists()
    _post(client, action="loyalty_remove", pk=membership.pk)
    _post(client, action="family_remove", pk=family_date.pk)
    with tenant_context(alpha):
        assert not LoyaltyMembership.objects.filter(customer=wang).exists()
        assert not FamilyDate.objects.filter(customer=wang).exists()
        assert ChangeLog.objects.filter(customer=wang, via="portal", field="loyalty.CA", old="PHX123", new="").exists()
    response = _post(client, action="family", **{"family-label": "", "family-date": "2015-10-01"})
    assert response.status_code == 400


def test_marketing_consent_on_and_off(alpha, wang):
    client = portal_client(alpha, wang)
    assert _post(client, action="marketing", **{"marketing-opt_in": "on"}).status_code == 302
    with tenant_context(alpha):
        assert may_email(wang)
        assert Consent.objects.get(customer=wang).source == Consent.Source.PORTAL
    assert _post(client, action="marketing").status_code == 302  # unticked: off
    with tenant_context(alpha):
        assert not may_email(wang)
        entries = list(ChangeLog.objects.filter(customer=wang, field="marketing_email").values_list("via", "new"))
        assert ("portal", "opt-in") in entries and ("portal", "opt-out") in entries


def test_language_choice(alpha, wang):
    client = portal_client(alpha, wang)
    assert _post(client, action="language", **{"language-language": "en"}).status_code == 302
    with tenant_context(alpha):
        wang.refresh_from_db()
        assert wang.language == "en"
    assert _post(client, action="language", **{"language-language": "xx"}).status_code == 400


def test_survey_answered_through_the_portal(alpha, wang):
    with tenant_context(alpha):
        Survey.objects.create(trip=wang.trip, customer=wang, email=wang.emails.first().address)
    client = portal_client(alpha, wang)
    home = client.get("/portal/").content.decode()
    assert f"/portal/trips/{wang.trip.pk}/survey/" in home  # the home page's notice
    assert f"/portal/trips/{wang.trip.pk}/survey/" in client.get(f"/portal/trips/{wang.trip.pk}/").content.decode()
    assert client.get(f"/portal/trips/{wang.trip.pk}/survey/").status_code == 200
    assert client.post(f"/portal/trips/{wang.trip.pk}/survey/", {"csat": "9", "nps": "3"}).status_code == 400
    response = client.post(f"/portal/trips/{wang.trip.pk}/survey/", {"csat": "2", "nps": "4", "comment": "Hotel was noisy"})
    assert response.status_code == 302
    with tenant_context(alpha):
        survey = Survey.objects.get(trip=wang.trip)
        assert (survey.csat, survey.nps, survey.comment) == (2, 4, "Hotel was noisy") and survey.answered_at
        assert Task.objects.filter(key=f"low-score:{survey.pk}").exists()  # as the e-mailed survey's answer does
    again = client.post(f"/portal/trips/{wang.trip.pk}/survey/", {"csat": "5", "nps": "10"})
    assert again.status_code == 400
    assert f"/portal/trips/{wang.trip.pk}/survey/" not in client.get("/portal/").content.decode()
    # A trip without a survey for this customer: 404.
    with tenant_context(alpha):
        other = confirmed_trip(wang, title="No survey")
    assert client.get(f"/portal/trips/{other.pk}/survey/").status_code == 404


def test_complaint_logged_visible_to_staff_and_its_status_to_the_customer(alpha, bravo, wang, page_client):
    client = portal_client(alpha, wang)
    assert client.get(f"/portal/trips/{wang.trip.pk}/complaint/").status_code == 200
    assert client.post(f"/portal/trips/{wang.trip.pk}/complaint/", {"category": "hotel", "description": ""}).status_code == 400
    response = client.post(f"/portal/trips/{wang.trip.pk}/complaint/",
                           {"category": "hotel", "description": "The room was not the one booked."})
    assert response.status_code == 302
    with tenant_context(alpha):
        complaint = Complaint.objects.get(customer=wang)
        assert (complaint.trip_id, complaint.category, complaint.severity, complaint.created_by_id) == (
            wang.trip.pk, "hotel", "medium", None)
    staff_page = page_client("alpha", "service").get(f"/complaints/{complaint.pk}/")
    assert staff_page.status_code == 200 and "The room was not the one booked." in staff_page.content.decode()
    page = client.get(f"/portal/trips/{wang.trip.pk}/complaint/").content.decode()
    assert "Open" in page or "待处理" in page or complaint.get_status_display() in page
    assert 'data-test="portal-complaints"' in client.get("/portal/me/").content.decode()
    # Another customer's trip; no session.
    assert client.post(f"/portal/trips/{wang.other_trip.pk}/complaint/",
                       {"category": "hotel", "description": "x"}).status_code == 404
    with tenant_context(alpha):
        assert Complaint.objects.filter(customer=wang).count() == 1
    anonymous = Client(HTTP_HOST=host("alpha"))
    response = anonymous.post("/portal/me/", {"action": "marketing"})
    assert response.status_code == 302 and response["Location"].startswith("/portal/sign-in/")
    bravo_host = Client(HTTP_HOST=host("bravo"))
    bravo_host.cookies = client.cookies
    response = bravo_host.get("/portal/me/")
    assert response.status_code == 404 or response["Location"].startswith("/portal/sign-in/")
