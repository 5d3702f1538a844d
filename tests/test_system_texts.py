"""Texts the system writes are stored as kind + params and read in the reader's language (issue 20).

The demo data of an agency whose language is Chinese is seeded the way ``seed_demo`` does (a subset,
through the same seeders, as tests/test_fences.py does), then the jobs and services that write the
other texts run; every task title the system wrote is read as a colleague whose language is English
and as one whose language is Chinese, on the tasks page and through the API.
"""
import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone, translation
from django.utils.translation import pgettext
from django_tenants.utils import tenant_context

from accounts.models import User
from caravan import formatting, texts
from crm.customers.models import Contact, Customer
from crm.pipeline.models import Task
from tenants.models import Agency

CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def _seed(agency):
    """The demo seeders of ``seed_demo`` (fewer records), then the services that write the other
    system texts, as the jobs and pages call them."""
    from crm.care import services as care
    from crm.care.demo_journeys import seed_journeys
    from crm.care.models import Survey
    from crm.customers.demo import seed_customers
    from crm.loyalty.demo import seed_loyalty
    from crm.loyalty.services import winback
    from crm.policies.demo import seed_policies
    from crm.tiers import services as tiers
    from crm.tiers.demo import seed_tiers
    from crm.tiers.models import CustomerTier, ServiceTier
    from crm.trips import services as trips
    from crm.value.demo import seed_value
    from crm.visits import services as visits
    from crm.visits.demo import seed_visits

    seed_customers(agency, people=30, companies=4)
    seed_journeys(agency, opportunities=12)
    seed_tiers(agency)
    seed_visits(agency, accounts=2)
    seed_policies(agency, accounts=2)
    seed_value(agency, buyers=10)
    seed_loyalty(agency)

    sales, manager, service = (User.objects.get(email=f"{role}@{agency.slug}.test")
                               for role in ("sales", "manager", "service"))
    people = list(Customer.objects.filter(kind=Customer.Kind.PERSON, merged_into__isnull=True).order_by("pk")[:6])
    Customer.objects.filter(pk__in=[p.pk for p in people]).update(owner=sales)
    for person in people:
        person.refresh_from_db()
    now = timezone.now()
    with translation.override(agency.language):  # as a request or job of the agency would run
        trip = trips.trip_create(actor=None, customer=people[0], title="京都赏樱", owner=sales,
                                 depart_on=now.date() - timedelta(days=9), return_on=now.date() - timedelta(days=2),
                                 status="confirmed")
        trips.item_add(actor=None, trip=trip, kind="hotel", description="京都酒店", cost="3000", sell="5000")
        trips.payment_record(actor=None, trip=trip, kind="deposit", amount="1000.00", method="bank",
                             received_on=now.date())
        care.after_trip_run()
        survey = Survey.objects.filter(trip=trip).first() or Survey.objects.create(
            trip=trip, customer=people[0], email="k@example.com", comment="")
        care.survey_answer(survey=survey, csat=1, nps=2)
        complaint = care.complaint_log(actor=service, customer=people[1], category="hotel", severity="medium",
                                       description="房间很吵")
        care.complaint_assign(actor=service, complaint=complaint, owner=manager)
        care.complaints_escalate(now=complaint.deadline_at + timedelta(hours=1))
        tiers.clock_start(kind="lead", customer=people[2], key="lead:texts", owner=sales)
        tiers.clocks_check(now=now + timedelta(days=30))
        current = CustomerTier.objects.filter(customer=people[3]).values_list("tier_id", flat=True).first()
        tier = ServiceTier.objects.exclude(pk=current).order_by("-rank").first()
        tiers.override_set(actor=manager, customer=people[3], tier=tier, reason="VIP")
        account = Customer.objects.filter(kind=Customer.Kind.COMPANY).order_by("pk").first()
        visits.visit_record(actor=sales, account=account, visited_at=now, staff=[sales], topics="续约", met_others="采购经理",
                            next_steps="发送报价")
        winback.win_back_identify()


@pytest.fixture
def seeded(alpha):
    """Alpha, its language Chinese, seeded: the stored fallbacks are Chinese."""
    Agency.objects.filter(pk=alpha.pk).update(language="zh-hans")
    alpha.language = "zh-hans"
    with tenant_context(alpha):
        _seed(alpha)
    return alpha


def _set_language(agency, role: str, language: str) -> None:
    with tenant_context(agency):
        User.objects.filter(email=f"{role}@{agency.slug}.test").update(language=language)


def _data(kind: str, params: dict) -> list[str]:
    """The params shown as given (names, titles, dates): not words of the template."""
    spec = texts.KINDS[kind]
    return sorted((str(v) for k, v in params.items() if k not in spec.choices and v not in (None, "")),
                  key=len, reverse=True)


