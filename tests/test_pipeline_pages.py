"""Pipeline pages: the board, the list, a new lead, the opportunity (move, take, assign, edit, tasks),
the report, tasks, the pipeline settings and the public enquiry form — by role and across agencies."""
import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import signing
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers.models import Customer, Phone
from crm.pipeline import services
from crm.pipeline.models import IntakeSettings, Opportunity, Stage, StageChange, Task

from .conftest import staff
from .test_trips_services import opportunity, person

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_enquiry_counts():
    """The enquiry form's rate limit lives in the cache, which tests do not roll back."""
    cache.delete_pattern("*pipeline:enquiry*")
    yield
    cache.delete_pattern("*pipeline:enquiry*")


def stamp(age: float = 10.0) -> str:
    """An enquiry form's time stamp, as if shown ``age`` seconds ago."""
    return signing.dumps(time.time() - age, salt="pipeline.enquiry-form")


def enquiry(**fields) -> dict:
    data = {"name": "李娜", "phone": "+86 139 1234 5678", "email": "", "destination": "日本 Kyoto",
            "depart_on": "2031-04-01", "return_on": "2031-04-08", "adults": "2", "children": "1",
            "budget": "30000", "message": "樱花季", "stamp": stamp(), "website": ""}
    data.update(fields)
    return data


# --- access by role ---------------------------------------------------------------------------------

ROLE_PAGES = [  # path, roles that may, roles that get 403
    ("/pipeline/", ("sales", "manager", "call_center"), ("finance",)),
    ("/pipeline/list/", ("sales", "manager"), ("finance",)),
    ("/pipeline/new/", ("sales", "call_center"), ("finance",)),
    ("/pipeline/report/", ("manager", "admin"), ("sales", "finance")),
    ("/tasks/", ("sales", "manager"), ("finance",)),
    ("/tasks/new/", ("sales",), ("finance",)),
    ("/settings/pipeline/", ("admin",), ("manager", "sales", "finance")),
]


@pytest.mark.parametrize("path,allowed,refused", ROLE_PAGES, ids=[p for p, _a, _r in ROLE_PAGES])
def test_pages_by_role(page_client, alpha, path, allowed, refused):
    for role in allowed:
        assert page_client("alpha", role).get(path).status_code == 200, role
    for role in refused:
        assert page_client("alpha", role).get(path).status_code == 403, role
    assert page_client("alpha").get(path).status_code == 302  # signed out: to the sign-in page
    assert page_client(None).get(path).status_code == 404  # not on the platform domain


def test_detail_by_role(page_client, alpha):
    with tenant_context(alpha):
        opp = opportunity(person(), owner=staff(alpha, "sales"))
    html = page_client("alpha", "sales").get(f"/pipeline/{opp.pk}/").content.decode()
    assert "日本赏樱 7 天" in html and 'data-test="prepare-quote"' in html
    assert f'action="/pipeline/{opp.pk}/assign/"' not in html  # sales do not assign
    assert f'action="/pipeline/{opp.pk}/assign/"' in page_client("alpha", "manager").get(f"/pipeline/{opp.pk}/").content.decode()
    assert page_client("alpha", "finance").get(f"/pipeline/{opp.pk}/").status_code == 403
    assert page_client("alpha", "finance").post(f"/pipeline/{opp.pk}/take/").status_code == 403
    assert page_client("alpha", "sales").post(f"/pipeline/{opp.pk}/assign/", {"owner": 1}).status_code == 403


def test_nav_links_by_capability(page_client, alpha):
    html = page_client("alpha", "sales").get("/").content.decode()
    assert 'href="/pipeline/"' in html and 'href="/tasks/"' in html and 'data-test="pipeline-dashboard"' in html
    finance = page_client("alpha", "finance").get("/").content.decode()
    assert 'href="/pipeline/"' not in finance and 'data-test="pipeline-dashboard"' not in finance


# --- the board and the list -------------------------------------------------------------------------

