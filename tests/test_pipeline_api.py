"""Pipeline (R-SALE-1, 2, 6; R-INT-4): lead intake from every source, the signed webhook, assignment
without collisions, every stage move legal and illegal, tasks and reminders, the report, the API
by role, and the fence between agencies."""
import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from crm.customers import services as crm_services
from crm.customers.models import ChangeLog, Contact, Customer
from crm.pipeline import intake, selectors, services
from crm.pipeline.models import AssignmentRule, InboundEvent, Opportunity, Stage, StageChange, Task, Team
from crm.trips.models import Trip

from .conftest import staff

pytestmark = pytest.mark.django_db
HOOK = "/api/v1/webhooks/website/"


def person(agency, name="王芳", phones=("13800138000",), emails=(), **kw) -> Customer:
    with tenant_context(agency):
        return crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=name, phones=list(phones),
                                            emails=list(emails), **kw)


def stage(code: str) -> Stage:
    return Stage.objects.get(code=code)


def lead(agency, **kw) -> Opportunity:
    kw.setdefault("source", "staff")
    kw.setdefault("name", "李雷")
    kw.setdefault("phone", "13911112222")
    with tenant_context(agency):
        return services.lead_intake(**kw)


def counts(agency) -> tuple:
    with tenant_context(agency):
        return (Customer.objects.count(), Opportunity.objects.count(), InboundEvent.objects.count(),
                Contact.objects.count())


# --- intake ---------------------------------------------------------------------------------------

def test_a_lead_links_to_the_customer_on_file_by_phone_or_email(alpha):
    on_file = person(alpha, phones=["13800138000"], emails=["wang.fang@example.cn"])
    by_phone = lead(alpha, name="Wang", phone="+86 138-0013-8000", destination="日本")
    by_email = lead(alpha, name="王芳", phone="", email="Wang.Fang@Example.CN")
    with tenant_context(alpha):
        assert by_phone.customer_id == on_file.pk and by_email.customer_id == on_file.pk
        assert Customer.objects.count() == 1
        assert by_phone.stage.code == "new" and by_phone.currency == alpha.currency and by_phone.title == "日本"
        assert StageChange.objects.filter(opportunity=by_phone, from_stage=None, to_stage__code="new").exists()
        assert Contact.objects.filter(customer=on_file, direction="in", summary__contains="日本").exists()


def test_a_new_contact_becomes_a_new_customer_and_a_merged_one_leads_to_the_survivor(alpha):
    new = lead(alpha, source="website_form", name="新客户", phone="13122223333", email="new@example.cn")
    with tenant_context(alpha):
        assert new.customer.name == "新客户" and new.customer.source == Customer.Source.WEBSITE
        keep = crm_services.customer_create(actor=None, via="api", name="Keep", phones=["13700001111"])
        drop = new.customer
        crm_services.customer_merge(actor=None, keep=keep, drop=drop)
    again = lead(alpha, name="x", phone="", email="new@example.cn")
    assert again.customer_id == keep.pk


def test_intake_rejects_bad_input_and_writes_nothing(alpha):
    before = counts(alpha)
    for bad in ({"phone": "", "email": ""}, {"name": ""}, {"adults": 0}, {"source": "fax"},
                {"depart_on": timezone.localdate(), "return_on": timezone.localdate() - timedelta(days=1)},
                {"phone": "12"}):
        with pytest.raises(ValidationError):
            lead(alpha, **bad)
    assert counts(alpha) == before


# --- the webhook ----------------------------------------------------------------------------------

