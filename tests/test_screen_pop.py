"""The screen pop is composed of parts (crm.customers.screen_pop): the customers core names no table
of care, trips or tiers, each registers its part, and the whole is still one statement."""
from datetime import date
from pathlib import Path

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from crm.care import services as care
from crm.customers import screen_pop as parts
from crm.customers import selectors
from crm.customers import services as crm_services
from crm.customers.models import ChangeLog
from crm.tiers.models import CustomerTier, ServiceTier
from crm.trips.models import Traveler, Trip

from .care_factories import customer, user

pytestmark = pytest.mark.django_db
CUSTOMERS = Path(__file__).resolve().parent.parent / "crm" / "customers"


def test_care_trips_and_tiers_register_their_parts():
    assert [part.key for part in parts.parts()] == ["trips", "open_complaints", "tier"]
    for part in parts.parts():
        assert "c.id" in part.sql, part.key


def test_the_customers_core_names_no_table_of_the_apps_that_depend_on_it():
    for path in CUSTOMERS.glob("*.py"):
        text = path.read_text()
        for prefix in ("care_", "trips_", "tiers_", "pipeline_"):
            assert prefix not in text, f"{path.name} names a {prefix}* table"


def with_phone(name: str, number: str):
    return crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=name, phones=[number])


def _caller(agency):
    """A customer of ``agency`` with a phone, an open and a resolved complaint, trips as booker and as
    traveler, and a service tier."""
    wang = with_phone("王芳", "13800138077")
    service = user(agency, "service")
    resolved = care.complaint_log(actor=service, customer=wang, category="service", severity="low", description="旧")
    care.complaint_set_status(actor=service, complaint=resolved, status="resolved", resolution="已道歉")
    complaint = care.complaint_log(actor=service, customer=wang, category="flight", severity="high", description="延误")
    booked = Trip.objects.create(customer=wang, title="京都", destination="Japan", currency="CNY",
                                 depart_on=date(2031, 1, 1), return_on=date(2031, 1, 5))
    other = customer("李雷")
    travelled = Trip.objects.create(customer=other, title="巴黎", destination="France", currency="CNY",
                                    depart_on=date(2031, 3, 1), return_on=date(2031, 3, 5))
    Traveler.objects.create(trip=travelled, customer=wang)
    gold = ServiceTier.objects.create(name="金卡 Gold", rank=1, color="#c9a227")
    CustomerTier.objects.create(customer=wang, tier=gold, computed_tier=gold)
    return wang, complaint, booked, travelled, gold


def test_the_screen_pop_is_one_statement_with_every_part(alpha, django_assert_num_queries):
    with tenant_context(alpha):
        wang, complaint, booked, travelled, gold = _caller(alpha)
        with django_assert_num_queries(1):
            pop = selectors.screen_pop(number="138 0013 8077")
    connection.set_schema_to_public()
    assert pop["customer"] == wang and pop["number"] == "+8613800138077"
    assert [(c["id"], c["severity"], c["severity_display"], c["summary"], c["url"]) for c in pop["open_complaints"]] == [
        (complaint.pk, "high", str(complaint.Severity.HIGH.label), "延误", f"/complaints/{complaint.pk}/")]
    assert pop["open_complaints"][0]["deadline_at"] == complaint.deadline_at
    assert [(t["id"], t["reference"], t["depart_on"], t["status"], t["url"]) for t in pop["trips"]] == [
        (travelled.pk, travelled.reference, date(2031, 3, 1), travelled.status, f"/trips/{travelled.pk}/"),
        (booked.pk, booked.reference, date(2031, 1, 1), booked.status, f"/trips/{booked.pk}/")]
    assert isinstance(pop["tier"], ServiceTier)
    assert (pop["tier"].pk, pop["tier"].name, pop["tier"].color) == (gold.pk, "金卡 Gold", "#c9a227")


def test_a_caller_without_complaints_trips_or_tier(alpha):
    with tenant_context(alpha):
        plain = with_phone("赵雷", "13800138078")
        pop = selectors.screen_pop(number="13800138078")
    connection.set_schema_to_public()
    assert pop["customer"] == plain
    assert (pop["open_complaints"], pop["trips"], pop["tier"]) == ([], [], None)


def test_the_other_agencys_parts_never_show(alpha, bravo):
    """The same number in both agencies: alpha's screen pop shows alpha's caller and nothing of bravo's."""
    with tenant_context(bravo):
        _caller(bravo)
    with tenant_context(alpha):
        mine = with_phone("王芳", "13800138077")
        pop = selectors.screen_pop(number="13800138077")
    connection.set_schema_to_public()
    assert pop["customer"] == mine
    assert (pop["open_complaints"], pop["trips"], pop["tier"]) == ([], [], None)