def test_board_shows_own_counts_and_values_manager_chooses(page_client, alpha):
    with tenant_context(alpha):
        sales, service = staff(alpha, "sales"), staff(alpha, "service")
        customer = person()
        mine = [opportunity(customer, owner=sales, value=Decimal("1000.50"), title=f"Mine {i}") for i in range(2)]
        theirs = opportunity(customer, owner=service, value=Decimal("9999"), title="Theirs")
        lead = opportunity(person("赵六", phones=["13800001111"]), title="Waiting lead")
        overdue = mine[0]
        Task.objects.create(title="call", owner=sales, opportunity=overdue, due_at=timezone.now() - timedelta(hours=1))
        new = Stage.objects.get(code="new")
    html = page_client("alpha", "sales").get("/pipeline/").content.decode()
    assert f'data-opportunity="{mine[0].pk}"' in html and f'data-opportunity="{mine[1].pk}"' in html
    assert f'data-opportunity="{theirs.pk}"' not in html
    column = html.split(f'data-stage="{new.pk}"')[1].split("</header>")[0]
    assert '<b data-test="count">2</b>' in column and "2,001.00" in column
    assert 'data-test="overdue"' in html and 'data-test="owner-chooser"' not in html
    assert f'data-lead="{lead.pk}"' in html and "Waiting lead" in html  # the strip of leads to take
    assert page_client("alpha", "sales").get(f"/pipeline/?owner={service.pk}").content.decode().count(
        "data-opportunity=") == 2  # a salesperson cannot look at a colleague's board

    manager = page_client("alpha", "manager")
    everyone = manager.get("/pipeline/?owner=all").content.decode()
    assert 'data-test="owner-chooser"' in everyone
    assert all(f'data-opportunity="{o.pk}"' in everyone for o in (*mine, theirs, lead))
    one = manager.get(f"/pipeline/?owner={service.pk}").content.decode()
    assert f'data-opportunity="{theirs.pk}"' in one and f'data-opportunity="{mine[0].pk}"' not in one


def test_board_query_count_does_not_grow_with_cards(page_client, alpha, django_assert_max_num_queries):
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        customer = person()
        for i in range(30):
            opportunity(customer, owner=sales, title=f"Deal {i}", code=["new", "qualified", "quoted"][i % 3])
    client = page_client("alpha", "sales")
    client.get("/pipeline/")  # warm the host and session caches
    with django_assert_max_num_queries(20):
        response = client.get("/pipeline/")
    assert response.content.decode().count("data-opportunity=") == 30


def test_list_filters_and_totals(page_client, alpha):
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        wang = person()
        key = opportunity(wang, owner=sales, value=Decimal("500"), is_key=True, title="Key deal")
        plain = opportunity(wang, owner=sales, value=Decimal("250"), title="Plain deal", code="quoted")
        lead = opportunity(wang, title="Nobody's", source="website_form")
        quoted = Stage.objects.get(code="quoted")
    client = page_client("alpha", "sales")

    def shown(query=""):
        html = client.get(f"/pipeline/list/?{query}").content.decode()
        return {o.pk for o in (key, plain, lead) if f'href="/pipeline/{o.pk}/"' in html}

    assert shown() == {key.pk, plain.pk}
    assert "750.00" in client.get("/pipeline/list/").content.decode()
    assert shown("key=yes") == {key.pk}
    assert shown(f"stage={quoted.pk}") == {plain.pk}
    assert shown("unassigned=1") == {lead.pk}
    assert shown("source=website_form&unassigned=1") == {lead.pk}
    assert shown("q=Plain") == {plain.pk}
    assert shown("owner=all") == {key.pk, plain.pk}  # not a manager: still only one's own
    manager = page_client("alpha", "manager").get("/pipeline/list/?owner=all").content.decode()
    assert all(f'href="/pipeline/{o.pk}/"' in manager for o in (key, plain, lead))


# --- moving, taking, assigning, editing ---------------------------------------------------------------

