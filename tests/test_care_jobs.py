"""After the trip (R-CARE-1): the hourly job, the survey e-mail and its signed link, the answers."""
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django_tenants.utils import tenant_context

from crm.care import selectors, services, tasks
from crm.care.models import Survey
from crm.customers.models import Contact, Customer
from crm.pipeline.models import Task
from crm.trips.models import Trip

from .care_factories import agency_today, customer, trip, user
from .task_checks import assert_made_as_task_create

pytestmark = pytest.mark.django_db
LINK = re.compile(r"https?://([^/\s]+)(/survey/[^/\s]+/)")


@pytest.fixture
def inline_worker(monkeypatch):
    """The queued survey batches run right here (the worker's code path), and are recorded."""
    queued = []

    def delay(survey_ids):
        queued.append(list(survey_ids))
        return tasks.send_surveys.run(survey_ids)

    monkeypatch.setattr(tasks.send_surveys, "delay", delay)
    return queued


def _returned_trips(agency):
    """Trips in every situation the job must tell apart; returns (expected to follow up, the rest)."""
    today = agency_today(agency)
    sales = user(agency, "sales")
    wang = customer("王芳", email="wang@example.cn", language="zh-hans")
    smith = customer("Ann Smith", email="ann@example.com", language="en")
    acme = customer("ACME Ltd.", email="travel@acme.example", kind=Customer.Kind.COMPANY)
    lead = customer("李雷", email="lilei@example.cn", language="zh-hans")
    silent = customer("No E-mail")
    due = [
        trip(wang, returned_days_ago=1, owner=sales, today=today),
        trip(smith, returned_days_ago=6, status=Trip.Status.COMPLETED, owner=sales, today=today),
        trip(acme, returned_days_ago=2, owner=sales, lead=lead, today=today),  # the lead traveler gets it
        trip(silent, returned_days_ago=1, owner=sales, today=today),  # a task, but nobody to e-mail
    ]
    others = [
        trip(wang, returned_days_ago=0, owner=sales, today=today),  # back today: tomorrow
        trip(wang, returned_days_ago=-3, owner=sales, today=today),  # not back yet
        trip(smith, returned_days_ago=3, status=Trip.Status.CANCELLED, owner=sales, today=today),
        trip(smith, returned_days_ago=3, status=Trip.Status.QUOTE, owner=sales, today=today),
    ]
    return today, due, others


def test_after_trip_job_makes_one_task_survey_and_email_per_returned_trip(alpha, mailbox, inline_worker):
    with tenant_context(alpha):
        today, due, others = _returned_trips(alpha)
        result = tasks.after_trip.run()

        assert result["followed_up"] == 4 and result["tasks"] == 4 and result["surveys"] == 3
        calls = Task.objects.filter(kind=Task.Kind.AFTER_TRIP_CALL)
        assert sorted(calls.values_list("trip_id", flat=True)) == sorted(t.pk for t in due)
        call = calls.get(trip=due[0])
        assert call.owner == user(alpha, "sales") and call.key == f"after-trip:{due[0].pk}"
        assert call.customer_id == due[0].customer_id and call.due_at.date() in (today, today - timedelta(days=1))
        assert_made_as_task_create(call)
        assert not Task.objects.filter(trip__in=others).exists()
        surveys = {s.trip_id: s for s in Survey.objects.all()}
        assert set(surveys) == {t.pk for t in due[:3]}
        assert surveys[due[2].pk].email == "lilei@example.cn"  # company buyer → lead traveler
        assert surveys[due[2].pk].customer.name == "李雷"
        assert all(s.sent_at for s in surveys.values())
        assert not Trip.objects.filter(pk__in=[t.pk for t in due], followed_up_at__isnull=True).exists()
        assert not Trip.objects.filter(pk__in=[t.pk for t in others], followed_up_at__isnull=False).exists()
        # Sending put an entry on each customer's timeline.
        assert Contact.objects.filter(channel=Contact.Channel.SURVEY, customer__name="王芳").count() == 1

    assert sorted(m["To"] for m in mailbox) == ["ann@example.com", "lilei@example.cn", "wang@example.cn"]
    assert all(LINK.search(m.get_payload(decode=True).decode()) for m in mailbox)

    # The second run (or an overlapping one) creates and sends nothing.
    with tenant_context(alpha):
        again = tasks.after_trip.run()
        assert again == {"completed": 0, "followed_up": 0, "tasks": 0, "surveys": 0, "queued": 0}
        assert Task.objects.filter(kind=Task.Kind.AFTER_TRIP_CALL).count() == 4
        assert Survey.objects.count() == 3
        # A duplicated send message sends nothing either: the claim is taken.
        assert tasks.send_surveys.run([s.pk for s in Survey.objects.all()]) == 0
    assert len(mailbox) == 3


