"""Care greetings (R-CARE-3): when birthdays, family dates, festivals and fixed days fall (29 February,
days before, the year's turn), greetings e-mailed once over real SMTP in the customer's language,
consent honoured (no opt-in, unsubscribed, bounced) while the owner's task is still made, the
timeline, occasion validation and safe rendering, the daily gate, failed sends retried, and the
signed unsubscribe link per agency."""
from datetime import date, datetime, timedelta
from email.header import decode_header, make_header
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.campaigns import consent
from crm.loyalty import services
from crm.loyalty.models import Greeting, LoyaltySettings, Occasion
from crm.loyalty.tasks import send_greetings
from crm.customers.models import ChangeLog, Contact, Customer, FamilyDate
from crm.pipeline.models import Task

from .conftest import staff
from .task_checks import assert_made_as_task_create

pytestmark = pytest.mark.django_db
TODAY = date(2027, 3, 10)  # a Wednesday; 2027 is not a leap year


def person(agency, name, *, born=None, email=None, language="en", opt_in=True, owner_role="sales") -> Customer:
    """A customer (inside ``tenant_context``) with a birthday, an e-mail and consent as given."""
    made = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=name, birthday=born,
                                        language=language, emails=[email] if email else [],
                                        owner=staff(agency, owner_role) if owner_role else None)
    if opt_in:
        consent.consent_set(made, opt_in=True)
    return made


def header(message, name: str) -> str:
    return str(make_header(decode_header(message[name])))


def only(kind: str, festival: str = "") -> None:
    """Switch off every occasion but the given one (the defaults include festivals)."""
    Occasion.objects.exclude(kind=kind, festival=festival).update(active=False)


def greeted(customer) -> list[Greeting]:
    return list(Greeting.objects.filter(customer=customer).order_by("occasion_date"))


# --- when occasions fall --------------------------------------------------------------------------

def test_yearly_dates_leap_day_and_windows():
    assert services.anniversary(2, 29, 2027) == date(2027, 2, 28)
    assert services.anniversary(2, 29, 2028) == date(2028, 2, 29)
    assert (date(2027, 2, 28), 2, 29) in services.calendar_matches(date(2027, 2, 27), date(2027, 3, 1))
    assert (date(2028, 2, 28), 2, 29) not in services.calendar_matches(date(2028, 2, 27), date(2028, 3, 1))
    assert (date(2028, 2, 29), 2, 29) in services.calendar_matches(date(2028, 2, 27), date(2028, 3, 1))
    spring = Occasion(kind=Occasion.Kind.FESTIVAL, festival="spring_festival", days_before=3)
    assert services.occasion_dates(spring, date(2026, 2, 13)) == [date(2026, 2, 16)]  # first day off of 2026
    assert services.occasion_dates(spring, date(2026, 2, 12)) == []  # four days ahead: not yet
    assert services.occasion_dates(spring, date(2026, 2, 16)) == [date(2026, 2, 16)]  # on the day
    assert services.occasion_dates(spring, date(2026, 2, 17)) == []  # never after
    new_year = Occasion(kind=Occasion.Kind.CUSTOM, month=1, day=1, days_before=3)
    assert services.occasion_dates(new_year, date(2026, 12, 30)) == [date(2027, 1, 1)]  # across the year's turn
    leap = Occasion(kind=Occasion.Kind.CUSTOM, month=2, day=29, days_before=0)
    assert services.occasion_dates(leap, date(2027, 2, 28)) == [date(2027, 2, 28)]
    assert services.occasion_dates(leap, date(2028, 2, 28)) == []


def test_birthday_days_before_and_29_february(alpha):
    with tenant_context(alpha):
        only(Occasion.Kind.BIRTHDAY)
        Occasion.objects.filter(kind=Occasion.Kind.BIRTHDAY).update(days_before=2)
        leapling = person(alpha, "林闰 Lin Run", born=date(2000, 2, 29), email="lin@example.com")
        march = person(alpha, "March First", born=date(1990, 3, 1), email="march@example.com")
        services.greetings_make(today=date(2027, 2, 26))  # window 26–28 Feb: the leapling's day is the 28th
        assert [g.occasion_date for g in greeted(leapling)] == [date(2027, 2, 28)]
        assert greeted(march) == []
        services.greetings_make(today=date(2028, 2, 26))  # 2028 has a 29 February: not yet in the window
        assert [g.occasion_date for g in greeted(leapling)] == [date(2027, 2, 28)]
        services.greetings_make(today=date(2028, 2, 27))
        assert [g.occasion_date for g in greeted(leapling)] == [date(2027, 2, 28), date(2028, 2, 29)]
        services.greetings_make(today=date(2028, 2, 28))  # still in the window: nothing twice
        assert len(greeted(leapling)) == 2