def test_move_legal_and_illegal_from_the_page(page_client, alpha):
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        opp = opportunity(person(), owner=sales)
        qualified, won, lost = (Stage.objects.get(code=c) for c in ("qualified", "won", "lost"))
    client = page_client("alpha", "sales")
    response = client.post(f"/pipeline/{opp.pk}/move/", {"stage": qualified.pk, "next": "/pipeline/"})
    assert response.status_code == 302 and response["Location"] == "/pipeline/"
    response = client.post(f"/pipeline/{opp.pk}/move/", {"stage": lost.pk})  # no reason
    assert response.status_code == 400 and 'data-field="lost_reason"' in response.content.decode()
    response = client.post(f"/pipeline/{opp.pk}/move/", {"stage": lost.pk, "lost_reason": "price"})
    assert response.status_code == 302
    response = client.post(f"/pipeline/{opp.pk}/move/", {"stage": won.pk})  # lost → won: not allowed
    html = response.content.decode()
    assert response.status_code == 400 and 'data-field="stage"' in html and "cannot move" in html
    response = client.post(f"/pipeline/{opp.pk}/move/", {"stage": won.pk, "next": "/pipeline/"}, follow=True)
    assert "cannot move" in response.content.decode()  # from the board: the error as a message
    with tenant_context(alpha):
        opp.refresh_from_db()
        assert opp.stage == lost and opp.lost_reason == "price"
        assert StageChange.objects.filter(opportunity=opp).count() == 2


def menu_options(html: str, marker: str) -> list[tuple[str, bool]]:
    """The (value, selected) options of the first move menu after ``marker`` in ``html``."""
    menu = html.split(marker, 1)[1].split('data-test="move-menu"', 1)[1].split("</select>", 1)[0]
    return [(value, " selected" in attrs) for value, attrs in re.findall(r'<option value="([^"]*)"([^>]*)>', menu)]


def test_move_menus_offer_only_allowed_moves_and_start_on_a_placeholder(page_client, alpha):
    """Issue 20: the menu defaulted to "New" (one click moved a deal backwards) and offered moves the
    service refuses. Now: a "Move to…" placeholder first and chosen, then only what ALLOWED permits."""
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        customer = person()
        at = {code: opportunity(customer, owner=sales, code=code, title=f"At {code}")
              for code in ("qualified", "deposit", "won", "lost")}
        Opportunity.objects.filter(pk__in=[at["won"].pk, at["lost"].pk]).update(closed_at=timezone.now())
        stage = {s.code: s.pk for s in Stage.objects.all()}
    client = page_client("alpha", "sales")
    html = client.get("/pipeline/").content.decode()
    pks = lambda *codes: [str(stage[c]) for c in codes]  # noqa: E731
    assert menu_options(html, f'data-opportunity="{at["qualified"].pk}"') == [
        ("", True), *((pk, False) for pk in pks("new", "quoted", "deposit", "won", "lost"))]
    assert menu_options(html, f'data-opportunity="{at["deposit"].pk}"') == [
        ("", True), *((pk, False) for pk in pks("won", "lost"))]
    assert menu_options(html, f'data-opportunity="{at["lost"].pk}"') == [
        ("", True), *((pk, False) for pk in pks("new", "qualified", "quoted"))]  # reopen only
    won_card = html.split(f'data-opportunity="{at["won"].pk}"', 1)[1].split("</article>", 1)[0]
    assert 'data-test="move-menu"' not in won_card  # won is final: no menu
    assert ">Move to…</option>" in html

    detail = client.get(f"/pipeline/{at['deposit'].pk}/").content.decode()
    assert menu_options(detail, 'id="move"') == [("", False), *((pk, False) for pk in pks("won", "lost"))]
    assert ">Move to…</option>" in detail  # the first option, so the one shown


def test_an_empty_move_choice_changes_nothing(page_client, alpha):
    with tenant_context(alpha):
        opp = opportunity(person(), owner=staff(alpha, "sales"), code="qualified")
        qualified = opp.stage
    client = page_client("alpha", "sales")
    response = client.post(f"/pipeline/{opp.pk}/move/", {"stage": "", "next": "/pipeline/"}, follow=True)
    assert response.redirect_chain == [("/pipeline/", 302)] and "Choose a stage." in response.content.decode()
    response = client.post(f"/pipeline/{opp.pk}/move/", {"lost_reason": "price"})  # no stage at all, from its page
    assert response.status_code == 400 and "Choose a stage." in response.content.decode()
    with tenant_context(alpha):
        opp.refresh_from_db()
        assert opp.stage == qualified and opp.lost_reason == ""
        assert not StageChange.objects.filter(opportunity=opp).exists()