def test_an_after_trip_call_made_by_hand_first_is_kept_by_the_job(alpha, inline_worker, mailbox):
    """The job's set-based insert and task_create share the key: whichever came first stays."""
    from crm.pipeline.services import task_create

    with tenant_context(alpha):
        today = agency_today(alpha)
        back = trip(customer("Early", email="early@example.com"), returned_days_ago=1, today=today)
        first = task_create(actor=user(alpha, "service"), title="Called already", owner=user(alpha, "service"),
                            due_at=timezone.now(), kind=Task.Kind.AFTER_TRIP_CALL, customer=back.customer, trip=back,
                            key=f"after-trip:{back.pk}")
        result = services.after_trip_run(today=today)
        assert result["followed_up"] == 1 and result["tasks"] == 0
        [kept] = Task.objects.filter(trip=back)
        assert (kept.pk, kept.title, kept.created_by) == (first.pk, "Called already", user(alpha, "service"))


def test_job_uses_the_agencys_local_date(alpha, inline_worker, mailbox):
    with tenant_context(alpha):
        today = agency_today(alpha)
        back = trip(customer("Late", email="late@example.com"), returned_days_ago=1, today=today)
        assert services.after_trip_run(today=today - timedelta(days=1))["followed_up"] == 0
        assert services.after_trip_run(today=today)["followed_up"] == 1
        assert Task.objects.filter(key=f"after-trip:{back.pk}").exists()


def test_completes_returned_trips_through_the_trips_service_when_there(alpha, inline_worker, monkeypatch, mailbox):
    from crm.trips import services as trips_services

    seen = []
    monkeypatch.setattr(trips_services, "trips_complete_returned", lambda *, today: seen.append(today) or 7,
                        raising=False)
    with tenant_context(alpha):
        assert services.after_trip_run()["completed"] == 7
    assert seen == [agency_today(alpha)]


def test_smtp_down_leaves_the_survey_unsent_for_the_retry(alpha, settings, mailbox):
    smtp_port = settings.EMAIL_PORT
    with tenant_context(alpha):
        back = trip(customer("Ann", email="ann2@example.com"), returned_days_ago=1)
        survey = Survey.objects.create(trip=back, customer=back.customer, email="ann2@example.com")
        settings.EMAIL_PORT = 1  # nothing listens there
        assert services.surveys_send(survey_ids=[survey.pk]) == (0, [survey.pk])
        with pytest.raises(OSError):
            services.survey_send(survey_id=survey.pk)
        survey.refresh_from_db()
        assert survey.sent_at is None
        # The mail server is back: the retry sends it, once, even if the message came twice.
        settings.EMAIL_PORT = smtp_port
        assert services.surveys_send(survey_ids=[survey.pk, survey.pk]) == (1, [])
        survey.refresh_from_db()
        assert survey.sent_at is not None
    assert len(mailbox) == 1


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_survey_email_is_rendered_in_the_customers_language(alpha, mailbox, monkeypatch, language):
    rendered = []
    real_render = services.render_to_string

    def spy(template, context):
        rendered.append((template, translation.get_language()))
        return real_render(template, context)

    monkeypatch.setattr(services, "render_to_string", spy)
    with tenant_context(alpha):
        buyer = customer("王芳" if language == "zh-hans" else "Ann", email=f"{language}@example.com", language=language)
        back = trip(buyer, returned_days_ago=2)
        survey = Survey.objects.create(trip=back, customer=buyer, email=buyer.emails.get().address)
        with translation.override("en" if language == "zh-hans" else "zh-hans"):  # whoever runs it
            assert services.survey_send(survey_id=survey.pk) is True
    assert {lang for _template, lang in rendered} == {language}
    assert len(mailbox) == 1 and mailbox[0]["To"] == f"{language}@example.com"
    body = mailbox[0].get_payload(decode=True).decode()
    assert back.title in body and LINK.search(body).group(1).startswith("alpha.localhost")