def sign(secret: str, body: bytes, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    return f"t={at},v1=" + hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()


def secret_of(agency) -> str:
    with tenant_context(agency):
        return services.webhook_secret(create=True)


def post(client, event, secret, *, at=None, raw: bytes | None = None, signature: str | None = None):
    body = raw if raw is not None else json.dumps(event, ensure_ascii=False).encode()
    return client.post(HOOK, data=body, content_type="application/json",
                       HTTP_X_CARAVAN_SIGNATURE=signature if signature is not None else sign(secret, body, at))


def enquiry(event_id="evt_1", **data):
    return {"id": event_id, "type": "enquiry.created", "created": int(time.time()),
            "data": {"name": "赵敏", "phone": "13655556666", "destination": "法国 巴黎", "adults": 2,
                     "budget": "30000.00", "message": "蜜月", **data}}


def test_webhook_enquiry_makes_one_lead_and_a_replay_writes_nothing(alpha, api_client):
    secret, client = secret_of(alpha), api_client("alpha")
    first = post(client, enquiry(), secret)
    assert first.status_code == 201, first.content
    assert first.json()["applied"] is True
    before = counts(alpha)
    again = post(client, enquiry(), secret)  # the sender retries the same event, freshly signed
    assert again.status_code == 200 and again.json()["applied"] is False
    assert again.json()["opportunity"] == first.json()["opportunity"]
    assert counts(alpha) == before
    with tenant_context(alpha):
        opportunity = Opportunity.objects.get(pk=first.json()["opportunity"])
        assert opportunity.source == "website" and opportunity.budget == Decimal("30000.00")
        assert opportunity.customer.name == "赵敏" and opportunity.customer.source == "website"


def test_webhook_member_sign_up_upserts_the_customer(alpha, api_client):
    on_file = person(alpha, phones=["13655556666"])
    secret, client = secret_of(alpha), api_client("alpha")
    event = {"id": "m1", "type": "member.signed_up", "data": {"name": "王芳", "phone": "136 5555 6666",
                                                              "email": "fang@example.cn", "member_id": "W-1001"}}
    response = post(client, event, secret)
    assert response.status_code == 201 and response.json()["customer"] == on_file.pk
    event = {"id": "m2", "type": "member.signed_up", "data": {"name": "New Member", "email": "member@example.com",
                                                              "language": "en"}}
    created = post(client, event, secret).json()["customer"]
    with tenant_context(alpha):
        assert Customer.objects.get(pk=on_file.pk).external_ref == "W-1001"
        assert Customer.objects.get(pk=created).language == "en"
        assert Opportunity.objects.count() == 0


@pytest.mark.parametrize("case", ["no header", "wrong secret", "tampered body", "stale", "future", "garbage header"])
def test_webhook_refuses_bad_signatures(alpha, bravo, api_client, case):
    secret, client = secret_of(alpha), api_client("alpha")
    body = json.dumps(enquiry()).encode()
    signature = {
        "no header": "",
        "wrong secret": sign(secret_of(bravo), body),  # bravo's secret means nothing at alpha
        "tampered body": sign(secret, body.replace(b"13655556666", b"13655556667")),
        "stale": sign(secret, body, int(time.time()) - intake.TOLERANCE - 5),
        "future": sign(secret, body, int(time.time()) + intake.TOLERANCE + 60),
        "garbage header": "t=abc,v1=zzz",
    }[case]
    before = counts(alpha)
    response = post(client, None, secret, raw=body, signature=signature)
    assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_failed"
    assert counts(alpha) == before


@pytest.mark.parametrize("raw, field", [
    (b"{not json", "body"),
    (json.dumps({"id": "x", "type": "order.paid", "data": {"name": "a", "phone": "13800000000"}}).encode(), "type"),
    (json.dumps({"id": "x", "type": "enquiry.created", "data": {"name": "a"}}).encode(), "data"),
    (json.dumps({"id": "x", "type": "enquiry.created", "data": {"name": "a", "phone": "12", "adults": 0}}).encode(), "data"),
    (json.dumps({"type": "enquiry.created", "data": {"name": "a", "phone": "13800000000"}}).encode(), "id"),
    ("名字".encode("gb18030"), "body"),
])
def test_webhook_refuses_malformed_bodies_with_a_clear_400(alpha, api_client, raw, field):
    secret, client = secret_of(alpha), api_client("alpha")
    before = counts(alpha)
    response = post(client, None, secret, raw=raw)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert counts(alpha) == before


def test_webhook_bad_phone_in_a_valid_event_is_a_400_and_not_recorded(alpha, api_client):
    secret, client = secret_of(alpha), api_client("alpha")
    before = counts(alpha)
    response = post(client, enquiry(event_id="bad-phone", phone="12"), secret)
    assert response.status_code == 400 and "phone" in response.json()["error"]["fields"]
    assert counts(alpha) == before  # the event id was not kept either: a corrected retry goes through
    assert post(client, enquiry(event_id="bad-phone"), secret).status_code == 201


def test_webhook_is_per_agency_and_not_on_the_platform_domain(alpha, bravo, api_client, charlie):
    alpha_secret = secret_of(alpha)
    body = json.dumps(enquiry()).encode()
    on_bravo = api_client("bravo").post(HOOK, data=body, content_type="application/json",
                                        HTTP_X_CARAVAN_SIGNATURE=sign(alpha_secret, body))
    assert on_bravo.status_code == 401
    assert api_client("alpha", on="localhost").post(HOOK, data=body, content_type="application/json",
                                                    HTTP_X_CARAVAN_SIGNATURE=sign(alpha_secret, body)).status_code == 404
    # A suspended agency takes no leads.
    charlie_secret = secret_of(charlie)
    response = api_client("charlie").post(HOOK, data=body, content_type="application/json",
                                          HTTP_X_CARAVAN_SIGNATURE=sign(charlie_secret, body))
    assert response.status_code == 403
    assert counts(bravo)[1] == 0


def test_rotating_the_secret_stops_the_old_one(alpha, api_client):
    old = secret_of(alpha)
    with tenant_context(alpha):
        new = services.webhook_secret_rotate(actor=None)
        stored = bytes(services.intake_settings().webhook_secret)
    assert new != old and new.encode() not in stored  # kept encrypted
    client = api_client("alpha")
    assert post(client, enquiry(event_id="a"), old).status_code == 401
    assert post(client, enquiry(event_id="b"), new).status_code == 201


# --- assignment -----------------------------------------------------------------------------------

def test_rules_customer_owner_then_destination_then_round_robin(alpha):
    with tenant_context(alpha):
        sales, manager, admin = staff(alpha, "sales"), staff(alpha, "manager"), staff(alpha, "admin")
        team = Team.objects.create(name="欧洲组")
        team.members.set([sales, manager])
        asia = Team.objects.create(name="亚洲组")
        asia.members.set([admin])
        AssignmentRule.objects.create(kind="customer_owner", position=1)
        AssignmentRule.objects.create(kind="destination", destination="日本", team=asia, position=2)
        AssignmentRule.objects.create(kind="round_robin", team=team, position=3)
    owned = person(alpha, name="有主", phones=["13000000001"], owner=staff(alpha, "service"))
    assert lead(alpha, customer=owned).owner == staff(alpha, "service")
    assert lead(alpha, phone="13000000002", destination="日本 东京").owner == admin
    spread = [lead(alpha, phone=f"1300000001{n}", destination="法国").owner for n in range(4)]
    first, second = sorted([sales, manager], key=lambda u: u.pk)
    assert spread == [first, second, first, second]


def test_no_rules_leaves_the_lead_waiting_for_someone_to_take_it(alpha):
    waiting = lead(alpha)
    assert waiting.owner is None
    with tenant_context(alpha):
        assert list(selectors.leads_waiting()) == [waiting]


def test_two_people_take_the_same_lead_at_once_and_one_gets_it(alpha, committed):  # noqa: F811
    """Real concurrency: two threads, two database connections, one UPDATE … WHERE owner IS NULL."""
    with committed(), tenant_context(alpha):
        waiting = services.lead_intake(source="staff", name="抢单测试", phone="13712345678")
    people = [staff(alpha, "sales"), staff(alpha, "manager")]
    barrier, results = threading.Barrier(2), {}

    def take(user):
        try:
            with tenant_context(alpha):
                barrier.wait(timeout=10)
                try:
                    services.opportunity_take(actor=user, opportunity=waiting)
                    results[user.pk] = "got it"
                except services.AlreadyTaken as exc:
                    results[user.pk] = str(exc.owner.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(u,)) for u in people]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        winners = [pk for pk, result in results.items() if result == "got it"]
        assert len(winners) == 1 and len(results) == 2
        loser = next(pk for pk in results if pk != winners[0])
        assert results[loser] == str(winners[0])  # told who has it
        with committed(), tenant_context(alpha):
            assert Opportunity.objects.get(pk=waiting.pk).owner_id == winners[0]
    finally:
        with committed(), tenant_context(alpha):
            customer = Opportunity.objects.get(pk=waiting.pk).customer
            Opportunity.objects.filter(pk=waiting.pk).delete()
            Customer.objects.filter(pk=customer.pk).delete()