def test_take_by_two_and_assign_by_manager(page_client, alpha):
    with tenant_context(alpha):
        lead = opportunity(person())
        service = staff(alpha, "service")
    first, second = page_client("alpha", "sales"), page_client("alpha", "service")
    assert first.post(f"/pipeline/{lead.pk}/take/").status_code == 302
    response = second.post(f"/pipeline/{lead.pk}/take/", follow=True)
    assert "Sales of alpha has already taken this lead." in response.content.decode()
    with tenant_context(alpha):
        lead.refresh_from_db()
        assert lead.owner == staff(alpha, "sales")
    response = page_client("alpha", "manager").post(f"/pipeline/{lead.pk}/assign/", {"owner": service.pk})
    assert response.status_code == 302
    with tenant_context(alpha):
        lead.refresh_from_db()
        assert lead.owner == service and Task.objects.filter(opportunity=lead, owner=service).exists()
    response = page_client("alpha", "manager").post(f"/pipeline/{lead.pk}/assign/", {"owner": staff(alpha, "finance").pk})
    assert response.status_code == 400 and 'data-field="owner"' in response.content.decode()


def test_edit_and_add_task(page_client, alpha):
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        opp = opportunity(person(), owner=sales)
    client = page_client("alpha", "service")  # a colleague adds a task: it goes to the owner
    response = client.post(f"/pipeline/{opp.pk}/edit/", {"title": "", "adults": 1, "children": 0, "value": "10"})
    assert response.status_code == 400 and 'data-field="title"' in response.content.decode()
    response = client.post(f"/pipeline/{opp.pk}/edit/", {"title": "Kyoto", "adults": 2, "children": 0, "value": "8800.00",
                                                         "is_key": "on", "depart_on": "2031-05-01",
                                                         "return_on": "2031-04-01"})
    assert response.status_code == 400 and 'data-field="return_on"' in response.content.decode()
    response = client.post(f"/pipeline/{opp.pk}/edit/", {"title": "Kyoto", "adults": 2, "children": 0, "value": "8800.00",
                                                         "is_key": "on"})
    assert response.status_code == 302
    response = client.post(f"/pipeline/{opp.pk}/tasks/", {"title": "", "kind": "call", "due_at": "2031-01-01T10:00"})
    assert response.status_code == 400 and 'data-field="title"' in response.content.decode()
    response = client.post(f"/pipeline/{opp.pk}/tasks/", {"title": "Send the quote", "kind": "follow_up",
                                                          "due_at": "2031-01-01T10:00"})
    assert response.status_code == 302
    with tenant_context(alpha):
        opp.refresh_from_db()
        assert opp.title == "Kyoto" and opp.value == Decimal("8800.00") and opp.is_key
        task = Task.objects.get(opportunity=opp)
        assert task.owner == sales and task.customer_id == opp.customer_id
    assert "Send the quote" in page_client("alpha", "sales").get(f"/pipeline/{opp.pk}/").content.decode()


# --- a new lead ---------------------------------------------------------------------------------------

def test_call_center_lead_matches_customer_by_phone_in_another_format(page_client, alpha):
    with tenant_context(alpha):
        wang = person(phones=["13912345678"])
        customers = Customer.objects.count()
    client = page_client("alpha", "call_center")
    form = client.get("/pipeline/new/?phone=%2B8613912345678&source=call_center").content.decode()  # as the screen pop links it
    assert 'value="+8613912345678"' in form and 'value="call_center" selected' in form
    response = client.post("/pipeline/new/", {"name": "王先生", "phone": "139 1234 5678", "destination": "Bali",
                                              "adults": 2, "children": 0, "source": "call_center", "take": "on"})
    assert response.status_code == 302
    with tenant_context(alpha):
        opp = Opportunity.objects.get(destination="Bali")
        assert opp.customer == wang and Customer.objects.count() == customers
        assert opp.source == "call_center" and opp.owner == staff(alpha, "call_center")
    assert response["Location"] == f"/pipeline/{opp.pk}/"


