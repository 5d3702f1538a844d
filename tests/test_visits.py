"""Key-account visit plans and visit records (R-TIER-4): slot generation (weekly, fortnightly,
monthly, across a DST change, idempotent, following plan changes), visit records (slot done,
timeline, follow-up, field errors), missed visits and the report, permissions, the calendar feed,
pages, API, and the fence between agencies."""
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.models import ChangeLog, Contact, Customer
from crm.pipeline.models import Task
from crm.visits import ical, selectors, services
from crm.visits.models import Visit, VisitPlan

from .conftest import staff

pytestmark = pytest.mark.django_db
TUESDAY = VisitPlan.Weekday.TUESDAY


def company(agency, name="星辰科技", owner_role="sales") -> Customer:
    with tenant_context(agency):
        account = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=name, kind="company",
                                               owner=staff(agency, owner_role))
        person = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name="李总")
        crm_services.employment_set(actor=None, company=account, person=person, job_grade="D1")
    return account


def plan(agency, account, *, actor_role="manager", **fields) -> VisitPlan:
    fields.setdefault("owner", staff(agency, "sales"))
    fields.setdefault("cadence", VisitPlan.Cadence.WEEKLY)
    fields.setdefault("weekday", TUESDAY)
    fields.setdefault("time_of_day", time(10, 0))
    fields.setdefault("starts_on", date(2026, 1, 1))
    with tenant_context(agency):
        return services.plan_save(actor=staff(agency, actor_role), account=account, **fields)


def forget_slots(made: VisitPlan) -> None:
    """Drop the slots saving the plan made from today's date, to replay another day."""
    Task.objects.filter(key__startswith=f"visit:{made.pk}:").delete()


def slot_days(made: VisitPlan) -> list[date]:
    return sorted(date.fromisoformat(key.rsplit(":", 1)[1]) for key in
                  Task.objects.filter(key__startswith=f"visit:{made.pk}:").values_list("key", flat=True))


# --- slots ----------------------------------------------------------------------------------------

def test_weekly_fortnightly_and_monthly_slots(alpha):
    account = company(alpha)
    with tenant_context(alpha):
        weekly = VisitPlan(account=account, cadence="weekly", weekday=TUESDAY, starts_on=date(2026, 3, 4))
        assert services.plan_slots(weekly, date(2026, 3, 1), date(2026, 3, 31)) == [
            date(2026, 3, 10), date(2026, 3, 17), date(2026, 3, 24), date(2026, 3, 31)]
        fortnightly = VisitPlan(account=account, cadence="fortnightly", weekday=TUESDAY, starts_on=date(2026, 3, 4))
        # fortnights count from the first slot (10 March), whatever window is asked for
        assert services.plan_slots(fortnightly, date(2026, 3, 18), date(2026, 4, 30)) == [
            date(2026, 3, 24), date(2026, 4, 7), date(2026, 4, 21)]
        monthly = VisitPlan(account=account, cadence="monthly", weekday=VisitPlan.Weekday.FRIDAY, week_of_month=5,
                            starts_on=date(2026, 1, 1), ends_on=date(2026, 4, 20))
        assert services.plan_slots(monthly, date(2026, 1, 1), date(2026, 12, 31)) == [  # last Friday, until the end
            date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27)]
        second = VisitPlan(account=account, cadence="monthly", weekday=VisitPlan.Weekday.MONDAY, week_of_month=2,
                           starts_on=date(2026, 1, 1))
        assert services.plan_slots(second, date(2026, 6, 1), date(2026, 7, 31)) == [date(2026, 6, 8), date(2026, 7, 13)]