def test_take_and_assign_through_the_api(alpha, api_client):
    waiting = lead(alpha)
    sales, manager = api_client("alpha", "sales"), api_client("alpha", "manager")
    assert sales.post(f"/api/v1/opportunities/{waiting.pk}/take/").json()["owner"]["id"] == staff(alpha, "sales").pk
    conflict = api_client("alpha", "call_center").post(f"/api/v1/opportunities/{waiting.pk}/take/")
    assert conflict.status_code == 409 and "already taken" in conflict.json()["error"]["message"]
    assert sales.post(f"/api/v1/opportunities/{waiting.pk}/assign/", {"owner": staff(alpha, "service").pk}).status_code == 403
    response = manager.post(f"/api/v1/opportunities/{waiting.pk}/assign/", {"owner": staff(alpha, "service").pk})
    assert response.status_code == 200 and response.json()["owner"]["id"] == staff(alpha, "service").pk
    finance = manager.post(f"/api/v1/opportunities/{waiting.pk}/assign/", {"owner": staff(alpha, "finance").pk})
    assert finance.status_code == 400 and "owner" in finance.json()["error"]["fields"]
    with tenant_context(alpha):  # the new owner hears of it
        assert Task.objects.filter(opportunity=waiting, owner=staff(alpha, "service")).exists()


