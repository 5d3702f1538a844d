"""caravan.signing: one salt per purpose and agency, none in public; links sent before it still open.

Each "old" token is made here the way the code made it before the module, with django.core.signing
and the salt string written out as it was; it must still open on its agency's host only.
"""
import time

import pytest
from django.core import signing as django_signing
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from caravan import signing
from caravan.tenancy import NoAgencyError
from crm.campaigns import links
from crm.care.models import Survey
from crm.pipeline import intake
from crm.policies import services as policies
from crm.visits import ical

from .care_factories import customer, trip
from .conftest import staff
from .policy_factories import flight_offer, setup_account, trip_with_items, user

pytestmark = pytest.mark.django_db


def test_every_purpose_is_salted_with_the_schema_and_public_refuses(alpha):
    assert all(template.endswith(":{schema}") for template in signing.PURPOSES.values())
    connection.set_schema_to_public()
    for call in (lambda: signing.dumps("care.survey", 1), lambda: signing.loads("care.survey", "x"),
                 lambda: signing.signer("campaigns.open")):
        with pytest.raises(NoAgencyError):
            call()
    with tenant_context(alpha):
        token = signing.dumps("care.survey", 1)
        with pytest.raises(signing.BadSignature):
            signing.loads("policies.approval", token)  # another purpose
        with pytest.raises(KeyError):
            signing.dumps("no.such.purpose", 1)
    with pytest.raises(NoAgencyError):  # a real token too: nothing is read without an agency
        signing.loads("care.survey", token)


def test_a_survey_link_made_the_old_way_opens_on_its_agency_only(alpha, page_client):
    with tenant_context(alpha):
        buyer = customer("王芳", email="guest@example.com")
        survey = Survey.objects.create(trip=trip(buyer, returned_days_ago=1), customer=buyer,
                                       email="guest@example.com", sent_at=timezone.now())
        token = django_signing.dumps(survey.pk, salt=f"care.survey:{alpha.schema_name}")
    assert page_client("alpha").get(f"/survey/{token}/").status_code == 200
    assert page_client("bravo").get(f"/survey/{token}/").status_code == 404


def test_an_approval_link_made_the_old_way_opens_on_its_agency_only(alpha, page_client):
    with tenant_context(alpha):
        account, _boss, traveler, _version = setup_account(alpha)
        _trip, flight, _hotel = trip_with_items(account, traveler, owner=user(alpha, "manager"))
        check = policies.booking_check_record(actor=None, item=flight, traveler=traveler,
                                              offer=flight_offer(cabin="business", fare="4000"))
        token = django_signing.dumps(check.approval.pk, salt=f"policies.approval:{alpha.schema_name}")
    assert page_client("alpha").get(f"/approval/{token}/").status_code == 200
    assert page_client("bravo").get(f"/approval/{token}/").status_code == 404


def test_a_greeting_unsubscribe_link_made_the_old_way_opens_on_its_agency_only(alpha, page_client):
    with tenant_context(alpha):
        leaving = customer("Leaving", email="leaving@example.com")
        token = django_signing.dumps(leaving.pk, salt=f"loyalty.unsubscribe:{alpha.schema_name}")
    response = page_client("alpha").get(f"/care/stop/{token}/")
    assert response.status_code == 200 and "Leaving" in response.content.decode()
    assert page_client("bravo").get(f"/care/stop/{token}/").status_code == 404


@pytest.mark.parametrize("kind, index", [(links.UNSUBSCRIBE, None), (links.OPEN, None), (links.CLICK, 2)])
def test_campaign_links_keep_their_exact_tokens_and_agency(alpha, bravo, kind, index):
    value = "41" if index is None else f"41.{index}"
    old = django_signing.Signer(salt=f"campaigns.{kind}:{alpha.schema_name}").sign(value)
    with tenant_context(alpha):
        assert links.make(kind, 41, index) == old  # the same bytes as before
        assert links.read(kind, old) == (41, index)
        assert links.read(links.OPEN if kind != links.OPEN else links.CLICK, old) is None
    with tenant_context(bravo):
        assert links.read(kind, old) is None


def test_a_calendar_feed_link_made_the_old_way_opens_on_its_agency_only(alpha, page_client):
    seller = staff(alpha, "sales")
    token = django_signing.dumps({"u": seller.pk, "p": ical._digest(seller)},
                                 salt=f"visits.ical:{alpha.schema_name}", compress=True)
    response = page_client("alpha").get(f"/visits/calendar/{token}.ics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    assert page_client("bravo").get(f"/visits/calendar/{token}.ics").status_code == 404


def test_new_tokens_read_with_the_old_salts(alpha):
    """Rolling back a deploy leaves links sent meanwhile working."""
    with tenant_context(alpha):
        for purpose in ("care.survey", "policies.approval", "loyalty.unsubscribe", "visits.ical"):
            assert django_signing.loads(signing.dumps(purpose, 7), salt=f"{purpose}:{alpha.schema_name}") == 7


def test_the_enquiry_stamp_is_per_agency_and_a_stamp_from_before_still_passes(alpha, bravo):
    """Decided: the form's time stamp moves onto the module and becomes per agency. Stamps made
    before (salt without the schema) are read for their one-day life so no enquiry is lost."""
    shown = time.time() - 60
    old = django_signing.dumps(shown, salt="pipeline.enquiry-form")
    with tenant_context(alpha):
        stamp = intake.form_stamp()
        assert intake.form_spam_reason(stamp=old, honeypot="") is None
        assert intake.form_spam_reason(stamp=stamp, honeypot="", now=time.time() + 60) is None
    with tenant_context(bravo):
        assert intake.form_spam_reason(stamp=stamp, honeypot="", now=time.time() + 60) == "stamp"