def _without_data(text: str, kind: str, params: dict) -> str:
    for value in _data(kind, params):
        text = text.replace(value, " ")
    return text


def assert_in_language(text: str, kind: str, params: dict, language: str) -> None:
    rest = _without_data(text, kind, params)
    if language == "en":
        assert not CJK.search(rest), f"{kind}: Chinese in an English reading: {text!r}"
        assert LATIN_WORD.search(rest), text
    else:
        assert CJK.search(text), f"{kind}: no Chinese in a Chinese reading: {text!r}"
        assert not LATIN_WORD.search(rest), f"{kind}: English template words in a Chinese reading: {text!r}"


# Kinds the seeded demo and the services above must have written (the others have tests of their own jobs).
EXPECTED = {"new_lead", "deposit_received", "approval_decided", "low_survey_score", "complaint", "complaint_escalated",
            "sla_breached", "visit_slot", "visit_follow_up", "tier_changed", "value_spend_drop", "after_trip_call",
            "win_back"}


TIMELINE = {"survey_answered", "complaint_logged", "complaint_reassigned", "complaint_passed_deadline",
            "payment_recorded", "policy_check_approval"}


def _api_tasks(client) -> list[dict]:
    """Everyone's tasks, open and done, through the API."""
    found = []
    for done in ("false", "true"):
        page = 1
        while True:
            answer = client.get("/api/v1/tasks/", {"everyone": "true", "done": done, "page": page, "page_size": 100})
            assert answer.status_code == 200, answer.content
            body = answer.json()
            found += body["results"]
            if not body.get("next"):
                break
            page += 1
    return found


def test_every_system_text_reads_in_the_readers_language_on_pages_and_in_the_api(seeded, page_client, api_client):
    with tenant_context(seeded):
        system = {t.pk: t for t in Task.objects.exclude(text_kind="")}
        typed = list(Task.objects.filter(text_kind="").values_list("title", flat=True))
    assert EXPECTED <= {t.text_kind for t in system.values()}
    # The demo's follow-ups were typed by people: they stay as typed.
    assert typed and all(not texts.recognise(title) for title in typed)
    with tenant_context(seeded):
        entries = {c.pk: c for c in Contact.objects.exclude(text_kind="")}
    assert TIMELINE <= {c.text_kind for c in entries.values()}
    with tenant_context(seeded):
        noted = {t.pk: t for t in Task.objects.exclude(note_kind="")}
    assert NOTES <= {t.note_kind for t in noted.values()}
    for language in ("en", "zh-hans"):
        _read_in(seeded, system, language, page_client, api_client)
        _read_timeline_in(seeded, entries, language, page_client, api_client)
        _read_notes_in(seeded, noted, language, page_client, api_client)


# Task notes the seeded demo and the services above must have written.
NOTES = {"survey_answered", "sla_note", "approval_decided_note"}


def _read_notes_in(seeded, noted, language, page_client, api_client):
    """Task notes the system wrote, through the API and on the task's edit page."""
    _set_language(seeded, "manager", language)
    with translation.override(language):
        expected = {pk: texts.render(t.note_kind, t.note_params) for pk, t in noted.items()}
    for pk, task in noted.items():
        assert expected[pk], task.note_kind
        if language == "en" and CJK.search(_without_data(task.notes, task.note_kind, task.note_params)):
            assert expected[pk] != task.notes  # written in the agency's language, Chinese: read in English
        assert_in_language(expected[pk], task.note_kind, task.note_params, language)
    answered = {row["id"]: row for row in _api_tasks(api_client(seeded.slug, "manager"))}
    for pk, task in noted.items():
        assert answered[pk]["notes"] == expected[pk] and answered[pk]["note_kind"] == task.note_kind
    task = next(t for t in noted.values() if t.done_at is None)
    edit = page_client(seeded.slug, "manager").get(f"/tasks/{task.pk}/")
    assert edit.status_code == 200 and html.escape(expected[task.pk]) in edit.content.decode()


def _read_timeline_in(seeded, entries, language, page_client, api_client):
    """Timeline entries the system wrote, on each customer's card and through the API."""
    _set_language(seeded, "manager", language)
    with translation.override(language):
        expected = {pk: texts.render(c.text_kind, c.text_params) for pk, c in entries.items()}
    for pk, contact in entries.items():
        assert_in_language(expected[pk], contact.text_kind, contact.text_params, language)
    client, api = page_client(seeded.slug, "manager"), api_client(seeded.slug, "manager")
    for customer_id in {c.customer_id for c in entries.values()}:
        card = client.get(f"/customers/{customer_id}/")
        assert card.status_code == 200
        rows = api.get(f"/api/v1/customers/{customer_id}/contacts/", {"page_size": 100}).json()["results"]
        answered = {row["id"]: row for row in rows}
        for pk in (pk for pk, c in entries.items() if c.customer_id == customer_id):
            assert html.escape(expected[pk]).replace("\n", "<br>") in card.content.decode(), expected[pk]
            assert answered[pk]["summary"] == expected[pk] and answered[pk]["text_kind"] == entries[pk].text_kind