def test_slots_become_tasks_at_local_time_across_a_dst_change_once(alpha):
    alpha.time_zone = "America/New_York"
    account = company(alpha)
    with tenant_context(alpha):
        made = plan(alpha, account, weekday=VisitPlan.Weekday.FRIDAY, starts_on=date(2026, 2, 1))
        forget_slots(made)
        assert services.plan_sync(made, today=date(2026, 3, 2)) == {"made": 5, "moved": 0, "removed": 0}
        tasks = list(Task.objects.filter(key__startswith=f"visit:{made.pk}:", due_at__year=2026,
                                         due_at__month=3).order_by("due_at"))
        zone = ZoneInfo("America/New_York")
        assert [t.due_at.astimezone(zone).time() for t in tasks] == [time(10, 0)] * len(tasks)
        # 10:00 local is 15:00 UTC before 8 March and 14:00 UTC after it
        assert tasks[0].due_at.astimezone(ZoneInfo("UTC")).hour == 15 and tasks[-1].due_at.astimezone(ZoneInfo("UTC")).hour == 14
        assert all(t.kind == Task.Kind.VISIT and t.owner == staff(alpha, "sales") and t.customer == account for t in tasks)
        assert services.plan_sync(made, today=date(2026, 3, 2)) == {"made": 0, "moved": 0, "removed": 0}


def test_a_changed_plan_moves_its_future_slots_and_keeps_the_past(alpha):
    account = company(alpha)
    with tenant_context(alpha):
        made = plan(alpha, account, starts_on=date(2026, 1, 1))
        forget_slots(made)
        services.plan_sync(made, today=date(2026, 3, 2))
        past = Task.objects.get(key=made.task_key(date(2026, 3, 3)))
        Task.objects.filter(pk=past.pk).update(done_at=timezone.now())
        made.weekday = VisitPlan.Weekday.THURSDAY
        made.time_of_day = time(15, 30)
        made.save()
        counts = services.plan_sync(made, today=date(2026, 3, 4))
        days = slot_days(made)
        assert date(2026, 3, 3) in days  # done: history stays
        assert not [d for d in days if d >= date(2026, 3, 4) and d.weekday() == TUESDAY]
        assert counts["made"] == 5 and counts["removed"] == 4
        made.active = False
        made.save()
        services.plan_sync(made, today=date(2026, 3, 4))
        assert slot_days(made) == [date(2026, 3, 3)]


def test_the_job_runs_every_plan_of_its_agency_only(alpha, bravo):
    made_alpha = plan(alpha, company(alpha))
    made_bravo = plan(bravo, company(bravo, "Bravo Corp"))
    with tenant_context(bravo):
        Task.objects.filter(key__startswith="visit:").delete()
    with tenant_context(alpha):
        Task.objects.filter(key__startswith="visit:").delete()
        totals = services.plans_sync()
        assert totals["plans"] == 1 and totals["made"] >= 5 and slot_days(made_alpha)
    with tenant_context(bravo):
        assert not slot_days(made_bravo)


# --- plans: rules and permissions -----------------------------------------------------------------

def test_plan_field_errors(alpha):
    account = company(alpha)
    with tenant_context(alpha), pytest.raises(ValidationError) as caught:
        services.plan_save(actor=staff(alpha, "manager"), account=account, owner=staff(alpha, "finance"),
                           cadence="monthly", weekday=TUESDAY, time_of_day=None, duration_minutes=5,
                           starts_on=date(2026, 5, 1), ends_on=date(2026, 4, 1))
    assert set(caught.value.message_dict) == {"owner", "week_of_month", "time_of_day", "duration_minutes", "ends_on"}


def test_who_may_plan(alpha):
    mine = company(alpha, "Mine", owner_role="sales")
    theirs = company(alpha, "Theirs", owner_role="manager")
    plan(alpha, mine, actor_role="sales")  # own account, self as visitor
    with tenant_context(alpha):
        for kwargs in ({"account": theirs, "owner": staff(alpha, "sales")},
                       {"account": mine, "owner": staff(alpha, "manager")}):
            with pytest.raises(PermissionDenied):
                services.plan_save(actor=staff(alpha, "sales"), cadence="weekly", weekday=1, time_of_day=time(9),
                                   starts_on=date(2026, 1, 1), **kwargs)
    plan(alpha, theirs, actor_role="manager", owner=staff(alpha, "service"))


# --- visit records --------------------------------------------------------------------------------