# --- stages ---------------------------------------------------------------------------------------

KINDS = ["open", "deposit", "won", "lost"]


@pytest.mark.parametrize("start", ["new", "qualified", "deposit", "won", "lost"])
@pytest.mark.parametrize("target", ["new", "quoted", "deposit", "won", "lost"])
def test_every_stage_move_is_legal_or_a_clear_error(alpha, start, target):
    with tenant_context(alpha):
        opportunity = lead(alpha, owner=staff(alpha, "sales"))
        if start != "new":  # put it there directly: the starting point, not the move under test
            Opportunity.objects.filter(pk=opportunity.pk).update(stage=stage(start))
            opportunity.refresh_from_db()
        from_kind, to_kind = stage(start).kind, stage(target).kind
        legal = start != target and to_kind in services.ALLOWED[from_kind]
        kwargs = {"lost_reason": "price"} if target == "lost" else {}
        if legal:
            moved = services.opportunity_move(actor=None, opportunity=opportunity, to=stage(target), **kwargs)
            assert moved.stage.code == target
            assert (moved.closed_at is not None) == (to_kind in ("won", "lost"))
            assert StageChange.objects.filter(opportunity=opportunity, to_stage=stage(target)).exists()
            if target == "won":
                assert Trip.objects.get(opportunity=opportunity).status == Trip.Status.CONFIRMED
        else:
            with pytest.raises(services.IllegalTransition) as caught:
                services.opportunity_move(actor=None, opportunity=opportunity, to=stage(target), **kwargs)
            assert "stage" in caught.value.message_dict
            assert Opportunity.objects.get(pk=opportunity.pk).stage.code == start