def _read_in(seeded, system, language, page_client, api_client):  # noqa: C901
    _set_language(seeded, "manager", language)
    with translation.override(language):
        expected = {pk: texts.render(t.text_kind, t.text_params) for pk, t in system.items()}
    stored_in_chinese = set()
    for pk, task in system.items():
        assert expected[pk], task.text_kind
        assert_in_language(expected[pk], task.text_kind, task.text_params, language)
        if CJK.search(_without_data(task.title, task.text_kind, task.text_params)):
            stored_in_chinese.add(pk)  # written in the agency's language, Chinese
            if language == "en":
                assert expected[pk] != task.title
    assert len(stored_in_chinese) >= 10

    # The API, in the person's language (a token: the language is the user's, not the agency's).
    answered = {row["id"]: row for row in _api_tasks(api_client(seeded.slug, "manager"))}
    for pk, task in system.items():
        assert answered[pk]["title"] == expected[pk]
        assert answered[pk]["text_kind"] == task.text_kind

    # The tasks page (open tasks, everyone's) and a task's edit page.
    page = page_client(seeded.slug, "manager").get("/tasks/", {"everyone": "1"})
    assert page.status_code == 200
    content = page.content.decode()
    open_ones = [t for t in system.values() if t.done_at is None]
    assert open_ones
    for task in open_ones:
        assert html.escape(expected[task.pk]) in content, (task.text_kind, expected[task.pk])
        if language == "en" and task.pk in stored_in_chinese:
            assert html.escape(task.title) not in content
    task = open_ones[0]
    edit = page_client(seeded.slug, "manager").get(f"/tasks/{task.pk}/")
    assert edit.status_code == 200 and html.escape(expected[task.pk]) in edit.content.decode()


def test_texts_written_in_english_read_in_chinese(alpha, api_client):
    """The other way round: an English agency's texts, read by a colleague whose language is Chinese."""
    from crm.care import services as care
    from crm.trips import services as trips

    with tenant_context(alpha):
        sales = User.objects.get(email="sales@alpha.test")
        customer = Customer.objects.create(kind=Customer.Kind.PERSON, name="Li Lei", owner=sales)
        with translation.override("en"):
            trip = trips.trip_create(actor=None, customer=customer, title="Kyoto", owner=sales, status="confirmed")
            trips.item_add(actor=None, trip=trip, kind="hotel", description="Kyoto hotel", cost="30", sell="50")
            trips.payment_record(actor=None, trip=trip, kind="deposit", amount="10.00", method="cash",
                                 received_on=timezone.now().date())
            care.complaint_log(actor=None, customer=customer, category="flight", severity="medium",
                               description="Lost luggage", owner=sales)
        made = {t.text_kind: t for t in Task.objects.filter(customer=customer)}
    assert set(made) == {"deposit_received", "complaint"}
    assert made["complaint"].title == "Complaint from Li Lei: Flight"  # the fallback, in the agency's language
    _set_language(alpha, "sales", "zh-hans")
    rows = {row["id"]: row for row in _api_tasks(api_client("alpha", "sales"))}
    assert rows[made["complaint"].pk]["title"] == "Li Lei 的投诉：机票"
    assert rows[made["deposit_received"].pk]["title"] == f"{trip.reference} 已收订金：请今天致电 Li Lei"


def test_a_system_title_typed_over_is_the_persons_text(alpha, page_client):
    with tenant_context(alpha):
        sales = User.objects.get(email="sales@alpha.test")
        customer = Customer.objects.create(kind=Customer.Kind.PERSON, name="王芳", owner=sales)
        from crm.pipeline.services import task_create, task_update

        task = task_create(actor=None, owner=sales, customer=customer, due_at=timezone.now(), title="",
                           text=texts.store("low_survey_score", name="王芳"))
        assert task.title == "Low survey score: call 王芳"  # alpha writes in English
        with translation.override("zh-hans"):
            assert task.display_title == "调查低分：请致电 王芳"
            task_update(actor=sales, task=task, title="调查低分：请致电 王芳")  # saved unchanged: stays a kind
        task.refresh_from_db()
        assert task.text_kind == "low_survey_score"
        task_update(actor=sales, task=task, title="Call 王芳 about the refund")
        task.refresh_from_db()
        assert (task.text_kind, task.text_params, task.display_title) == ("", {}, "Call 王芳 about the refund")


