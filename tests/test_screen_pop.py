"""The screen pop is composed of parts (crm.customers.screen_pop): the customers core names no table
of care, trips or tiers, each registers its part, and the whole is still one statement."""
from datetime import date
from pathlib import Path

import pytest
from django.db import connection
from django.utils import translation
from django_tenants.utils import tenant_context

from caravan import texts
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


def test_the_apis_plain_screen_pop_says_what_the_page_shows(alpha):
    """``screen_pop_data`` (the API's, read straight from the row) and ``screen_pop`` (the page's, model
    instances) tell the same facts: the customer, account manager, companies, contacts (a system-written
    summary in the reader's language, a colleague or none) and every part."""
    with tenant_context(alpha):
        wang, *_ = _caller(alpha)
        agent = user(alpha, "sales")
        wang.latin_surname, wang.latin_given, wang.tags, wang.owner = "wang", "FANG", ["vip", "常客"], agent
        wang.save()
        company = customer("星辰旅业", kind="company")
        crm_services.employment_set(actor=None, company=company, person=wang, title="经理")
        crm_services.contact_add(actor=agent, customer=wang, channel="call", summary="问了签证")
        crm_services.contact_add(actor=None, customer=wang, channel="email",
                                 summary=texts.Text("visit_follow_up", account="星辰旅业"))
        plains = {}
        for language in ("en", "zh-hans"):
            with translation.override(language):
                page = selectors.screen_pop(number="+86 138-0013-8077")
                plain = plains[language] = selectors.screen_pop_data(number="+86 138-0013-8077")
                shown = [{"at": c.at, "channel": c.channel, "summary": c.display_summary,
                          "staff": c.staff.full_name if c.staff else None} for c in page["last_contacts"]]
            _same_facts(page, plain, shown, wang, agent)
    connection.set_schema_to_public()
    assert plains["en"]["last_contacts"][0]["summary"] == "Follow up the visit to 星辰旅业"
    assert plains["zh-hans"]["last_contacts"][0]["summary"] != plains["en"]["last_contacts"][0]["summary"]


def _same_facts(page, plain, shown, wang, agent):
    assert plain["customer"] == {"id": wang.pk, "name": "王芳", "latin_name": "WANG Fang", "kind": "person",
                                 "tags": ["vip", "常客"], "owner": {"id": agent.pk, "full_name": agent.full_name}}
    assert plain["number"] == page["number"] == "+8613800138077"
    assert plain["companies"] == page["companies"] == ["星辰旅业"]
    assert plain["last_contacts"] == shown
    assert len(plain["last_contacts"]) == 5 and plain["last_contacts"][1]["staff"] == agent.full_name  # the last five
    for key in ("trips", "open_complaints"):
        assert plain[key] == page[key]
    assert (plain["tier"].pk, plain["tier"].name) == (page["tier"].pk, page["tier"].name)


def test_the_plain_screen_pop_of_an_unknown_number_and_of_the_other_agency(alpha, bravo):
    with tenant_context(bravo):
        _caller(bravo)
    with tenant_context(alpha):
        assert selectors.screen_pop_data(number="13800138077") == {"number": "+8613800138077", "customer": None}
        mine = with_phone("王芳", "13800138077")
        pop = selectors.screen_pop_data(number="13800138077")
    connection.set_schema_to_public()
    assert pop["customer"]["id"] == mine.pk and pop["customer"]["owner"] is None
    assert (pop["open_complaints"], pop["trips"], pop["tier"], pop["last_contacts"]) == ([], [], None, [])