def test_the_workflow_table_is_what_the_issue_asks():
    allowed = {(a, b) for a, targets in services.ALLOWED.items() for b in targets}
    assert ("won", "open") not in allowed and ("won", "lost") not in allowed
    assert ("lost", "won") not in allowed and ("lost", "deposit") not in allowed
    assert ("deposit", "open") not in allowed
    assert {("open", "open"), ("open", "deposit"), ("open", "lost"), ("deposit", "won"), ("lost", "open")} <= allowed


def test_lost_needs_a_reason_and_reopening_clears_it(alpha, api_client):
    opportunity = lead(alpha, owner=staff(alpha, "sales"))
    client = api_client("alpha", "sales")
    with tenant_context(alpha):
        lost, new = stage("lost").pk, stage("new").pk
    missing = client.post(f"/api/v1/opportunities/{opportunity.pk}/move/", {"stage": lost})
    assert missing.status_code == 400 and "lost_reason" in missing.json()["error"]["fields"]
    done = client.post(f"/api/v1/opportunities/{opportunity.pk}/move/", {"stage": lost, "lost_reason": "competitor"})
    assert done.status_code == 200 and done.json()["lost_reason"] == "competitor"
    reopened = client.post(f"/api/v1/opportunities/{opportunity.pk}/move/", {"stage": new}).json()
    assert reopened["lost_reason"] == "" and reopened["closed_at"] is None
    illegal = client.post(f"/api/v1/opportunities/{opportunity.pk}/move/", {"stage": new})
    assert illegal.status_code == 400 and "already" in illegal.json()["error"]["fields"]["stage"][0]


def test_renamed_and_added_stages_keep_the_rules(alpha):
    with tenant_context(alpha):
        admin = staff(alpha, "admin")
        services.stage_save(actor=admin, stage=stage("qualified"), name="已确认需求", probability=30, position=20)
        visa = services.stage_save(actor=admin, name="Visa check", probability=60, position=35)
        assert visa.kind == "open" and str(stage("qualified")) == "已确认需求"
        with pytest.raises(ValidationError):
            services.stage_save(actor=admin, stage=stage("won"), name="Won", probability=100, position=50, is_active=False)
        opportunity = lead(alpha, owner=admin)
        services.opportunity_move(actor=admin, opportunity=opportunity, to=visa)
        with pytest.raises(ValidationError):  # an open stage with deals in it stays in use
            services.stage_save(actor=admin, stage=visa, name="Visa check", probability=60, position=35, is_active=False)


# --- tasks and reminders --------------------------------------------------------------------------

def test_reminders_are_sent_once_in_the_owners_language(alpha, mailbox):
    now = timezone.now()
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        User.objects.filter(pk=sales.pk).update(language="zh-hans")
        customer = person(alpha)
        due = services.task_create(actor=None, owner=sales, customer=customer, title="回电王芳",
                                   due_at=now + timedelta(hours=1), remind_at=now - timedelta(minutes=1))
        services.task_create(actor=None, owner=sales, title="Later", due_at=now + timedelta(days=2),
                             remind_at=now + timedelta(days=1))
        services.task_create(actor=None, owner=sales, title="Done already", due_at=now, remind_at=now - timedelta(hours=1))
        Task.objects.filter(title="Done already").update(done_at=now)
        assert services.task_reminders_send() == 1
        assert services.task_reminders_send() == 0
        assert Task.objects.get(pk=due.pk).reminded_at is not None
    assert len(mailbox) == 1 and mailbox[0]["To"] == sales.email
    assert "回电王芳" in mailbox[0].get_payload(decode=True).decode()