def test_store_refuses_an_unknown_kind_and_missing_params_and_render_falls_back():
    with pytest.raises(texts.UnknownKind):
        texts.store("no_such_kind", name="x")
    with pytest.raises(KeyError):
        texts.store("complaint", name="x")  # no category
    assert texts.render("no_such_kind", {"name": "x"}, "as stored") == "as stored"
    assert texts.render("complaint", {"name": "x"}, "as stored") == "as stored"  # params that do not fit
    with translation.override("en"):
        assert texts.render("complaint", {"name": "x", "category": "retired_code"}) == "Complaint from x: retired_code"


# --- the data migration of old rows (pipeline 0008) -------------------------------------------------

OLD_ROWS = [  # (task kind, title the old code wrote, kind and params expected)
    ("deposit_call", "Deposit received for T000042: call 王芳 today", ("deposit_received", {"ref": "T000042", "name": "王芳"})),
    ("deposit_call", "T000042 已收订金：请今天致电 王芳", ("deposit_received", {"ref": "T000042", "name": "王芳"})),
    ("complaint", "Complaint from Li Lei: Hotel", ("complaint", {"name": "Li Lei", "category": "hotel"})),
    ("complaint", "Li Lei 的投诉：酒店", ("complaint", {"name": "Li Lei", "category": "hotel"})),
    ("complaint", "Escalated complaint from Li Lei: Our service",
     ("complaint_escalated", {"name": "Li Lei", "category": "service"})),
    ("approval", "Approval rejected: Hilton Tokyo for Bob", ("approval_decided",
                                                            {"status": "rejected", "item": "Hilton Tokyo", "name": "Bob"})),
    ("service_level", "Service level breached: Lead from 张三", ("sla_breached", {"kind": "lead", "name": "张三"})),
    ("service_level", "服务时限即将超时：张三 的投诉", ("sla_at_risk", {"kind": "complaint", "name": "张三"})),
    ("tier_change", "Service tier changed: 王芳: 金卡 → 白金", ("tier_changed", {"name": "王芳", "from": "金卡", "to": "白金"})),
    ("tier_change", "服务等级已变更: 王芳: — → 金卡", ("tier_changed", {"name": "王芳", "from": "", "to": "金卡"})),
    ("outreach", "主动联络: 王芳 (金卡)", ("outreach", {"name": "王芳", "tier": "金卡"})),
    ("value_warning", "Gone dormant: Li Lei", ("value_dormant", {"name": "Li Lei"})),
    ("value_warning", "消费下降: Li Lei", ("value_spend_drop", {"name": "Li Lei"})),
    ("greeting", "Greeting: 王芳 (生日, 2026-05-01)", ("greeting", {"name": "王芳", "label": "生日", "date": "2026-05-01"})),
    ("suggestion", "假期出行建议（劳动节 2026）: 王芳", ("holiday_suggestion",
                                                {"festival": "may_day", "year": "2026", "name": "王芳"})),
    ("win_back", "Win back: Li Lei", ("win_back", {"name": "Li Lei"})),
    ("referral", "发放推荐奖励: 王芳", ("referral_reward", {"name": "王芳"})),
    ("after_trip_call", "After-trip call: 日本 7 日", ("after_trip_call", {"trip": "日本 7 日"})),
    ("call", "New lead: Bali in May", ("new_lead", {"title": "Bali in May"})),
    ("call", "调查低分：请致电 王芳", ("low_survey_score", {"name": "王芳"})),
    ("visit", "拜访 Acme 公司", ("visit_slot", {"account": "Acme 公司"})),
    ("follow_up", "Follow up the visit to Acme", ("visit_follow_up", {"account": "Acme"})),
]
NOT_RECOGNISED = [("call", "Call back about hotel options"), ("complaint", "Complaint from Li Lei: 房间太吵"),
                  ("follow_up", "Follow up the visit to Acme")]  # the last: no visit key, typed by a person


def test_the_migration_reads_old_english_and_chinese_titles_into_kinds(alpha):
    import importlib

    from django.apps import apps as global_apps

    migration = importlib.import_module("crm.pipeline.migrations.0008_task_titles_to_text_kinds")
    with tenant_context(alpha):
        now = timezone.now()
        made = [(Task.objects.create(title=title, kind=kind, due_at=now,
                                     key=f"visit-follow-up:{n}" if kind == "follow_up" else None), want)
                for n, (kind, title, want) in enumerate(OLD_ROWS)]
        left = [Task.objects.create(title=title, kind=kind, due_at=now) for kind, title in NOT_RECOGNISED]
        migration.recognise_titles(global_apps, None)
        for task, (kind, params) in made:
            task.refresh_from_db()
            assert (task.text_kind, task.text_params) == (kind, params), task.title
        for task in left:
            title = task.title
            task.refresh_from_db()
            assert (task.text_kind, task.title) == ("", title)
        # Read back in the other language: the migrated Chinese row reads in English.
        deposit_zh = made[1][0]
        with translation.override("en"):
            assert deposit_zh.display_title == "Deposit received for T000042: call 王芳 today"