def test_new_lead_for_a_fixed_customer_and_errors(page_client, alpha):
    with tenant_context(alpha):
        wang = person()
    client = page_client("alpha", "sales")
    assert 'data-test="fixed-customer"' in client.get(f"/pipeline/new/?customer={wang.pk}").content.decode()
    response = client.post("/pipeline/new/", {"name": "", "phone": "", "adults": 1, "children": 0, "source": "staff"})
    assert response.status_code == 400 and 'data-field="name"' in response.content.decode()
    response = client.post("/pipeline/new/", {"name": "Nobody", "adults": 1, "children": 0, "source": "staff"})
    assert response.status_code == 400 and 'data-field="phone"' in response.content.decode()
    response = client.post("/pipeline/new/", {"customer": wang.pk, "destination": "Paris", "adults": 1, "children": 0,
                                              "source": "staff", "depart_on": "2031-05-01", "return_on": "2031-04-01"})
    assert response.status_code == 400 and 'data-field="return_on"' in response.content.decode()
    response = client.post("/pipeline/new/", {"customer": wang.pk, "destination": "Paris", "adults": 1, "children": 0,
                                              "source": "staff", "budget": "12000"})
    assert response.status_code == 302
    with tenant_context(alpha):
        opp = Opportunity.objects.get(destination="Paris")
        assert opp.customer == wang and opp.owner is None and opp.value == Decimal("12000")
    card = client.get(f"/customers/{wang.pk}/").content.decode()
    assert 'data-test="pipeline-card"' in card and f"/pipeline/{opp.pk}/" in card
    assert f"/pipeline/new/?customer={wang.pk}" in card


def test_screen_pop_offers_a_new_enquiry(page_client, alpha):
    with tenant_context(alpha):
        wang = person(phones=["13912345678"])
    client = page_client("alpha", "call_center")
    known = client.get("/screen-pop/13912345678/").content.decode()
    assert f"/pipeline/new/?customer={wang.pk}" in known
    unknown = client.get("/screen-pop/13700000000/").content.decode()
    assert "/pipeline/new/?phone=%2B8613700000000" in unknown


# --- report and tasks ---------------------------------------------------------------------------------

def test_report_conversion_and_by_salesperson(page_client, alpha):
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        customer = person()
        won_one = services.lead_intake(source="staff", customer=customer, owner=sales, budget=Decimal("5000"))
        lost_one = services.lead_intake(source="staff", customer=customer, owner=sales)
        services.opportunity_move(actor=None, opportunity=won_one, to=Stage.objects.get(code="won"))
        services.opportunity_move(actor=None, opportunity=lost_one, to=Stage.objects.get(code="lost"),
                                  lost_reason="competitor")
        services.lead_intake(source="staff", customer=customer, owner=sales)
    manager = page_client("alpha", "manager")
    html = manager.get("/pipeline/report/").content.decode()
    assert '<dd data-test="win-rate">50.0%</dd>' in html and "Booked elsewhere" in html and "5,000.00" in html
    assert 'data-test="by-salesperson"' in html and "Sales of alpha" in html
    assert '<p class="bignum" data-test="total">3 ' in manager.get(f"/pipeline/report/?owner={sales.pk}").content.decode()
    other = manager.get(f"/pipeline/report/?owner={staff(alpha, 'service').pk}").content.decode()
    assert '<p class="bignum" data-test="total">0 ' in other
    response = manager.get("/pipeline/report/?start=2031-01-02&end=2031-01-01")
    assert response.status_code == 400 and 'data-field="end"' in response.content.decode()