def test_reminders_retry_when_the_mail_server_is_down(alpha, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    with tenant_context(alpha):
        task = services.task_create(actor=None, owner=staff(alpha, "sales"), title="x", due_at=timezone.now(),
                                    remind_at=timezone.now() - timedelta(minutes=5))
        with pytest.raises(OSError):
            services.task_reminders_send()
        assert Task.objects.get(pk=task.pk).reminded_at is None


def test_a_keyed_task_is_made_once(alpha):
    with tenant_context(alpha):
        first = services.task_create(actor=None, owner=None, title="a", due_at=timezone.now(), key="k:1")
        again = services.task_create(actor=None, owner=None, title="b", due_at=timezone.now(), key="k:1")
        assert first.pk == again.pk and Task.objects.filter(key="k:1").count() == 1


def test_tasks_api_own_and_managers(alpha, api_client):
    now = timezone.now()
    sales = api_client("alpha", "sales")
    made = sales.post("/api/v1/tasks/", {"title": "Send the quote", "due_at": (now - timedelta(hours=1)).isoformat()},
                      format="json")
    assert made.status_code == 201 and made.json()["is_overdue"] is True
    task_id = made.json()["id"]
    assert api_client("alpha", "call_center").get(f"/api/v1/tasks/{task_id}/").status_code == 404  # not theirs
    manager = api_client("alpha", "manager")
    assert [t["id"] for t in manager.get("/api/v1/tasks/?everyone=1&overdue=1").json()["results"]] == [task_id]
    assert sales.post(f"/api/v1/tasks/{task_id}/done/").json()["done_at"] is not None
    bad = sales.post("/api/v1/tasks/", {"title": "", "due_at": "soon"}, format="json")
    assert bad.status_code == 400 and {"title", "due_at"} <= set(bad.json()["error"]["fields"])


# --- report, roles, the fence ---------------------------------------------------------------------

def test_conversion_report_counts_what_reached_each_stage(alpha, api_client):
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        deals = [lead(alpha, owner=sales, phone=f"1360000000{n}") for n in range(4)]
        services.opportunity_move(actor=sales, opportunity=deals[0], to=stage("qualified"))
        services.opportunity_move(actor=sales, opportunity=deals[0], to=stage("won"))
        services.opportunity_move(actor=sales, opportunity=deals[1], to=stage("lost"), lost_reason="price")
        services.opportunity_move(actor=sales, opportunity=deals[2], to=stage("qualified"))
    report = api_client("alpha", "manager").get("/api/v1/pipeline/report/").json()
    reached = {s["name"]: s["reached"] for s in report["stages"]}
    assert report["total"] == 4 and reached["New"] == 4 and reached["Qualified"] == 2 and reached["Won"] == 1
    assert report["win_rate"] == 50.0 and report["lost_reasons"] == [{"reason": "price", "count": 1}]
    person_row = next(p for p in report["salespeople"] if p["id"] == staff(alpha, "sales").pk)
    assert person_row["open"] == 2
    assert api_client("alpha", "sales").get("/api/v1/pipeline/report/").status_code == 403


def test_list_is_mine_unless_a_manager_asks_for_more(alpha, api_client):
    mine = lead(alpha, owner=staff(alpha, "sales"), phone="13500000001")
    theirs = lead(alpha, owner=staff(alpha, "service"), phone="13500000002")
    waiting = lead(alpha, phone="13500000003")
    ids = lambda client, q="": [o["id"] for o in client.get("/api/v1/opportunities/" + q).json()["results"]]  # noqa: E731
    sales = api_client("alpha", "sales")
    assert ids(sales) == [mine.pk] and ids(sales, "?unassigned=1") == [waiting.pk]
    assert sales.get("/api/v1/opportunities/?owner=all").status_code == 400
    assert sorted(ids(api_client("alpha", "manager"), "?owner=all")) == sorted([mine.pk, theirs.pk, waiting.pk])
    assert sales.patch(f"/api/v1/opportunities/{theirs.pk}/", {"title": "x"}).status_code == 404
    assert sales.patch(f"/api/v1/opportunities/{mine.pk}/", {"value": "-1"}).status_code == 400


def test_create_through_the_api_from_the_call_center(alpha, api_client):
    on_file = person(alpha, phones=["13800138000"])
    response = api_client("alpha", "call_center").post("/api/v1/opportunities/", {
        "phone": "138 0013 8000", "name": "王芳", "source": "call_center", "destination": "三亚", "adults": 3})
    assert response.status_code == 201, response.content
    assert response.json()["customer"]["id"] == on_file.pk and response.json()["source"] == "call_center"
    assert api_client("alpha", "finance").post("/api/v1/opportunities/", {"phone": "1"}).status_code == 403


def test_another_agencys_pipeline_is_out_of_reach(alpha, bravo, api_client):
    theirs = lead(bravo, owner=staff(bravo, "sales"))
    with tenant_context(bravo):
        task = services.task_create(actor=None, owner=staff(bravo, "sales"), title="b", due_at=timezone.now())
        won = Stage.objects.get(code="won").pk
    admin = api_client("alpha", "admin")
    for path in (f"/api/v1/opportunities/{theirs.pk}/", f"/api/v1/tasks/{task.pk}/"):
        assert admin.get(path).status_code == 404
    for path, body in ((f"/api/v1/opportunities/{theirs.pk}/move/", {"stage": won}),
                       (f"/api/v1/opportunities/{theirs.pk}/take/", {}),
                       (f"/api/v1/opportunities/{theirs.pk}/assign/", {"owner": staff(alpha, "sales").pk}),
                       (f"/api/v1/tasks/{task.pk}/done/", {})):
        assert admin.post(path, body).status_code == 404, path
    assert admin.get("/api/v1/opportunities/?owner=all").json()["results"] == []
    # alpha's token on bravo's host; bravo's token cannot be used on alpha's.
    assert api_client("alpha", "admin", on="bravo.localhost").get("/api/v1/opportunities/").status_code == 401
    assert api_client("bravo", "admin", on="alpha.localhost").get("/api/v1/tasks/").status_code == 401
    with tenant_context(bravo):
        assert Opportunity.objects.get(pk=theirs.pk).stage.code == "new"


@pytest.mark.parametrize("proxies, forwarded, expected", [
    (0, "6.6.6.6", "10.0.0.1"),                        # no proxy: a client's own header means nothing
    (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),        # what our proxy appended, not what the client claimed
    (2, "203.0.113.9, 10.0.0.7", "203.0.113.9"),
    (2, "10.0.0.7", "10.0.0.1"),                       # fewer hops than proxies: fall back to the connection
])
def test_the_enquiry_rate_limit_keys_on_the_address_our_proxies_saw(proxies, forwarded, expected):
    meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": forwarded}
    assert intake.client_address(meta, proxies) == expected


def test_the_periodic_jobs_of_one_agency_leave_the_other_alone(alpha, bravo, mailbox):
    """Reminders and escalations run per agency: alpha's run sends and changes nothing of bravo's."""
    from crm.care import services as care
    from crm.care.models import Complaint

    past = timezone.now() - timedelta(hours=1)
    with tenant_context(bravo):
        task = services.task_create(actor=None, owner=staff(bravo, "sales"), title="bravo's", due_at=timezone.now(),
                                    remind_at=past)
        complaint = care.complaint_log(actor=staff(bravo, "service"), customer=person(bravo), category="hotel",
                                       severity="high", description="bravo's")
        Complaint.objects.filter(pk=complaint.pk).update(deadline_at=past)
    with tenant_context(alpha):
        assert services.task_reminders_send() == 0
        assert care.complaints_escalate() == 0
    with tenant_context(bravo):
        assert Task.objects.get(pk=task.pk).reminded_at is None
        assert Complaint.objects.get(pk=complaint.pk).escalated_at is None
    assert mailbox == []