# --- texts translated once, at import ---------------------------------------------------------------

def test_the_segment_builder_interests_are_in_the_readers_language(alpha, page_client):
    """``gettext_lazy(...) % {...}`` in a form's class body was translated at import, in the language
    active then: the English builder showed the interests' help in Chinese. Interests are now a list
    of choices, each named in the reader's language (no raw codes on a Chinese page)."""
    for language, label in (("en", "Food and wine"), ("zh-hans", "美食美酒")):
        _set_language(alpha, "manager", language)
        page = page_client("alpha", "manager").get("/segments/new/").content.decode()
        assert 'name="interest" value="food"' in page
        assert label in page, language
        if language == "zh-hans":
            assert "sightseeing," not in page



def test_token_expiry_choices_follow_the_reader():
    from frontend.views.signin_guard import TokenForm

    for language, word in (("en", "days"), ("zh-hans", "天")):
        with translation.override(language):
            labels = [str(label) for _days, label in TokenForm.base_fields["days"].choices]
        assert labels and all(word in label for label in labels), labels


# --- import row errors ------------------------------------------------------------------------------

def test_import_row_errors_read_in_the_readers_language(alpha, page_client, api_client, settings, tmp_path):
    """A file checked and imported by a worker whose language was Chinese: its row errors read in
    English for an English colleague (page and API), and in Chinese for a Chinese one."""
    from pathlib import Path

    from django.core.files.storage import storages
    from django.core.files.uploadedfile import SimpleUploadedFile

    from crm.customers import imports
    from crm.customers.models import ImportJob
    from crm.customers.tasks import check_import

    settings.MEDIA_ROOT = str(tmp_path / "media")
    storages["default"].__dict__.pop("relative_media_root", None)
    sample = (Path(__file__).parent / "data" / "customers_zh.csv").read_bytes()
    try:
        with tenant_context(alpha), translation.override("zh-hans"):
            admin = User.objects.get(email="admin@alpha.test")
            job, _headers = imports.job_create(actor=admin, upload=SimpleUploadedFile("客户.csv", sample))
            check_import.apply(args=[job.pk, imports.state(job)["task"]["token"]]).get()
            job.refresh_from_db()
            imports.run(job)  # as the worker's task does, which then records the outcome
            ImportJob.objects.filter(pk=job.pk).update(errors=job.errors, error_count=job.error_count,
                                                       status=ImportJob.Status.DONE)
            job = ImportJob.objects.get(pk=job.pk)
        assert job.errors and all(e.get("text_kind", "").startswith("import_") for e in job.errors), job.errors
        assert all(CJK.search(_without_data(e["message"], e["text_kind"], e["text_params"])) for e in job.errors)
        for language in ("en", "zh-hans"):
            _set_language(alpha, "manager", language)
            answer = api_client("alpha", "manager").get(f"/api/v1/imports/{job.pk}/")
            assert answer.status_code == 200
            page = page_client("alpha", "manager").get(f"/customers/import/{job.pk}/")
            assert page.status_code == 200
            for error, shown in zip(job.errors, answer.json()["errors"]):
                assert_in_language(shown["message"], error["text_kind"], error["text_params"], language)
                assert html.escape(shown["message"]) in page.content.decode()
    finally:
        storages["default"].__dict__.pop("relative_media_root", None)


def test_the_migration_reads_old_import_errors_into_kinds(alpha):
    import importlib

    from django.apps import apps as global_apps

    from crm.customers.models import ImportJob

    migration = importlib.import_module("crm.customers.migrations.0007_import_errors_to_text_kinds")
    old = [{"row": 3, "field": "birthday", "message": "“1985-13-45” is not a date we can read; write it as 1985-03-02."},
           {"row": 4, "field": "phone", "message": "+8613800000000 属于另一位客户：王芳。"},
           {"row": 5, "field": "name", "message": "Enter the customer's name."},
           {"row": 6, "field": "gender", "message": "Something a person wrote"}]
    with tenant_context(alpha):
        job = ImportJob.objects.create(original_name="old.csv", errors=old,
                                       created_by=User.objects.get(email="admin@alpha.test"))
        migration.recognise_errors(global_apps, None)
        job.refresh_from_db()
        kinds = [(e.get("text_kind", ""), e.get("text_params")) for e in job.errors]
    with translation.override("zh-hans"):
        zh_taken = texts.render("import_taken", {"value": "+8613800000000", "name": "王芳"})
    assert kinds[0] == ("import_bad_date", {"value": "1985-13-45"})
    assert kinds[2] == ("import_no_name", {})
    assert kinds[3] == ("", None) and job.errors[3]["message"] == "Something a person wrote"
    # The Chinese rendering is the .po's: the test row above is only right if it matches it.
    assert old[1]["message"] == zh_taken and kinds[1] == ("import_taken", {"value": "+8613800000000", "name": "王芳"})