def test_recording_a_visit_completes_its_slot_and_writes_timeline_and_follow_up(alpha):
    account = company(alpha)
    with tenant_context(alpha):
        made = plan(alpha, account, starts_on=services.agency_today() - timedelta(days=20))
        services.plan_sync(made, today=services.agency_today() - timedelta(days=14))
        slot = Task.objects.filter(key__startswith=f"visit:{made.pk}:", due_at__lt=timezone.now()).order_by("due_at").first()
        person = Customer.objects.get(name="李总")
        visit = services.visit_record(
            actor=staff(alpha, "sales"), account=account, visited_at=slot.due_at + timedelta(days=1),
            staff=[staff(alpha, "sales"), staff(alpha, "manager")], met_people=[person], met_others="王总 (CFO)",
            executive_theirs=True, topics="新财年差旅政策", concerns="出票慢", next_steps="Send the draft policy",
            next_step_due=services.agency_today() + timedelta(days=3), satisfaction=4)
        slot.refresh_from_db()
        assert visit.task == slot and slot.done_at is not None and visit.plan == made  # matched by the slot's week
        assert visit.is_executive and visit.owner == staff(alpha, "sales")
        contact = Contact.objects.get(pk=visit.contact_id)
        assert contact.channel == Contact.Channel.VISIT and contact.customer == account
        assert "李总" in contact.summary and "王总 (CFO)" in contact.summary and "新财年差旅政策" in contact.summary
        follow_up = Task.objects.get(key=f"visit-follow-up:{visit.pk}")
        assert follow_up.owner == staff(alpha, "sales") and follow_up.notes == "Send the draft policy"
        # the same slot cannot be claimed twice
        with pytest.raises(ValidationError) as caught:
            services.visit_record(actor=staff(alpha, "sales"), account=account, visited_at=timezone.now(),
                                  staff=[staff(alpha, "sales")], met_others="X", topics="Again", task=slot)
        assert "task" in caught.value.message_dict


def test_visit_field_errors_and_who_may_record(alpha):
    account = company(alpha)
    other = company(alpha, "Other Ltd")
    with tenant_context(alpha):
        outsider = Customer.objects.filter(employments__company=other).first()
        with pytest.raises(ValidationError) as caught:
            services.visit_record(actor=staff(alpha, "sales"), account=account,
                                  visited_at=timezone.now() + timedelta(days=2), staff=[], met_people=[outsider],
                                  topics=" ", next_step_due=date(2026, 12, 1), satisfaction=9)
        assert set(caught.value.message_dict) == {"visited_at", "staff", "met_people", "topics", "next_steps",
                                                  "satisfaction"}
        with pytest.raises(PermissionDenied):
            services.visit_record(actor=staff(alpha, "finance"), account=account, visited_at=timezone.now(),
                                  staff=[staff(alpha, "finance")], met_others="X", topics="Y")
        assert not Visit.objects.exists()


def test_missed_slots_and_the_report(alpha):
    account = company(alpha)
    with tenant_context(alpha):
        today = services.agency_today()
        made = plan(alpha, account, weekday=today.weekday(), starts_on=today - timedelta(days=30))
        services.plan_sync(made, today=today - timedelta(days=21))  # slots 21, 14 and 7 days ago (and today)
        past = list(Task.objects.filter(key__startswith=f"visit:{made.pk}:", due_at__lt=timezone.now() - timedelta(days=1))
                    .order_by("due_at"))
        assert len(past) == 3
        services.visit_record(actor=staff(alpha, "sales"), account=account, visited_at=past[0].due_at,
                              staff=[staff(alpha, "sales")], met_others="CFO", topics="Q3", task=past[0],
                              executive_ours=True)
        services.visit_record(actor=staff(alpha, "manager"), account=account, visited_at=timezone.now(),
                              staff=[staff(alpha, "manager")], met_others="CEO", topics="Unplanned check-in")
        missed = selectors.missed_slots(date_from=today - timedelta(days=30))
        assert {t.pk for t in missed} >= {past[1].pk, past[2].pk} and past[0].pk not in {t.pk for t in missed}
        report = selectors.visit_report(date_from=today - timedelta(days=30), date_to=today - timedelta(days=1))
        assert (report.planned, report.held, report.missed, report.executive) == (3, 1, 2, 1)
        [row] = [r for r in report.by_owner if r["id"] == staff(alpha, "sales").pk]
        assert (row["planned"], row["held"], row["missed"], row["visits"]) == (3, 1, 2, 1)


