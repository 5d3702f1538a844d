"""Signing in to the customer portal: a link by e-mail or its code, single-use, short-lived, rate-limited,
only to an address on the card; the portal's own session; staff invitations (issue 21)."""
import random
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers.models import Contact
from crm.portal.models import SignInLink

from .conftest import host, staff
from .portal_helpers import confirmed_trip, link_and_code, link_for, person, portal_client, subject_of, text_of

pytestmark = pytest.mark.django_db(transaction=False)


def browser(slug: str = "alpha") -> Client:
    """A client from an address of its own: the per-address limits of one test do not reach the next."""
    return Client(HTTP_HOST=host(slug), REMOTE_ADDR=f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}")


@pytest.fixture
def wang(alpha):
    address = f"wang.fang.{uuid.uuid4().hex[:8]}@example.cn"  # the per-address limit is kept in Redis across tests
    with tenant_context(alpha):
        customer = person("王芳", address, language="zh-hans")
        confirmed_trip(customer, title="京都红叶")
    connection.set_schema_to_public()
    customer.email_address = address
    return customer


def _ask(client, email):
    return client.post("/portal/sign-in/", {"email": email})


def test_a_link_by_email_signs_the_customer_in_once(alpha, wang, mailbox):
    client = browser()
    assert client.get("/portal/").status_code == 302  # not signed in: to the sign-in page
    response = _ask(client, wang.email_address.title() + " ")
    assert response.status_code == 302 and response["Location"] == "/portal/sign-in/check/"
    assert len(mailbox) == 1 and mailbox[0]["To"] == wang.email_address
    token, code = link_and_code(mailbox[0])
    assert subject_of(mailbox[0]).endswith(f"：您的登录验证码 {code}")  # in the customer's language
    assert "或在登录页输入此验证码" in text_of(mailbox[0])
    # Opening the link (a mail scanner does) spends nothing; the button does.
    assert client.get(f"/portal/link/{token}/").status_code == 200
    assert client.get(f"/portal/link/{token}/").status_code == 200
    response = client.post(f"/portal/link/{token}/")
    assert response.status_code == 302 and response["Location"] == "/portal/"
    page = client.get("/portal/")
    assert page.status_code == 200 and "京都红叶" in page.content.decode()
    assert "sessionid" not in client.cookies  # the portal's own cookie, never a staff session
    assert client.cookies["caravan_portal"]["path"] == "/portal/"
    # Reused: refused, and another browser gets nothing from it either.
    other = browser()
    assert other.post(f"/portal/link/{token}/").status_code == 410
    assert other.get("/portal/").status_code == 302
    # The code of a spent link is spent too.
    _ask(other, wang.email_address)
    other.post("/portal/sign-in/check/", {"code": code})
    assert other.get("/portal/").status_code == 302


def test_the_code_signs_in_where_the_link_was_asked_for_and_allows_five_tries(alpha, wang, mailbox):
    client = browser()
    _ask(client, wang.email_address)
    _token, code = link_and_code(mailbox[-1])
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        response = client.post("/portal/sign-in/check/", {"code": wrong})
        assert response.status_code == 400 and "not right" in response.content.decode()
    response = client.post("/portal/sign-in/check/", {"code": f"{code[:3]} {code[3:]}"})  # spaces are fine
    assert response.status_code == 302 and client.get("/portal/").status_code == 200

    second = browser()
    _ask(second, wang.email_address)
    _token, code = link_and_code(mailbox[-1])
    for _ in range(5):
        second.post("/portal/sign-in/check/", {"code": wrong})
    response = second.post("/portal/sign-in/check/", {"code": code})  # the right code, too late
    assert response.status_code == 400 and second.get("/portal/").status_code == 302