def test_the_migration_reads_old_timeline_entries_into_kinds(alpha):
    import importlib

    from django.apps import apps as global_apps
    from django.utils.translation import gettext

    migration = importlib.import_module("crm.customers.migrations.0009_contacts_to_text_kinds")
    with translation.override("zh-hans"):  # as the old code wrote them in a Chinese agency
        survey_zh = gettext("Survey answered for “%(trip)s”: satisfaction %(csat)d/5, would recommend "
                            "%(nps)d/10.") % {"trip": "日本 7 日", "csat": 2, "nps": 3} + "\n酒店太吵"
        approver = gettext("the approver")
    rows = [  # (channel, summary the old code wrote, kind and params expected; None: kept as written)
        ("complaint", "已登记投诉（中，酒店）：房间很吵",
         ("complaint_logged", {"severity": "medium", "category": "hotel", "description": "房间很吵"})),
        ("complaint", "Complaint logged (High, Flight): Lost luggage\nand a second line",
         ("complaint_logged", {"severity": "high", "category": "flight",
                               "description": "Lost luggage\nand a second line"})),
        ("complaint", "Complaint “Hotel”: Open → In progress.",
         ("complaint_moved", {"category": "hotel", "from": "open", "to": "in_progress"})),
        ("complaint", "Complaint “Hotel”: Open → Resolved.\nResolution: refunded one night", None),
        ("survey", survey_zh, ("survey_answered", {"trip": "日本 7 日", "csat": 2, "nps": 3, "comment": "酒店太吵"})),
        ("survey", "Survey answered for “Bali”: satisfaction 5/5, would recommend 10/10.",
         ("survey_answered", {"trip": "Bali", "csat": 5, "nps": 10, "comment": ""})),
        ("trip", "Deposit of CNY 1,000.00 recorded for trip T000007 “Kyoto” (Bank transfer).",
         ("payment_recorded", {"kind": "deposit", "amount": "CNY 1,000.00", "ref": "T000007", "title": "Kyoto",
                               "method": "bank"})),
        ("trip", f"Out-of-policy booking “Hilton” for Bob approved by {approver}.",  # decided by a link
         ("approval_decided_note", {"item": "Hilton", "name": "Bob", "status": "approved", "who": "", "comment": ""})),
        ("note", "Called, no answer", None),
        ("note", "Won back: the customer booked “Kyoto”.", ("won_back_note", {"trip": "Kyoto"})),
        ("note", "Win-back: reason for leaving recorded — Price. 嫌贵",
         ("win_back_reason", {"reason": "price", "note": "嫌贵"})),
        ("note", "Win-back case closed: customer lost.", ("win_back_lost", {"note": ""})),
        ("note", "Greeting for 生日: a task for the account manager to get in touch personally.",
         ("greeting_note", {"label": "生日"})),
    ]
    with tenant_context(alpha):
        customer = Customer.objects.create(kind=Customer.Kind.PERSON, name="王芳")
        made = [(Contact.objects.create(customer=customer, channel=channel, direction="none", summary=summary), want)
                for channel, summary, want in rows]
        migration.recognise_contacts(global_apps, None)
        for contact, want in made:
            summary = contact.summary
            contact.refresh_from_db()
            if want is None:
                assert (contact.text_kind, contact.summary) == ("", summary)
            else:
                assert (contact.text_kind, contact.text_params) == want, summary
        with translation.override("zh-hans"):
            for contact, want in made[-4:]:
                assert CJK.search(_without_data(contact.display_summary, contact.text_kind, contact.text_params))
        with translation.override("en"):
            assert made[0][0].display_summary == "Complaint logged (Medium, Hotel): 房间很吵"
            assert made[-3][0].display_summary == "Win-back: reason for leaving recorded — Price. 嫌贵"
            assert made[4][0].display_summary == "Survey answered for “日本 7 日”: satisfaction 2/5, would recommend 3/10.\n酒店太吵"


# --- the console's agency history -------------------------------------------------------------------

