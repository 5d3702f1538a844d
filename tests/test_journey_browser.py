"""In a real browser, from enquiry to survey: a visitor fills alpha's public enquiry form; a
salesperson takes the lead on the board, prepares the quote, adds a flight, wins the opportunity
(the trip is confirmed); after the trip the after-trip job makes the survey, and the customer
answers it through its signed link.

Chromium drives the gunicorn app server of tests/servers.py, so everything the journey writes is
committed: the ``journey`` fixture removes the customer with their opportunity, trip, tasks and
survey afterwards, and puts back the salesperson's sign-in, alpha's sessions and intake settings.
"""
import re
import uuid
from urllib.parse import urlsplit
from datetime import timedelta

import pytest
from django.core.cache import cache
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS

DESTINATION = "冰岛 Iceland 极光"


@pytest.fixture
def journey(committed):  # noqa: F811
    """The visitor's e-mail; afterwards every row the journey committed at alpha is removed."""
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from crm.care.models import Survey
    from crm.customers.models import Customer, Email
    from crm.pipeline.models import IntakeSettings, Opportunity, Task
    from crm.trips.models import Trip
    from tenants.models import Agency

    email = f"journey-{uuid.uuid4().hex[:8]}@example.test"
    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            sales = User.objects.get(email="sales@alpha.test")
            sessions = set(Session.objects.values_list("session_key", flat=True))
            had_intake = IntakeSettings.objects.exists()
    cache.delete_pattern("*pipeline:enquiry*")
    yield email
    cache.delete_pattern("*pipeline:enquiry*")
    with committed(), tenant_context(agency):
        customers = Customer.objects.filter(pk__in=Email.objects.filter(address=email).values("customer"))
        Survey.objects.filter(customer__in=customers).delete()
        Task.objects.filter(customer__in=customers).delete()
        Trip.objects.filter(customer__in=customers).delete()  # its items and travelers go with it
        Opportunity.objects.filter(customer__in=customers).delete()  # and its stage history
        customers.delete()  # contacts, e-mails and history go with it
        if not had_intake:
            IntakeSettings.objects.all().delete()
        User.objects.filter(pk=sales.pk).update(last_login=sales.last_login)
        Session.objects.exclude(session_key__in=sessions).delete()


def journey_state(committed, email) -> dict:  # noqa: F811
    from crm.care.models import Survey
    from crm.customers.models import Email
    from crm.pipeline.models import Opportunity
    from crm.trips.models import Trip
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        customer = Email.objects.select_related("customer").get(address=email).customer
        opportunity = Opportunity.objects.select_related("stage", "owner").get(customer=customer)
        trip = Trip.objects.filter(opportunity=opportunity).first()
        survey = Survey.objects.filter(trip=trip).first() if trip else None
        return {"customer": customer, "opportunity": opportunity, "trip": trip, "survey": survey,
                "stage": opportunity.stage.kind, "owner": opportunity.owner.email if opportunity.owner else None}


def after_the_trip(committed, trip_id, mailbox) -> str:  # noqa: F811
    """Move the trip into the past, run the hourly after-trip job, send the survey e-mail it queued
    (here, over real SMTP, as the worker would) and return the link in that e-mail."""
    from django.utils import timezone

    from caravan.celery import app
    from crm.care import services as care
    from crm.care.models import Survey
    from crm.trips.models import Trip
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        today = timezone.localdate()
        Trip.objects.filter(pk=trip_id).update(depart_on=today - timedelta(days=10), return_on=today - timedelta(days=3))
        assert care.after_trip_run()["queued"] >= 1
        app.control.purge()  # no worker here: this test sends the e-mail itself, just below
        assert care.surveys_send(survey_ids=[Survey.objects.get(trip_id=trip_id).pk]) == (1, [])
    [message] = mailbox
    return re.search(r"https?://\S+/survey/\S+/", message.get_payload(decode=True).decode()).group(0)