def test_family_dates_festivals_and_fixed_days(alpha):
    with tenant_context(alpha):
        wed = person(alpha, "周婚 Zhou", email="zhou@example.com")
        FamilyDate.objects.create(customer=wed, label="结婚纪念日 wedding anniversary", date=date(2015, 6, 1))
        FamilyDate.objects.create(customer=wed, label="planned", date=date(2027, 6, 1))  # not an anniversary yet
        other = person(alpha, "Other", email="other@example.com")
        services.occasion_save(actor=staff(alpha, "manager"), name="Family dates", kind=Occasion.Kind.FAMILY_DATE,
                               subject_en="For your {{ occasion }}", body_en="Dear {{ name }}, best wishes.",
                               send_email=True)
        services.greetings_make(today=date(2027, 6, 1))
        rows = greeted(wed)
        assert [(g.label, g.occasion_date) for g in rows] == [("结婚纪念日 wedding anniversary", date(2027, 6, 1))]
        assert greeted(other) == []
        # Mid-Autumn 2026 falls on 25 September: everybody who may be e-mailed is greeted on the day.
        services.greetings_make(today=date(2026, 9, 24))
        assert not Greeting.objects.filter(occasion__festival="mid_autumn").exists()
        services.greetings_make(today=date(2026, 9, 25))
        assert {g.customer for g in Greeting.objects.filter(occasion__festival="mid_autumn")} >= {wed, other}
        assert Greeting.objects.filter(occasion__festival="mid_autumn", customer=wed).get().occasion_date == \
            date(2026, 9, 25)
        women = services.occasion_save(actor=staff(alpha, "manager"), name="妇女节 Women's Day",
                                       kind=Occasion.Kind.CUSTOM, month=3, day=8, days_before=1,
                                       subject_zh="{{ name }}，节日快乐", body_zh="祝您节日快乐！", make_task=False)
        services.greetings_make(today=date(2027, 3, 7))
        assert Greeting.objects.filter(occasion=women, occasion_date=date(2027, 3, 8)).count() == 2


# --- sending --------------------------------------------------------------------------------------

def test_birthday_greetings_go_once_in_the_customers_language(alpha, mailbox):
    with tenant_context(alpha):
        only(Occasion.Kind.BIRTHDAY)
        chinese = person(alpha, "王芳", born=date(1985, 3, 10), email="wangfang@example.com", language="zh-hans")
        english = person(alpha, "Grace Lin", born=date(1990, 3, 10), email="grace@example.com", language="en")
        tomorrow = person(alpha, "Tomorrow", born=date(1990, 3, 11), email="tomorrow@example.com")
        counts = services.greetings_make(today=TODAY)
        assert counts == {"greetings": 2, "tasks": 2}  # birthdays come with a task for the account manager
        assert services.greetings_send() == {"sent": 2, "failed": 0}
        by_to = {m["To"]: m for m in mailbox}
        assert set(by_to) == {"wangfang@example.com", "grace@example.com"}
        zh = by_to["wangfang@example.com"]
        assert header(zh, "Subject") == "王芳，生日快乐！"
        zh_body = zh.get_payload(decode=True).decode()
        assert "亲爱的王芳" in zh_body and alpha.name in zh_body and "/care/stop/" in zh_body
        unsubscribe = "".join(zh["List-Unsubscribe"].split())
        assert unsubscribe.startswith("<http://alpha.") and "/care/stop/" in unsubscribe
        en = by_to["grace@example.com"]
        assert header(en, "Subject") == "Happy birthday, Grace Lin!"
        en_body = en.get_payload(decode=True).decode()
        assert "Dear Grace Lin" in en_body and "Sales of alpha" in en_body  # {{ owner_name }}
        assert header(en, "From").startswith(alpha.name)
        g = Greeting.objects.get(customer=english)
        assert g.channel == Greeting.Channel.BOTH and g.sent_at and g.subject == "Happy birthday, Grace Lin!"
        assert g.task.owner == staff(alpha, "sales") and g.task.kind == Task.Kind.GREETING
        assert g.task.due_at.astimezone(ZoneInfo(alpha.time_zone)).date() == TODAY
        assert_made_as_task_create(g.task)
        assert Contact.objects.filter(customer=chinese, channel=Contact.Channel.EMAIL, summary__contains="wangfang@").exists()
        assert greeted(tomorrow) == []
        # The job runs again (and again): nobody is greeted or mailed twice.
        mailbox.clear()
        assert services.greetings_make(today=TODAY) == {"greetings": 0, "tasks": 0}
        assert services.greetings_send() == {"sent": 0, "failed": 0}
        assert mailbox == [] and Greeting.objects.count() == 2
        assert Task.objects.filter(kind=Task.Kind.GREETING).count() == 2