# --- the signed link and the public page ----------------------------------------------------------

def _sent_survey(agency, *, owner_role="sales", email="guest@example.com"):
    with tenant_context(agency):
        buyer = customer("王芳", email=email, language="zh-hans")
        back = trip(buyer, returned_days_ago=1, owner=user(agency, owner_role))
        survey = Survey.objects.create(trip=back, customer=buyer, email=email, sent_at=timezone.now())
        path = LINK.search(services.survey_url(survey)).group(2)
    connection.set_schema_to_public()
    return survey, path


def test_the_signed_link_opens_the_survey_and_the_answer_lands_everywhere(alpha, page_client):
    survey, path = _sent_survey(alpha)
    visitor = page_client(None, on="alpha.localhost")
    page = visitor.get(path)
    assert page.status_code == 200 and survey.trip.title in page.content.decode()
    response = visitor.post(path, {"csat": "5", "nps": "10", "comment": "导游很好 great guide"})
    assert response.status_code == 200 and b'data-test="thanks"' in response.content
    with tenant_context(alpha):
        survey.refresh_from_db()
        assert (survey.csat, survey.nps, survey.comment) == (5, 10, "导游很好 great guide")
        entry = Contact.objects.get(customer=survey.customer, channel=Contact.Channel.SURVEY)
        assert entry.direction == Contact.Direction.INBOUND and entry.staff is None and "5/5" in entry.summary
        assert not Task.objects.filter(key=f"low-score:{survey.pk}").exists()  # a happy customer
    with tenant_context(alpha):
        slot = render_to_string("frontend/care/_card.html", {
            "customer": survey.customer, **selectors.card_context(customer=survey.customer, user=user(alpha, "sales"))})
    assert 'data-test="survey-answers"' in slot and "导游很好" in slot
    report = page_client("alpha", "service").get("/care/surveys/")
    assert report.status_code == 200 and "导游很好".encode() in report.content


def test_the_customer_card_shows_survey_answers_and_open_complaints(alpha, page_client):
    survey, path = _sent_survey(alpha)
    page_client(None, on="alpha.localhost").post(path, {"csat": "3", "nps": "7", "comment": "还行 so-so"})
    with tenant_context(alpha):
        services.complaint_log(actor=None, customer=survey.customer, category="hotel", severity="high",
                               description="Noisy room", trip=survey.trip)
    card = page_client("alpha", "finance").get(f"/customers/{survey.customer_id}/")
    assert card.status_code == 200
    assert b'data-test="survey-answers"' in card.content and "还行 so-so".encode() in card.content
    assert b'data-test="open-complaints"' in card.content
    assert b"/complaints/new/" not in card.content  # finance sees them, cannot log or handle them


def test_answering_twice_is_refused_politely(alpha, page_client):
    survey, path = _sent_survey(alpha)
    visitor = page_client(None, on="alpha.localhost")
    assert visitor.post(path, {"csat": "4", "nps": "8"}).status_code == 200
    again = visitor.post(path, {"csat": "1", "nps": "0", "comment": "changed my mind"})
    assert again.status_code == 409 and b'data-test="already"' in again.content
    assert b'data-test="already"' in visitor.get(path).content
    with tenant_context(alpha):
        survey.refresh_from_db()
        assert (survey.csat, survey.nps, survey.comment) == (4, 8, "")
        assert Contact.objects.filter(customer=survey.customer, channel=Contact.Channel.SURVEY).count() == 1