def test_from_enquiry_to_won_trip_to_survey_answer(app_server, journey, committed, mailbox):  # noqa: F811
    from playwright.sync_api import expect

    with chromium_page() as page:
        # A visitor on the agency's web site.
        page.goto(app_server.url("alpha", "/enquiry/"))
        expect(page.locator("nav.nav")).to_have_count(0)
        page.fill("input[name=name]", "陈静")
        page.fill("input[name=email]", journey)
        page.fill("input[name=destination]", DESTINATION)
        page.fill("input[name=depart_on]", "2031-02-10")
        page.fill("input[name=return_on]", "2031-02-17")
        page.fill("input[name=adults]", "2")
        page.fill("textarea[name=message]", "想看极光，两位成人")
        expect(page.locator("input[name=website]")).not_to_be_in_viewport()  # the honeypot, off screen
        page.wait_for_timeout(3500)  # a person takes more than 3 s; a bot that posts at once is dropped
        page.locator("[data-test=enquiry-form] button[type=submit]").click()
        expect(page).to_have_url(app_server.url("alpha", "/enquiry/thanks/"))
        expect(page.locator("[data-test=thanks]")).to_be_visible()

        # A salesperson takes the lead from the board and opens it.
        sign_in(page, app_server, "alpha", "sales")
        page.goto(app_server.url("alpha", "/pipeline/"))
        lead = page.locator("[data-test=leads-waiting] li", has_text=DESTINATION)
        expect(lead).to_contain_text("陈静")
        lead.locator("[data-test=take]").click()
        expect(page.locator(".flash")).to_contain_text("The lead is yours.")
        card = page.locator("[data-test=board] .board-card", has_text=DESTINATION)
        expect(card).to_contain_text("Sales of alpha")
        card.locator("a").first.click()
        expect(page.locator("main h1")).to_contain_text(DESTINATION)
        expect(page.locator("[data-test=owner]")).to_contain_text("Sales of alpha")
        opportunity_url = page.url

        # The quote: a trip in status quote, with a flight at cost and sell price.
        page.locator("[data-test=prepare-quote]").click()
        expect(page.locator("[data-test=status]")).to_have_text("Quote")
        page.locator("#itinerary summary", has_text="Add an item").click()
        page.select_option("#itinerary select[name=kind]", "flight")
        page.fill("#itinerary input[name=description]", "PEK → KEF")
        page.fill("#itinerary input[name=cost]", "7200.00")
        page.fill("#itinerary input[name=sell]", "8800.00")
        page.fill("#itinerary input[name=carrier]", "FI")
        page.fill("#itinerary input[name=number]", "455")
        page.locator("#itinerary button[type=submit]", has_text="Add item").click()
        expect(page.locator("[data-test=itinerary]")).to_contain_text("PEK → KEF")
        expect(page.locator("[data-test=total-sell]")).to_have_text("8,800.00")
        expect(page.locator("[data-test=total-margin]")).to_contain_text("1,600.00")

        # Won: the quote becomes the confirmed trip.
        page.goto(opportunity_url)
        expect(page.locator("[data-test=stage]")).to_have_text("Quoted")
        page.select_option("#move select[name=stage]", label="Won")
        page.locator("[data-test=move]").click()
        expect(page.locator("[data-test=stage]")).to_have_text("Won")
        page.locator("[data-test=opportunity-trip]").click()
        expect(page.locator("[data-test=status]")).to_have_text("Confirmed")

    state = journey_state(committed, journey)
    assert state["stage"] == "won" and state["owner"] == "sales@alpha.test"
    assert state["trip"].status == "confirmed" and state["customer"].name == "陈静"
    survey_link = after_the_trip(committed, state["trip"].pk, mailbox)

    with chromium_page() as page:  # the customer, from the survey e-mail: nobody signed in
        page.goto(app_server.url("alpha", urlsplit(survey_link).path))  # the link's host, on the test server's port
        page.locator("input[name=csat][value='5']").check()
        page.locator("input[name=nps][value='9']").check()
        page.fill("textarea[name=comment]", "极光太美了，谢谢安排！")
        page.locator("main button[type=submit]").click()
        expect(page.locator("[data-test=thanks]")).to_be_visible()

    state = journey_state(committed, journey)
    survey = state["survey"]
    assert survey.answered_at is not None and (survey.csat, survey.nps) == (5, 9)
    assert survey.comment == "极光太美了，谢谢安排！"
    assert state["stage"] == "won" and state["trip"].status == "completed"