def test_an_unknown_address_looks_the_same_and_sends_nothing(alpha, wang, mailbox):
    client = browser()
    known, unknown = _ask(client, wang.email_address), _ask(browser(), f"nobody.{uuid.uuid4().hex[:8]}@example.cn")
    assert known.status_code == unknown.status_code == 302 and known["Location"] == unknown["Location"]
    assert len(mailbox) == 1
    assert _ask(browser(), "not an address").status_code == 400


def test_an_address_of_another_agency_signs_in_nowhere(alpha, bravo, wang, mailbox):
    """Bravo's host does not know alpha's customer: no e-mail, and alpha's link is dead on bravo's host."""
    _ask(browser("bravo"), wang.email_address)
    assert mailbox == []
    with tenant_context(alpha):
        token, _code = link_for(wang)
    connection.set_schema_to_public()
    on_bravo = browser("bravo")
    assert on_bravo.get(f"/portal/link/{token}/").status_code == 410
    assert on_bravo.post(f"/portal/link/{token}/").status_code == 410
    assert on_bravo.get("/portal/").status_code == 302
    # A portal cookie from alpha's host means nothing on bravo's.
    signed_in = portal_client(alpha, wang)
    on_bravo.cookies["caravan_portal"] = signed_in.cookies["caravan_portal"].value
    assert on_bravo.get("/portal/").status_code == 302


def test_an_expired_link_is_refused(alpha, wang):
    with tenant_context(alpha):
        token, _code = link_for(wang)
        SignInLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    connection.set_schema_to_public()
    client = browser()
    assert client.get(f"/portal/link/{token}/").status_code == 410
    assert client.post(f"/portal/link/{token}/").status_code == 410


def test_too_many_requests_are_refused_with_retry_after(alpha, wang, mailbox):
    client = browser()
    for _ in range(3):
        assert _ask(client, wang.email_address).status_code == 302
    response = _ask(client, wang.email_address)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert len(mailbox) == 3


def test_the_session_ends_when_the_address_leaves_the_card(alpha, wang):
    client = portal_client(alpha, wang)
    assert client.get("/portal/").status_code == 200
    with tenant_context(alpha):
        wang.emails.update(address="new.address@example.cn")
    connection.set_schema_to_public()
    assert client.get("/portal/").status_code == 302


def test_a_staff_session_is_not_a_portal_session(alpha, wang, page_client):
    client = page_client("alpha", "admin")
    assert client.get("/portal/").status_code == 302
    client.cookies["caravan_portal"] = client.cookies["sessionid"].value  # a staff session key as a portal cookie
    assert client.get("/portal/").status_code == 302


def test_staff_invite_from_the_trip_and_the_link_opens_it(alpha, wang, page_client, mailbox):
    with tenant_context(alpha):
        trip = wang.trips.get()
    connection.set_schema_to_public()
    staff_client = page_client("alpha", "sales")
    box = staff_client.get(f"/trips/{trip.pk}/portal/")
    assert box.status_code == 200 and wang.email_address in box.content.decode()
    response = staff_client.post(f"/trips/{trip.pk}/portal-invite/", {"customer": wang.pk,
                                                                     "email": wang.email_address,
                                                                     "note": "行程已更新"})
    assert response.status_code == 302
    assert len(mailbox) == 1 and "行程已更新" in text_of(mailbox[0])
    token, _code = link_and_code(mailbox[0])
    client = browser()
    response = client.post(f"/portal/link/{token}/")
    assert response["Location"] == f"/portal/trips/{trip.pk}/"
    assert "京都红叶" in client.get(response["Location"]).content.decode()
    with tenant_context(alpha):
        entry = Contact.objects.filter(customer=wang, channel=Contact.Channel.PORTAL).get()
        assert wang.email_address in entry.display_summary
        link = SignInLink.objects.get(purpose=SignInLink.Purpose.INVITATION)
        assert link.sent_by == staff("alpha" and alpha, "sales") and link.used_at is not None