# --- the calendar feed ----------------------------------------------------------------------------

def test_calendar_feed_is_rfc5545_signed_per_agency_and_revocable(alpha, bravo, page_client):
    account = company(alpha, "星辰科技有限公司 Starry Sky Technology Co. Ltd, Shanghai branch; 5th floor")
    made = plan(alpha, account, location="上海市浦东新区世纪大道 100 号, 25F")
    with tenant_context(alpha):
        seller = staff(alpha, "sales")
        token = ical.feed_token(seller)
        body = ical.feed(seller, host="alpha.localhost")
        slots = len(slot_days(made))
    assert body.startswith("BEGIN:VCALENDAR\r\n") and body.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    assert body.count("BEGIN:VEVENT") == slots > 0
    unfolded = body.replace("\r\n ", "")
    assert "LOCATION:上海市浦东新区世纪大道 100 号\\, 25F" in unfolded and "Starry Sky Technology Co. Ltd\\, Shanghai branch\\;" in unfolded
    response = page_client("alpha").get(f"/visits/calendar/{token}.ics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    assert page_client("bravo").get(f"/visits/calendar/{token}.ics").status_code == 404  # another agency's host
    assert page_client("alpha").get(f"/visits/calendar/{token}x.ics").status_code == 404
    with tenant_context(alpha):
        seller.set_password("a new password 123")
        seller.save()
    assert page_client("alpha").get(f"/visits/calendar/{token}.ics").status_code == 404  # revoked


# --- pages and API --------------------------------------------------------------------------------

def test_pages_plan_record_and_report(page_client, alpha):
    account = company(alpha)
    client = page_client("alpha", "sales")
    card = client.get(f"/customers/{account.pk}/").content.decode()
    assert 'data-test="visits-card"' in card and "/visits/plans/new/?account=" in card
    bad = client.post(f"/visits/plans/new/?account={account.pk}", {"owner": staff(alpha, "sales").pk, "cadence": "monthly",
                                                                   "weekday": 1, "time_of_day": "10:00",
                                                                   "duration_minutes": 60, "starts_on": "2026-01-01",
                                                                   "active": "on"})
    assert bad.status_code == 400 and "Choose which week of the month." in bad.content.decode()
    good = client.post(f"/visits/plans/new/?account={account.pk}", {"owner": staff(alpha, "sales").pk, "cadence": "weekly",
                                                                     "weekday": 1, "time_of_day": "10:00",
                                                                     "duration_minutes": 60, "starts_on": "2026-01-01",
                                                                     "location": "浦东", "active": "on"})
    assert good.status_code == 302
    home = client.get("/visits/").content.decode()
    assert "星辰科技" in home and "/visits/calendar/" in home
    form = client.get(f"/visits/new/?account={account.pk}")
    assert form.status_code == 200
    with tenant_context(alpha):
        person = Customer.objects.get(name="李总")
    posted = client.post(f"/visits/new/?account={account.pk}", {
        "visited_at": "2026-11-20T10:00", "staff": [staff(alpha, "sales").pk], "met_people": [person.pk],
        "topics": "酒店协议价", "executive_theirs": "on", "satisfaction": "5"})
    assert posted.status_code == 302
    detail = client.get(posted["Location"]).content.decode()
    assert "酒店协议价" in detail and 'data-test="executive"' in detail
    empty = client.post(f"/visits/new/?account={account.pk}", {"visited_at": "2026-11-20T10:00"})
    assert empty.status_code == 400 and "Say what was discussed." in empty.content.decode()
    report = client.get("/visits/report/", {"from": "", "to": ""})
    assert report.status_code == 200
    csv_body = b"".join(client.get("/visits/report.csv").streaming_content).decode()
    assert csv_body.startswith("\ufeffgroup,name,planned")
    assert page_client("alpha", "finance").get("/visits/").status_code == 403


def test_api_plans_visits_and_report(api_client, alpha):
    account = company(alpha)
    client = api_client("alpha", "manager")
    created = client.post("/api/v1/visit-plans/", {"account": account.pk, "owner": staff(alpha, "sales").pk,
                                                   "cadence": "fortnightly", "weekday": 2, "time_of_day": "09:30",
                                                   "starts_on": "2026-01-05"}, format="json")
    assert created.status_code == 201, created.json()
    assert client.get("/api/v1/visit-plans/").json()["results"][0]["cadence"] == "fortnightly"
    bad = client.post("/api/v1/visits/", {"account": account.pk, "visited_at": "2026-11-20T10:00:00+08:00",
                                          "staff": [], "topics": ""}, format="json")
    assert bad.status_code == 400 and {"staff", "topics", "met_people"} <= set(bad.json()["error"]["fields"])
    visit = client.post("/api/v1/visits/", {"account": account.pk, "visited_at": "2026-11-20T10:00:00+08:00",
                                            "staff": [staff(alpha, "manager").pk], "met_others": "CFO",
                                            "topics": "Renewal"}, format="json")
    assert visit.status_code == 201 and visit.json()["topics"] == "Renewal"
    assert client.get("/api/v1/visits/", {"account": account.pk}).json()["count"] == 1
    report = client.get("/api/v1/visits/report/", {"from": "2026-11-01", "to": "2026-11-30"}).json()
    assert report["visits"] == 1


def test_another_agencys_plans_and_visits_stay_out_of_reach(api_client, page_client, alpha, bravo):
    account = company(bravo, "Bravo Corp")
    made = plan(bravo, account)
    with tenant_context(bravo):
        visit = services.visit_record(actor=staff(bravo, "sales"), account=account, visited_at=timezone.now(),
                                      staff=[staff(bravo, "sales")], met_others="CEO", topics="Bravo secret")
    alpha_api = api_client("alpha", "manager")
    assert alpha_api.get(f"/api/v1/visit-plans/{made.pk}/").status_code == 404
    assert alpha_api.get(f"/api/v1/visits/{visit.pk}/").status_code == 404
    assert alpha_api.post("/api/v1/visits/", {"account": account.pk, "visited_at": "2026-11-20T10:00:00+08:00",
                                              "staff": [staff(alpha, "manager").pk], "met_others": "X",
                                              "topics": "Y"}, format="json").status_code == 400
    assert api_client("alpha", "manager", on="bravo.localhost").get("/api/v1/visits/").status_code == 401
    alpha_pages = page_client("alpha", "manager")
    assert alpha_pages.get(f"/visits/{visit.pk}/").status_code == 404
    assert alpha_pages.get(f"/visits/plans/{made.pk}/").status_code == 404
    assert alpha_pages.get(f"/visits/new/?account={account.pk}").status_code == 404
    assert "Bravo secret" not in alpha_pages.get("/visits/").content.decode()


def test_dashboard_shows_this_weeks_missed_visits_to_managers(page_client, alpha):
    account = company(alpha)
    with tenant_context(alpha):
        today = services.agency_today()
        made = plan(alpha, account, weekday=today.weekday(), starts_on=today - timedelta(days=30))
        forget_slots(made)
        monday = today - timedelta(days=today.weekday())
        task = Task.objects.create(title="Visit 星辰科技", kind=Task.Kind.VISIT, owner=staff(alpha, "sales"),
                                   customer=account, key=made.task_key(monday),
                                   due_at=timezone.make_aware(datetime.combine(monday, time(0, 1))))
    html = page_client("alpha", "manager").get("/").content.decode()
    if monday == today:  # on a Monday no day of this week has passed: nothing is missed yet
        assert 'visit missed this week' not in html and task.done_at is None
    else:
        assert 'data-test="visits-dashboard"' in html and "1 visit missed this week" in html and "星辰科技" in html


def test_demo_visits(alpha):
    from crm.visits.demo import seed_visits

    company(alpha, "Demo Corp A")
    company(alpha, "Demo Corp B")
    counts = seed_visits(alpha, accounts=2)
    assert counts["plans"] == 2 and counts["visits"] >= 1
    assert seed_visits(alpha) == {"plans": 0, "visits": 0}  # idempotent
    with tenant_context(alpha):
        assert Visit.objects.count() == counts["visits"] and Task.objects.filter(kind=Task.Kind.VISIT).exists()