def test_consent_is_honoured_and_the_owner_task_still_made(alpha, mailbox):
    with tenant_context(alpha):
        only(Occasion.Kind.BIRTHDAY)
        born = date(1980, 3, 10)
        never = person(alpha, "Never opted in", born=born, email="never@example.com", opt_in=False)
        gone = person(alpha, "Unsubscribed", born=born, email="gone@example.com")
        consent.unsubscribe(gone)
        bounced = person(alpha, "Bounced", born=born, email="bounced@example.com")
        consent.bounced(bounced, reason="550 no such user")
        no_address = person(alpha, "No address", born=born)
        orphan = person(alpha, "Nobody's", born=born, email="orphan@example.com", opt_in=False, owner_role=None)
        services.greetings_make(today=TODAY)
        services.greetings_send()
        assert mailbox == []
        for customer in (never, gone, bounced, no_address):
            g = Greeting.objects.get(customer=customer)
            assert g.channel == Greeting.Channel.TASK and g.email == "" and g.task is not None
            assert "cannot be e-mailed" in g.task.notes and g.task.owner == staff(alpha, "sales")
            assert Contact.objects.filter(customer=customer, channel=Contact.Channel.NOTE,
                                          summary__contains="account manager").exists()
        assert greeted(orphan) == []  # no e-mail allowed and nobody to call: nothing to record
        # An e-mail-only occasion: the same customers get nothing at all.
        Occasion.objects.filter(kind=Occasion.Kind.BIRTHDAY).update(make_task=False)
        Greeting.objects.all().delete()
        assert services.greetings_make(today=TODAY)["greetings"] == 0


def test_consent_withdrawn_before_sending_stops_the_email(alpha, mailbox):
    with tenant_context(alpha):
        only(Occasion.Kind.BIRTHDAY)
        late = person(alpha, "Changed mind", born=date(1980, 3, 10), email="late@example.com")
        services.greetings_make(today=TODAY)
        consent.unsubscribe(late)
        assert services.greetings_send() == {"sent": 0, "failed": 0}
        assert mailbox == [] and Greeting.objects.get(customer=late).sent_at is None


def test_a_failed_send_is_retried_and_a_refused_address_bounces(alpha, mailbox, settings):
    with tenant_context(alpha):
        only(Occasion.Kind.BIRTHDAY)
        fine = person(alpha, "Fine", born=date(1980, 3, 10), email="fine@example.com")
        services.greetings_make(today=TODAY)
        good_port = settings.EMAIL_PORT
        settings.EMAIL_PORT = 1  # nothing listens there
        assert services.greetings_send() == {"sent": 0, "failed": 1}
        assert Greeting.objects.get(customer=fine).sent_at is None
        settings.EMAIL_PORT = good_port
        assert services.greetings_send() == {"sent": 1, "failed": 0}
        assert [m["To"] for m in mailbox] == ["fine@example.com"]
        # Two days on, an unsent greeting is given up (a birthday e-mail a week late is worse than none).
        stale = person(alpha, "Stale", born=date(1980, 3, 11), email="stale@example.com")
        services.greetings_make(today=TODAY + timedelta(days=1))
        Greeting.objects.filter(customer=stale).update(created_at=timezone.now() - timedelta(days=3))
        assert services.greetings_send() == {"sent": 0, "failed": 0}


# --- occasions ------------------------------------------------------------------------------------

def test_occasion_field_errors(alpha):
    manager = staff(alpha, "manager")
    with tenant_context(alpha):
        with pytest.raises(ValidationError) as caught:
            services.occasion_save(actor=manager, name="", kind=Occasion.Kind.CUSTOM, month=2, day=30, days_before=61,
                                   subject_en="Hello {{ nmae }}", body_en="", subject_zh="{{ name }}", body_zh="}} {% x %}",
                                   send_email=True)
        assert set(caught.value.message_dict) == {"name", "day", "days_before", "subject_en", "body_en", "body_zh"}
        assert "{{ nmae }}" in caught.value.message_dict["subject_en"][0]
        with pytest.raises(ValidationError) as caught:
            services.occasion_save(actor=manager, name="Second birthday", kind=Occasion.Kind.BIRTHDAY,
                                   subject_en="Hi", body_en="Hi")
        assert set(caught.value.message_dict) == {"kind"}  # the default birthday occasion is active
        with pytest.raises(ValidationError) as caught:
            services.occasion_save(actor=manager, name="No festival", kind=Occasion.Kind.FESTIVAL, make_task=True,
                                   send_email=False)
        assert set(caught.value.message_dict) == {"festival"}
        with pytest.raises(ValidationError) as caught:
            services.occasion_save(actor=manager, name="Nothing", kind=Occasion.Kind.CUSTOM, month=5, day=20,
                                   send_email=False, make_task=False)
        assert set(caught.value.message_dict) == {"send_email"}
        with pytest.raises(ValidationError) as caught:
            services.occasion_save(actor=manager, name="No words", kind=Occasion.Kind.CUSTOM, month=5, day=20)
        assert set(caught.value.message_dict) == {"subject_zh"}
        with pytest.raises(PermissionDenied):
            services.occasion_save(actor=staff(alpha, "sales"), name="x", kind=Occasion.Kind.CUSTOM, month=1, day=1,
                                   subject_en="x", body_en="x")
        made = services.occasion_save(actor=manager, name="闰日 Leap day", kind=Occasion.Kind.CUSTOM, month=2, day=29,
                                      subject_en="Hi {{ name }}", body_en="From {{ agency_name }} and {{ owner_name }}")
        assert (made.month, made.day, made.festival) == (2, 29, "")