def test_staff_invite_only_to_an_address_on_the_card(alpha, wang, page_client, mailbox):
    response = page_client("alpha", "sales").post(f"/customers/{wang.pk}/portal-invite/",
                                                  {"email": "someone.else@example.cn"})
    assert response.status_code == 302 and mailbox == []
    assert page_client("alpha", "finance").post(f"/customers/{wang.pk}/portal-invite/",
                                                {"email": wang.email_address}).status_code == 403
    # Another agency's staff cannot invite alpha's customer.
    assert page_client("bravo", "admin").post(f"/customers/{wang.pk}/portal-invite/",
                                              {"email": wang.email_address}).status_code == 404
    assert mailbox == []


def test_the_portal_language_switch_is_the_customers_own_change(alpha, wang):
    client = portal_client(alpha, wang)
    client.post("/portal/language/", {"language": "en", "next": "/portal/"})
    assert "My trips" in client.get("/portal/").content.decode()
    with tenant_context(alpha):
        wang.refresh_from_db()
        assert wang.language == "en"


def test_the_demo_traveler_signs_in_and_sees_the_confirmed_trip(alpha, mailbox):
    from crm.portal.demo import seed_portal
    from crm.portal.models import PortalSettings

    counts = seed_portal(alpha)
    assert counts == {"settings": 1, "travelers": 1, "trips": 2}
    assert seed_portal(alpha) == {"settings": 0, "travelers": 0, "trips": 0}  # idempotent
    client = browser()
    _ask(client, "traveler@alpha.test")
    token, _code = link_and_code(mailbox[-1])
    client.post(f"/portal/link/{token}/")
    page = client.get("/portal/").content.decode()
    assert "Hokkaido ski week" in page or "北海道滑雪之旅" in page
    with tenant_context(alpha):
        assert PortalSettings.objects.get().proposal_terms


def test_a_sign_in_links_token_never_reaches_sentry():
    from caravan.observability import scrub_event

    event = scrub_event({"request": {"url": "https://alpha.example.com/portal/link/Zk3_x-9aQ1bC7dE2fG4hJ6kL8mN0pR5sT7uV9wX1yZ3/",
                                     "method": "POST"},
                         "message": "GET /portal/link/Zk3_x-9aQ1bC7dE2fG4hJ6kL8mN0pR5sT7uV9wX1yZ3/?next=/portal/"})
    assert "Zk3_x" not in str(event)
    assert event["request"]["url"] == "https://alpha.example.com/portal/link/[Filtered]/"


def test_the_demo_sends_the_traveler_a_proposal_and_connects_stripe_only_to_localstripe(alpha, mailbox, settings,
                                                                                        stripe_settings):
    from crm.checkout import selectors as checkout
    from crm.checkout.demo import seed_checkout
    from crm.portal.demo import seed_portal
    from crm.proposals.demo import seed_proposals
    from crm.proposals.models import Proposal

    seed_portal(alpha)
    assert seed_proposals(alpha) == {"proposals": 1}
    assert seed_proposals(alpha) == {"proposals": 0}
    assert any(m["To"] == "traveler@alpha.test" for m in mailbox)
    assert seed_checkout(alpha) == {"accounts": 1} and seed_checkout(alpha) == {"accounts": 0}
    with tenant_context(alpha):
        assert Proposal.objects.filter(trip__customer__emails__address="traveler@alpha.test").count() == 1
        assert checkout.account().methods == ["card"]
        checkout.account().delete()
    settings.STRIPE_API_BASE = ""  # a real Stripe: the demo connects nothing
    assert seed_checkout(alpha) == {"accounts": 0}


def test_a_customers_dead_links_go_when_a_new_one_is_made(alpha, wang):
    with tenant_context(alpha):
        link_for(wang)
        SignInLink.objects.update(expires_at=timezone.now() - timedelta(days=2))
        link_for(wang)
        assert SignInLink.objects.filter(customer=wang).count() == 1
        assert SignInLink.objects.get(customer=wang).live