def test_agency_events_the_system_writes_read_in_the_operators_language(alpha):
    """'plan=pro admin=…', 'trial extended by 14 days': the console showed the platform's notes as written
    (English, key=value). New events store kind + params; old ones are read back by tenants 0007."""
    import importlib

    from django.apps import apps

    from billing import services as billing
    from tenants.models import AgencyEvent

    migration = importlib.import_module("tenants.migrations.0007_agencyevent_text_data")
    billing.extend_trial(agency=alpha, days=14, actor="ops@caravan.test")
    new = AgencyEvent.objects.unscoped().filter(agency=alpha, text_kind="agency_trial_extended").latest("at")
    old = AgencyEvent.objects.unscoped().create(agency=alpha, kind=AgencyEvent.Kind.SETTINGS_CHANGED, actor="system",
                                                note="credit 12.50 CNY on the next invoice: late delivery")
    typed = AgencyEvent.objects.unscoped().create(agency=alpha, kind=AgencyEvent.Kind.SUSPENDED, actor="ops",
                                                  note="unpaid since May")
    migration.recognise(apps, None)
    old, typed = (AgencyEvent.objects.unscoped().get(pk=event.pk) for event in (old, typed))
    assert (old.text_kind, old.text_params["reason"]) == ("agency_credit", "late delivery")
    assert typed.text_kind == ""
    with translation.override("en"):
        assert new.note_shown == "Trial extended by 14 days"
        assert typed.note_shown == "unpaid since May"
    with translation.override("zh-hans"):
        assert CJK.search(new.note_shown) and "14" in new.note_shown
        assert CJK.search(old.note_shown) and "12.50" in old.note_shown and "late delivery" in old.note_shown


# --- task notes the system writes ----------------------------------------------------------------------

NOTE_SAMPLES = [
    ("tier_change_note", {"spend_12m": "16500.00", "spend_month": "0.00", "trips": 3},
     "Spend in the last 12 months: CNY 16,500.00; last full month: CNY 0.00; trips in the last 12 months: 3.",
     "近 12 个月消费：¥16,500.00；上一整月：¥0.00；近 12 个月出行：3 次。"),
    ("outreach_note", {"days": 30, "last": "2026-11-02"},
     "The service tier asks for a contact every 30 days; last contact: 2 Nov 2026.", None),
    ("outreach_note", {"days": 30, "last": ""},
     "The service tier asks for a contact every 30 days; last contact: never.", None),
    ("sla_note", {"due": "2026-12-06T10:00:00+00:00", "tier": "Gold", "hours": 4}, None, None),
    ("win_back_dormant_note", {"trips": 3, "last": "2025-01-02"},
     "No trip since 2 Jan 2025 after 3 trips. Find out why they left, record the reason, and make them an offer.",
     None),
    ("win_back_declining_note", {"trips": 5, "last": "2025-01-02"}, None, None),
    ("referral_note", {"referred": "Wang Fang"}, None, None),
    ("suggestion_note", {"festival": "national_day", "start": "2026-10-01", "end": "2026-10-07", "last": "Kyoto",
                         "suggested": "Osaka, Nara"},
     "Travelled at National Day last year (Kyoto) and has nothing booked for this year's break (1 Oct 2026 – 7 Oct "
     "2026). Customers who went there also went to: Osaka, Nara.", None),
    ("greeting_both_note", {}, None, None),
    ("greeting_no_mail_note", {}, None, None),
    ("greeting_task_note", {}, None, None),
    ("approval_decided_note", {"item": "Flight PEK-NRT", "name": "Li Lei", "status": "approved", "who": "",
                               "comment": ""},
     "Out-of-policy booking “Flight PEK-NRT” for Li Lei approved by the approver.", None),
    ("complaint_resolved", {"category": "hotel", "from": "in_progress", "to": "resolved", "text": "Moved room",
                            "kind": "refund", "amount": "120.50", "currency": "CNY"},
     "Complaint “Hotel”: In progress → Resolved.\nResolution: Moved room\nCompensation: Refund CNY 120.50", None),
]


@pytest.mark.parametrize("kind,params,english,chinese", NOTE_SAMPLES)
def test_every_system_note_reads_in_english_and_chinese(alpha, kind, params, english, chinese):
    """Each note kind, rendered in both languages (money and days formatted for the reader), and
    read back from its old rendering in either language (the migration's way)."""
    with tenant_context(alpha), timezone.override("Asia/Shanghai"):
        for language, want in (("en", english), ("zh-hans", chinese)):
            with translation.override(language):
                text = texts.render(kind, texts.store(kind, **params)[1])
            assert text, kind
            if want is not None:
                assert text == want
            shown = {k: v for k, v in params.items() if k not in texts.KINDS[kind].types}
            if kind == "outreach_note" and not params["last"]:  # "never" (its zh-Hans in the lead's next .po)
                with translation.override(language):
                    assert text.endswith(pgettext("last contact", "never") + ("." if language == "en" else "。"))
                continue
            assert_in_language(text, kind, shown, language)
            if "\n" not in text:  # the multi-line complaint entry is not read back (old rows keep their text)
                found = texts.recognise(text, [kind])
                assert found and found[0] == kind, text
                with translation.override("en" if language != "en" else "zh-hans"):
                    other = texts.render(*found)
                assert other != text