def test_texts_are_substituted_never_executed(alpha):
    assert services.render_text("{{ name }}{{name}} {% now 'Y' %} {{ other }}", {"name": "王"}) == "王王 {% now 'Y' %} "
    assert services.text_errors("Hi {{ name }}, {{ occasion }}!") == []
    assert len(services.text_errors("{{ user.password }}")) == 1
    assert len(services.text_errors("{% load x %}")) == 1
    with tenant_context(alpha):
        birthday = Occasion.objects.get(kind=Occasion.Kind.BIRTHDAY)
        subject, body = services.occasion_preview(occasion=birthday, language="zh-hans")
        assert "生日快乐" in subject and "{{" not in body and alpha.name in body


# --- the daily job, the unsubscribe link ----------------------------------------------------------

def test_the_daily_run_waits_for_the_greeting_hour_and_runs_once(alpha, mailbox):
    with tenant_context(alpha):
        only(Occasion.Kind.BIRTHDAY)
        zone = ZoneInfo(alpha.time_zone)
        early = datetime(2027, 3, 10, 7, 30, tzinfo=zone)
        person(alpha, "Birthday girl", born=date(1999, 3, 10), email="bg@example.com")
        assert not services.daily_due(now=early)
        assert services.daily_run(now=early) == {"queued": 0}
        later = early + timedelta(hours=1)
        assert services.daily_due(now=later)
        counts = services.daily_run(now=later)
        assert counts["greetings"]["greetings"] == 1 and counts["queued"] == 1  # a sending batch is queued
        assert LoyaltySettings.load().last_run_on == date(2027, 3, 10)
        ids = list(services.pending_greetings(now=later).values_list("id", flat=True))
        assert send_greetings(ids) == 1  # the batch task: one connection, one e-mail
        assert not services.daily_due(now=later + timedelta(hours=3))
        assert services.daily_run(now=later + timedelta(hours=3)) == {"queued": 0}
        assert len(mailbox) == 1
        # An e-mail still unsent an hour after it was made is queued again by the next check.
        person(alpha, "Late one", born=date(1999, 3, 10), email="late1@example.com")
        services.greetings_make(today=date(2027, 3, 10), now=later + timedelta(hours=1))
        assert services.daily_run(now=later + timedelta(hours=1, minutes=30)) == {"queued": 0}
        assert services.daily_run(now=later + timedelta(hours=2, minutes=5)) == {"queued": 1}


def test_the_job_greets_its_own_agency_only(alpha, bravo, mailbox):
    with tenant_context(bravo):
        only(Occasion.Kind.BIRTHDAY)
        theirs = person(bravo, "Bravo birthday", born=date(1999, 3, 10), email="b-bday@example.com")
    with tenant_context(alpha):
        only(Occasion.Kind.BIRTHDAY)
        person(alpha, "Alpha birthday", born=date(1999, 3, 10), email="a-bday@example.com")
        services.greetings_make(today=TODAY)
        services.greetings_send()
    assert [m["To"] for m in mailbox] == ["a-bday@example.com"]
    with tenant_context(bravo):
        assert greeted(theirs) == []


def test_unsubscribe_link_works_on_its_own_agency_only(alpha, bravo, page_client):
    with tenant_context(alpha):
        customer = person(alpha, "Leaving", email="leaving@example.com")
        token = services.unsubscribe_token(customer)
    assert page_client("bravo").get(f"/care/stop/{token}/").status_code == 404
    assert page_client("bravo").post(f"/care/stop/{token}/").status_code == 404
    assert page_client("alpha").get(f"/care/stop/{token}x/").status_code == 404
    response = page_client("alpha").get(f"/care/stop/{token}/")
    assert response.status_code == 200 and "Leaving" in response.content.decode()
    with tenant_context(alpha):
        assert consent.may_email(customer)
    client = page_client("alpha")
    client.handler.enforce_csrf_checks = True  # mail programs' one-click unsubscribe has no CSRF token
    response = client.post(f"/care/stop/{token}/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    with tenant_context(alpha):
        assert not consent.may_email(customer)
        assert Customer.objects.filter(Q(consent__unsubscribed_at__isnull=False), pk=customer.pk).exists()