def test_tasks_grouped_done_toggle_and_who_may_change(page_client, alpha):
    now = timezone.now()
    with tenant_context(alpha):
        sales, service = staff(alpha, "sales"), staff(alpha, "service")
        late = Task.objects.create(title="Late call", owner=sales, due_at=now - timedelta(days=1))
        soon = Task.objects.create(title="Next week", owner=sales, due_at=now + timedelta(days=7))
        theirs = Task.objects.create(title="Theirs", owner=service, due_at=now - timedelta(days=2))
    client = page_client("alpha", "sales")
    html = client.get("/tasks/").content.decode()
    overdue = html.split('data-test="overdue"')[1].split('data-test="today"')[0]
    assert "Late call" in overdue and "Next week" not in overdue and "Theirs" not in html
    assert "Next week" in html.split('data-test="upcoming"')[1]
    assert client.get("/tasks/?everyone=1").content.decode().count("Theirs") == 0  # not a manager
    response = client.post(f"/tasks/{late.pk}/done/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "pipeline-done" in response.content.decode()
    assert client.post(f"/tasks/{theirs.pk}/done/").status_code == 404
    assert client.get(f"/tasks/{theirs.pk}/").status_code == 404
    response = client.post(f"/tasks/{soon.pk}/", {"title": "Next week, call", "due_at": "2031-01-01T10:00",
                                                  "remind_at": "2031-01-02T10:00"})
    assert response.status_code == 400 and 'data-field="remind_at"' in response.content.decode()
    assert client.post(f"/tasks/{soon.pk}/", {"title": "Next week, call", "due_at": "2031-01-01T10:00"}).status_code == 302
    manager = page_client("alpha", "manager")
    everyone = manager.get("/tasks/?everyone=1").content.decode()
    assert "Theirs" in everyone and 'data-test="overdue-by-owner"' in everyone and "Service of alpha" in everyone
    assert manager.post(f"/tasks/{theirs.pk}/done/").status_code == 302
    with tenant_context(alpha):
        late.refresh_from_db(), soon.refresh_from_db(), theirs.refresh_from_db()
        assert late.done_by == sales and theirs.done_at is not None and soon.title == "Next week, call"
    dashboard = manager.get("/").content.decode()
    assert 'data-test="pipeline-dashboard"' in dashboard and "/tasks/?everyone=1" not in dashboard  # nothing overdue now


def test_new_task_for_a_customer(page_client, alpha):
    with tenant_context(alpha):
        wang = person()
    client = page_client("alpha", "sales")
    assert client.get(f"/tasks/new/?customer={wang.pk}").status_code == 200
    response = client.post("/tasks/new/", {"customer": wang.pk, "title": "", "kind": "call"})
    html = response.content.decode()
    assert response.status_code == 400 and 'data-field="title"' in html and 'data-field="due_at"' in html
    response = client.post("/tasks/new/", {"customer": wang.pk, "title": "Birthday call", "kind": "call",
                                           "due_at": "2031-01-01T09:00"})
    assert response.status_code == 302
    with tenant_context(alpha):
        task = Task.objects.get(title="Birthday call")
        assert task.customer == wang and task.owner == staff(alpha, "sales")


# --- settings -----------------------------------------------------------------------------------------

def test_settings_stages_rules_intake_and_secret_shown_once(page_client, alpha):
    client = page_client("alpha", "admin")
    html = client.get("/settings/pipeline/").content.decode()
    assert '&lt;iframe src="http://alpha.localhost' in html and "/enquiry/" in html and "X-Caravan-Signature" in html
    assert 'href="/settings/pipeline/"' in client.get("/settings/").content.decode()
    with tenant_context(alpha):
        quoted = Stage.objects.get(code="quoted")
        won = Stage.objects.get(code="won")
    response = client.post("/settings/pipeline/", {"action": f"stage:{quoted.pk}", f"stage-{quoted.pk}-name": "报价",
                                                   f"stage-{quoted.pk}-probability": "40",
                                                   f"stage-{quoted.pk}-position": "3",
                                                   f"stage-{quoted.pk}-is_active": "on"})
    assert response.status_code == 302
    response = client.post("/settings/pipeline/", {"action": f"stage:{won.pk}", f"stage-{won.pk}-probability": "100",
                                                   f"stage-{won.pk}-position": "9"})
    assert response.status_code == 400 and 'data-field="is_active"' in response.content.decode()
    response = client.post("/settings/pipeline/", {"action": "stage:new", "stage-new-name": "",
                                                   "stage-new-probability": "30", "stage-new-position": "2",
                                                   "stage-new-is_active": "on"})
    assert response.status_code == 400 and 'data-field="name"' in response.content.decode()
    response = client.post("/settings/pipeline/", {"action": "team:new", "team-new-name": "Japan desk",
                                                   "team-new-members": [staff(alpha, "sales").pk]})
    assert response.status_code == 302
    response = client.post("/settings/pipeline/", {"action": "rule:new", "rule-new-kind": "round_robin",
                                                   "rule-new-position": "1", "rule-new-is_active": "on"})
    assert response.status_code == 400 and 'data-field="team"' in response.content.decode()
    response = client.post("/settings/pipeline/", {"action": "intake", "form_thanks": "谢谢！"})
    assert response.status_code == 302
    with tenant_context(alpha):
        quoted.refresh_from_db()
        assert quoted.name == "报价" and quoted.probability == 40
        intake_row = IntakeSettings.objects.get()
        assert not intake_row.form_enabled and intake_row.form_thanks == "谢谢！"

    response = client.post("/settings/pipeline/", {"action": "rotate"})
    html = response.content.decode()
    assert response.status_code == 200 and 'data-test="new-secret"' in html
    with tenant_context(alpha):
        secret = services.webhook_secret()
    assert secret and secret in html
    again = client.get("/settings/pipeline/").content.decode()
    assert secret not in again and "A secret is set" in again
    assert page_client("alpha", "manager").post("/settings/pipeline/", {"action": "rotate"}).status_code == 403


# --- the public enquiry form ----------------------------------------------------------------------------

def test_enquiry_form_creates_a_lead_and_customer(page_client, alpha):
    client = page_client("alpha")  # nobody signed in
    response = client.get("/enquiry/")
    html = response.content.decode()
    assert response.status_code == 200 and 'name="stamp"' in html and 'name="website"' in html
    assert 'class="nav"' not in html
    assert "X-Frame-Options" not in response.headers or response["X-Frame-Options"] != "DENY"
    client.cookies["django_language"] = "zh-hans"  # the visitor chose Chinese on the form
    response = client.post("/enquiry/", enquiry())
    assert response.status_code == 302 and response["Location"] == "/enquiry/thanks/"
    thanks = client.get("/enquiry/thanks/")
    assert thanks.status_code == 200 and 'data-test="thanks"' in thanks.content.decode()
    with tenant_context(alpha):
        opp = Opportunity.objects.get(destination="日本 Kyoto")
        assert opp.source == "website_form" and opp.customer.name == "李娜" and opp.adults == 2
        assert opp.customer.language == "zh-hans" and opp.budget == Decimal("30000")
        assert Phone.objects.filter(customer=opp.customer, number="+8613912345678").exists()


@pytest.mark.parametrize("spam", [{"website": "http://spam.example"}, {"stamp": "made-up"},
                                  {"stamp": signing.dumps(time.time(), salt="pipeline.enquiry-form")}],
                         ids=["honeypot", "bad stamp", "too fast"])
def test_enquiry_spam_is_thanked_and_dropped(page_client, alpha, spam):
    with tenant_context(alpha):
        before = (Opportunity.objects.count(), Customer.objects.count())
    data = enquiry(**spam)
    if "stamp" in spam and spam["stamp"] != "made-up":
        data["stamp"] = signing.dumps(time.time(), salt="pipeline.enquiry-form")  # shown just now
    response = page_client("alpha").post("/enquiry/", data)
    assert response.status_code == 200 and 'data-test="thanks"' in response.content.decode()
    with tenant_context(alpha):
        assert (Opportunity.objects.count(), Customer.objects.count()) == before


def test_enquiry_invalid_rate_limited_disabled_and_platform(page_client, alpha):
    client = page_client("alpha")
    response = client.post("/enquiry/", enquiry(name="", phone="", email="not-an-email", return_on="2031-03-01"))
    html = response.content.decode()
    assert response.status_code == 400
    assert all(f'data-field="{f}"' in html for f in ("name", "email", "return_on"))
    for _n in range(4):  # five in the window in all are fine
        assert client.post("/enquiry/", enquiry(phone="", email="")).status_code == 400
    response = client.post("/enquiry/", enquiry())
    assert response.status_code == 429 and 'data-test="limited"' in response.content.decode()
    assert page_client("alpha").post("/enquiry/", enquiry(), REMOTE_ADDR="10.0.0.9").status_code == 302
    with tenant_context(alpha):
        IntakeSettings.objects.update_or_create(pk=1, defaults={"form_enabled": False})
        before = Opportunity.objects.count()
    response = page_client("alpha").post("/enquiry/", enquiry(), REMOTE_ADDR="10.0.0.10")
    assert response.status_code == 200 and 'data-test="closed"' in response.content.decode()
    with tenant_context(alpha):
        assert Opportunity.objects.count() == before
    assert page_client(None).get("/enquiry/").status_code == 404
    assert page_client(None).post("/enquiry/", enquiry()).status_code == 404


def test_enquiry_thanks_uses_the_agencys_text(page_client, alpha):
    with tenant_context(alpha):
        IntakeSettings.objects.update_or_create(pk=1, defaults={"form_thanks": "我们会在一小时内联系您"})
    assert "我们会在一小时内联系您" in page_client("alpha").get("/enquiry/thanks/").content.decode()


# --- the fence ------------------------------------------------------------------------------------------

def bravo_ids(bravo) -> dict:
    with tenant_context(bravo), connection.cursor() as cursor:
        for table in ("pipeline_opportunity", "pipeline_task", "crm_customer"):
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), 8000000)", [table])
    with tenant_context(bravo):
        owner = staff(bravo, "sales")
        customer = person("布拉沃客户")
        opp = opportunity(customer)
        task = Task.objects.create(title="Bravo's call", owner=owner, opportunity=opp, due_at=timezone.now())
        return {"opp": opp.pk, "task": task.pk, "customer": customer.pk, "stage": opp.stage_id, "user": owner.pk}