def test_a_resolved_complaint_and_a_decision_by_link_are_kinds(alpha):
    from crm.care import services as care

    with tenant_context(alpha):
        sales = User.objects.get(email="sales@alpha.test")
        customer = Customer.objects.create(kind=Customer.Kind.PERSON, name="Li Lei", owner=sales)
        complaint = care.complaint_log(actor=None, customer=customer, category="hotel", severity="medium",
                                       description="Noisy", owner=sales)
        care.complaint_set_status(actor=sales, complaint=complaint, status="resolved", resolution="Moved room",
                                  compensation="voucher", compensation_amount="200")
        entry = Contact.objects.filter(customer=customer, text_kind="complaint_resolved").get()
        with translation.override("zh-hans"):
            assert entry.display_summary.splitlines()[1:] == ["处理结果：Moved room",
                                                              "赔偿：代金券 " + formatting.money("200", complaint.currency)]
        with translation.override("en"):
            assert entry.display_summary.endswith("Compensation: Voucher " + f"{complaint.currency} 200.00")


OLD_NOTES = [
    ("tier_change", "Spend in the last 12 months: CNY 16,500.00; last full month: CNY 0.00; trips in the last "
                    "12 months: 3.", "tier_change_note", {"spend_12m": "16500.00", "spend_month": "0.00", "trips": "3"}),
    ("tier_change", "近 12 个月消费：¥1,200.00；上一整月：¥0.00；近 12 个月出行：1 次。", "tier_change_note",
     {"spend_12m": "1200.00", "spend_month": "0.00", "trips": "1"}),
    ("outreach", "The service tier asks for a contact every 30 days; last contact: never.", "outreach_note",
     {"days": "30", "last": ""}),
    ("outreach", "The service tier asks for a contact every 14 days; last contact: 2026-11-02.", "outreach_note",
     {"days": "14", "last": "2026-11-02"}),
    ("greeting", "Greet the customer personally, by phone or message.", "greeting_task_note", {}),
    ("approval", "Out-of-policy booking “Flight” for Li Lei approved by the approver.", "approval_decided_note",
     {"item": "Flight", "name": "Li Lei", "status": "approved", "who": "", "comment": ""}),
]


def test_the_migration_reads_old_english_and_chinese_notes_into_kinds(alpha):
    import importlib

    from django.apps import apps as global_apps

    migration = importlib.import_module("crm.pipeline.migrations.0010_task_notes_to_note_kinds")
    with tenant_context(alpha):
        now = timezone.now()
        made = [(Task.objects.create(title="t", kind=kind, notes=notes, due_at=now), (want, params))
                for kind, notes, want, params in OLD_NOTES]
        typed = Task.objects.create(title="t", kind="outreach", notes="Call her after the holidays", due_at=now)
        migration.recognise_notes(global_apps, None)
        for task, want in made:
            task.refresh_from_db()
            assert (task.note_kind, task.note_params) == want, task.notes
        typed.refresh_from_db()
        assert (typed.note_kind, typed.notes) == ("", "Call her after the holidays")
        with translation.override("en"):
            assert made[1][0].display_notes == ("Spend in the last 12 months: CNY 1,200.00; last full month: CNY 0.00; "
                                                "trips in the last 12 months: 1.")


def test_a_reminder_shows_the_system_notes_in_the_owners_language(alpha, mailbox):
    """Written in an English agency, e-mailed to an owner whose language is Chinese; a task whose
    notes the owner typed over keeps the typed text (the kind is dropped)."""
    from crm.pipeline import services

    now = timezone.now()
    with tenant_context(alpha):
        sales = User.objects.get(email="sales@alpha.test")
        User.objects.filter(pk=sales.pk).update(language="zh-hans")
        sales.refresh_from_db()
        with translation.override("en"):
            task = services.task_create(actor=None, owner=sales, title="Outreach", due_at=now + timedelta(hours=1),
                                        remind_at=now - timedelta(minutes=1),
                                        note=texts.store("outreach_note", days=30, last=""))
        assert task.notes.startswith("The service tier asks for a contact every 30 days")  # the fallback
        assert services.task_reminders_send() == 1
        with translation.override("zh-hans"):
            shown = task.display_notes
        assert CJK.search(shown) and shown != task.notes
        services.task_update(actor=sales, task=task, notes=task.display_notes)  # unchanged: still the system's
        task.refresh_from_db()
        assert task.note_kind == "outreach_note"
        services.task_update(actor=sales, task=task, notes="Called twice")
        task.refresh_from_db()
        assert (task.note_kind, task.note_params, task.display_notes) == ("", {}, "Called twice")
    assert len(mailbox) == 1 and shown in mailbox[0].get_payload(decode=True).decode()