@pytest.mark.parametrize("data, bad", [
    ({"csat": "0", "nps": "5"}, {"csat"}),
    ({"csat": "6", "nps": "11"}, {"csat", "nps"}),
    ({"csat": "3", "nps": "-1"}, {"nps"}),
    ({"csat": "", "nps": "abc"}, {"csat", "nps"}),
], ids=["csat-0", "both-high", "nps-negative", "missing-and-text"])
def test_out_of_range_scores_are_field_errors_and_nothing_is_written(alpha, page_client, data, bad):
    survey, path = _sent_survey(alpha)
    response = page_client(None, on="alpha.localhost").post(path, data)
    assert response.status_code == 400
    for field in bad:
        assert f'data-field="{field}"'.encode() in response.content
    with tenant_context(alpha):
        survey.refresh_from_db()
        assert survey.answered_at is None and survey.csat is None
        assert not Contact.objects.filter(customer=survey.customer).exclude(channel="note").exists()


def test_the_service_refuses_out_of_range_scores_too(alpha):
    survey, _path = _sent_survey(alpha)
    with tenant_context(alpha):
        with pytest.raises(services.ValidationError) as error:
            services.survey_answer(survey=survey, csat=9, nps=True)
        assert set(error.value.message_dict) == {"csat", "nps"}


def test_tampered_and_expired_links_are_refused_and_nothing_is_written(alpha, page_client, monkeypatch):
    survey, path = _sent_survey(alpha)
    visitor = page_client(None, on="alpha.localhost")
    token = path.split("/")[2]
    tampered = [f"/survey/{token[:-3]}abc/", f"/survey/{token.replace(token[0], 'Z', 1)}/", "/survey/nonsense/"]
    for bad in tampered:
        assert visitor.get(bad).status_code == 404
        response = visitor.post(bad, {"csat": "1", "nps": "0"})
        assert response.status_code == 404 and b'data-test="invalid-link"' in response.content
    monkeypatch.setattr(services, "SURVEY_MAX_AGE", timedelta(seconds=-1))
    assert visitor.post(path, {"csat": "1", "nps": "0"}).status_code == 404
    with tenant_context(alpha):
        survey.refresh_from_db()
        assert survey.answered_at is None


def test_a_link_of_bravo_is_refused_on_alphas_host(alpha, bravo, page_client):
    alpha_survey, _alpha_path = _sent_survey(alpha, email="same@example.com")
    bravo_survey, bravo_path = _sent_survey(bravo, email="same@example.com")
    assert alpha_survey.pk == bravo_survey.pk or True  # same numbers or not, the salt differs
    response = page_client(None, on="alpha.localhost").post(bravo_path, {"csat": "1", "nps": "0"})
    assert response.status_code == 404
    assert page_client(None, on="localhost").get(bravo_path).status_code == 404  # not on the platform domain
    for agency, survey in ((alpha, alpha_survey), (bravo, bravo_survey)):
        with tenant_context(agency):
            survey.refresh_from_db()
            assert survey.answered_at is None
    # On its own host it works.
    assert page_client(None, on="bravo.localhost").post(bravo_path, {"csat": "5", "nps": "9"}).status_code == 200


def test_a_low_score_gives_the_trip_owner_a_task(alpha, page_client):
    survey, path = _sent_survey(alpha, owner_role="service")
    page_client(None, on="alpha.localhost").post(path, {"csat": "2", "nps": "9", "comment": "hotel was dirty"})
    with tenant_context(alpha):
        task = Task.objects.get(key=f"low-score:{survey.pk}")
        assert task.owner == user(alpha, "service") and task.trip_id == survey.trip_id
        assert task.customer_id == survey.customer_id
    report = page_client("alpha", "manager").get("/care/surveys/")
    assert f"/customers/{survey.customer_id}/complaints/new/?survey={survey.pk}".encode() in report.content