FENCE = [  # method, path with bravo's ids, body
    ("get", "/pipeline/{opp}/", None), ("post", "/pipeline/{opp}/take/", {}),
    ("post", "/pipeline/{opp}/assign/", {"owner": "{user}"}), ("post", "/pipeline/{opp}/edit/", {"title": "x"}),
    ("post", "/pipeline/{opp}/move/", {"stage": "{stage}"}), ("post", "/pipeline/{opp}/tasks/", {"title": "x"}),
    ("get", "/tasks/{task}/", None), ("post", "/tasks/{task}/", {"title": "x"}), ("post", "/tasks/{task}/done/", {}),
    ("get", "/pipeline/new/?customer={customer}", None), ("get", "/tasks/new/?customer={customer}", None),
]


@pytest.mark.parametrize("method,path,body", FENCE, ids=[f"{m} {p}" for m, p, _ in FENCE])
def test_other_agencys_ids_are_not_found(page_client, alpha, bravo, method, path, body):
    ids = bravo_ids(bravo)
    url = path.format(**ids)
    data = {k: v.format(**ids) for k, v in (body or {}).items()}
    response = getattr(page_client("alpha", "admin"), method)(url, data)
    assert response.status_code == 404
    response = getattr(page_client("alpha", "admin", on="bravo.localhost"), method)(url, data)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    with tenant_context(bravo):
        opp = Opportunity.objects.get(pk=ids["opp"])
        assert opp.owner is None and opp.title == "日本赏樱 7 天" and opp.stage_id == ids["stage"]
        assert Task.objects.get(pk=ids["task"]).done_at is None and Task.objects.count() == 1


def test_pages_show_nothing_of_another_agency(page_client, alpha, bravo):
    ids = bravo_ids(bravo)
    client = page_client("alpha", "manager")
    for path in ("/pipeline/?owner=all", "/pipeline/list/?owner=all", "/tasks/?everyone=1", "/pipeline/report/"):
        html = client.get(path).content.decode()
        assert f"/pipeline/{ids['opp']}/" not in html and "Bravo's call" not in html, path
    # bravo's enquiry form files bravo's lead, never alpha's
    assert page_client("bravo").post("/enquiry/", enquiry(destination="Bravo only")).status_code == 302
    with tenant_context(alpha):
        assert not Opportunity.objects.filter(destination="Bravo only").exists()
    with tenant_context(bravo):
        assert Opportunity.objects.filter(destination="Bravo only").exists()
