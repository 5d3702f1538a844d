"""Messages between a customer and the agency in the portal (issue 21): a customer's message lands on the
card's timeline, gives the owner a task and starts the tier's request clock; a staff reply is e-mailed
(real SMTP), shows in the portal, answers the clock and closes the task. Fences: another customer, a fellow
traveler, another agency, no session; staff roles (finance reads, does not answer) and bravo's staff."""
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.utils import translation
from django_tenants.utils import tenant_context

from crm.customers.models import Contact
from crm.pipeline.models import Task
from crm.portal import messaging
from crm.portal.models import Message
from crm.portal.tasks import send_message_email
from crm.tiers.models import ServiceClock
from crm.trips import services as trips
from crm.trips.models import Trip

from .conftest import host, staff
from .portal_helpers import confirmed_trip, forget_limits, person, portal_client, subject_of, text_of
from .tier_factories import tier


pytestmark = pytest.mark.django_db(transaction=False)


def _address(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@example.cn"


@pytest.fixture
def family(alpha):
    """Wang (buys the trip, owned by alpha's sales), Li (travels on it), Zhao (another customer with a trip);
    a default tier promising an answer to requests within 48 hours."""
    sales = staff(alpha, "sales")
    with tenant_context(alpha):
        tier("Standard", request_response_hours=48)
        wang_email = _address("wang")
        wang = person("王芳", wang_email, language="zh-hans")
        li = person("李雷", _address("li"))
        zhao = person("赵敏", _address("zhao"))
        trip = confirmed_trip(wang, title="京都红叶")
        Trip.objects.filter(pk=trip.pk).update(owner=sales)
        trips.traveler_add(actor=None, trip=trip, customer=li)
        other = confirmed_trip(zhao, title="Other trip")
        forget_limits(wang, li, zhao)
    connection.set_schema_to_public()
    return {"wang_email": wang_email, "wang": wang, "li": li, "zhao": zhao, "trip": trip, "other": other, "sales": sales}


def test_a_message_lands_on_the_card_gives_the_owner_a_task_and_starts_the_clock(alpha, family):
    client = portal_client(alpha, family["wang"])
    trip = family["trip"]
    page = client.get(f"/portal/trips/{trip.pk}/")
    assert page.status_code == 200 and 'data-test="portal-messages"' in page.content.decode()
    response = client.post(f"/portal/trips/{trip.pk}/messages/", {"body": "  Can we add a day in Nara?  "})
    assert response.status_code == 302 and response["Location"].endswith(f"/portal/trips/{trip.pk}/#messages")
    with tenant_context(alpha):
        message = Message.objects.get(customer=family["wang"])
        assert (message.trip_id, message.direction, message.body) == (trip.pk, "in", "Can we add a day in Nara?")
        contact = Contact.objects.get(customer=family["wang"], channel=Contact.Channel.PORTAL, direction="in")
        assert contact.summary == "Can we add a day in Nara?" and contact.text_kind == "" and contact.staff_id is None
        task = Task.objects.get(key=f"portal-message:{message.pk}")
        assert task.owner_id == family["sales"].pk and task.trip_id == trip.pk and task.done_at is None
        assert task.text_kind == "portal_message_trip"
        clock = ServiceClock.objects.get(key=f"request:{contact.pk}")
        assert clock.kind == "request" and clock.responded_at is None and clock.target_hours == 48
        assert task.due_at == clock.due_at  # due when the tier promises an answer
        # A second message before the answer: its own clock, no second task.
        messaging.message_from_customer(customer=family["wang"], trip=trip, body="And a tea ceremony?")
        assert Task.objects.filter(key__startswith="portal-message:", trip=trip, done_at__isnull=True).count() == 1
        assert ServiceClock.objects.filter(customer=family["wang"], responded_at__isnull=True).count() == 2
    page = client.get(f"/portal/trips/{trip.pk}/").content.decode()
    assert "Can we add a day in Nara?" in page and "And a tea ceremony?" in page


def test_the_reply_is_emailed_shown_in_the_portal_answers_the_clock_and_closes_the_task(alpha, family, mailbox,
                                                                                        page_client):
    client = portal_client(alpha, family["wang"])
    trip = family["trip"]
    client.post(f"/portal/trips/{trip.pk}/messages/", {"body": "Can we add a day in Nara?"})
    sales = page_client("alpha", "sales")
    box = sales.get(f"/trips/{trip.pk}/portal-messages/")
    assert box.status_code == 200 and "Can we add a day in Nara?" in box.content.decode()
    with tenant_context(alpha):
        assert Message.objects.get(direction="in").read_at is not None  # staff opened the conversation
    response = sales.post(f"/trips/{trip.pk}/portal-messages/reply/",
                          {"customer": family["wang"].pk, "body": "Yes — one night in Nara is 800 CNY."})
    assert response.status_code == 302 and response["Location"] == f"/trips/{trip.pk}/"
    with tenant_context(alpha):
        reply = Message.objects.get(direction="out")
        assert reply.staff_id == family["sales"].pk and reply.emailed_at is None and reply.read_at is None
        assert not ServiceClock.objects.filter(customer=family["wang"], responded_at__isnull=True).exists()
        clock = ServiceClock.objects.get(customer=family["wang"])
        assert clock.responded_by_id == family["sales"].pk
        assert Task.objects.get(key__startswith="portal-message:").done_at is not None
        assert Contact.objects.filter(customer=family["wang"], channel="portal", direction="out",
                                      staff=family["sales"]).exists()
        assert send_message_email.apply(args=[reply.pk]).get() is True  # the worker's code path
        assert send_message_email.apply(args=[reply.pk]).get() is False  # never twice
    [mail] = mailbox
    assert mail["To"] == family["wang_email"]
    body = text_of(mail)
    assert "京都红叶" in subject_of(mail)  # in the customer's language (zh-hans), naming the trip
    assert "Yes — one night in Nara is 800 CNY." in body
    assert f"http://{host('alpha')}/portal/trips/{trip.pk}/" in body or f"/portal/trips/{trip.pk}/" in body
    page = client.get("/portal/").content.decode()
    assert "京都红叶" in page  # the home page's notice of a new reply
    page = client.get(f"/portal/trips/{trip.pk}/").content.decode()
    assert "Yes — one night in Nara is 800 CNY." in page
    with tenant_context(alpha):
        assert Message.objects.get(direction="out").read_at is not None  # the customer read it


def test_limits_length_and_rate(alpha, family):
    client = portal_client(alpha, family["wang"])
    trip = family["trip"]
    assert client.post(f"/portal/trips/{trip.pk}/messages/", {"body": "   "}).status_code == 400
    assert client.post(f"/portal/trips/{trip.pk}/messages/", {"body": "x" * 4001}).status_code == 400
    with tenant_context(alpha):
        for n in range(messaging.PER_HOUR[0]):
            messaging.message_from_customer(customer=family["wang"], trip=None, body=f"message {n}")
        with pytest.raises(Exception) as refused, translation.override("en"):
            messaging.message_from_customer(customer=family["wang"], trip=None, body="one too many")
        assert "many messages" in str(refused.value)


def test_general_messages_page(alpha, family):
    client = portal_client(alpha, family["wang"])
    assert client.get("/portal/messages/").status_code == 200
    response = client.post("/portal/messages/", {"body": "Do you do visas for Japan?"})
    assert response.status_code == 302
    with tenant_context(alpha):
        message = Message.objects.get(customer=family["wang"])
        assert message.trip_id is None
        task = Task.objects.get(key=f"portal-message:{message.pk}")
        assert task.owner_id is None and task.text_kind == "portal_message"  # no account manager set
    assert "Do you do visas for Japan?" in client.get("/portal/messages/").content.decode()


def test_messages_are_per_person_and_fenced(alpha, bravo, family):
    trip, other = family["trip"], family["other"]
    wang = portal_client(alpha, family["wang"])
    wang.post(f"/portal/trips/{trip.pk}/messages/", {"body": "Private note from the buyer"})
    # A fellow traveler sees the trip but not the buyer's conversation; writes in their own.
    li = portal_client(alpha, family["li"])
    page = li.get(f"/portal/trips/{trip.pk}/").content.decode()
    assert "京都红叶" in page and "Private note from the buyer" not in page
    assert li.post(f"/portal/trips/{trip.pk}/messages/", {"body": "From Li"}).status_code == 302
    with tenant_context(alpha):
        assert Message.objects.get(body="From Li").customer_id == family["li"].pk
    # Another customer's trip: 404 for every route with a trip id.
    for path in (f"/portal/trips/{other.pk}/messages/", f"/portal/trips/{other.pk}/survey/",
                 f"/portal/trips/{other.pk}/complaint/"):
        assert wang.post(path, {"body": "x", "category": "hotel", "description": "x"}).status_code == 404
        assert wang.get(path).status_code in (404, 405)
    with tenant_context(alpha):
        assert not Message.objects.filter(trip=other).exists()
    # No session: to the sign-in page; another agency's host: the session is not theirs.
    anonymous = Client(HTTP_HOST=host("alpha"))
    for path in ("/portal/messages/", f"/portal/trips/{trip.pk}/messages/", f"/portal/trips/{trip.pk}/complaint/"):
        response = anonymous.post(path, {"body": "x"})
        assert response.status_code == 302 and response["Location"].startswith("/portal/sign-in/")
    wang.defaults["HTTP_HOST"] = host("bravo")
    response = wang.post(f"/portal/trips/{trip.pk}/messages/", {"body": "x"})
    assert response.status_code in (302, 404)
    assert response.status_code == 404 or response["Location"].startswith("/portal/sign-in/")


def test_staff_roles_and_agencies(alpha, bravo, family, page_client):
    trip, wang = family["trip"], family["wang"]
    with tenant_context(alpha):
        messaging.message_from_customer(customer=wang, trip=trip, body="Hello")
    connection.set_schema_to_public()
    finance = page_client("alpha", "finance")
    assert finance.get(f"/trips/{trip.pk}/portal-messages/").status_code == 200  # reads
    assert finance.get(f"/customers/{wang.pk}/portal-messages/").status_code == 200
    with tenant_context(alpha):
        assert Message.objects.get().read_at is None  # finance reading does not mark it read
    reply = {"customer": wang.pk, "body": "x"}
    assert finance.post(f"/trips/{trip.pk}/portal-messages/reply/", reply).status_code == 403
    assert finance.post(f"/customers/{wang.pk}/portal-messages/reply/", {"body": "x"}).status_code == 403
    # Bravo's admin on alpha's ids, on bravo's host: not found.
    bravo_admin = page_client("bravo", "admin")
    assert bravo_admin.get(f"/trips/{trip.pk}/portal-messages/").status_code == 404
    assert bravo_admin.post(f"/trips/{trip.pk}/portal-messages/reply/", reply).status_code == 404
    assert bravo_admin.post(f"/customers/{wang.pk}/portal-messages/reply/", {"body": "x"}).status_code == 404
    # A service agent answers from the card; a person who is not on the trip cannot be written to on it.
    service = page_client("alpha", "service")
    response = service.post(f"/trips/{trip.pk}/portal-messages/reply/", {"customer": family["zhao"].pk, "body": "x"})
    assert response.status_code == 404
    response = service.post(f"/customers/{wang.pk}/portal-messages/reply/", {"trip": trip.pk, "body": "From the card"})
    assert response.status_code == 302
    card = service.get(f"/customers/{wang.pk}/portal-messages/").content.decode()
    assert "From the card" in card and "Hello" in card
    # Staff may not write to Zhao about Wang's trip from Zhao's card.
    response = service.post(f"/customers/{family['zhao'].pk}/portal-messages/reply/", {"trip": trip.pk, "body": "x"})
    assert response.status_code == 404


def test_the_dashboard_shows_unread_portal_messages_to_who_answers(alpha, family, page_client):
    trip = family["trip"]
    with tenant_context(alpha):
        messaging.message_from_customer(customer=family["wang"], trip=trip, body="Is breakfast included?")
    connection.set_schema_to_public()
    sales, finance = page_client("alpha", "sales"), page_client("alpha", "finance")
    page = sales.get("/").content.decode()
    assert 'data-test="portal-messages-dashboard"' in page and "Is breakfast included?" in page
    assert f"/trips/{trip.pk}/" in page
    assert 'data-test="portal-messages-dashboard"' not in finance.get("/").content.decode()
    sales.get(f"/trips/{trip.pk}/portal-messages/")  # opened: read
    assert 'data-test="portal-messages-dashboard"' not in sales.get("/").content.decode()


def test_staff_write_from_the_card_and_the_customer_reads_it_under_messages(alpha, family, page_client, mailbox):
    service = page_client("alpha", "service")
    card = service.get(f"/customers/{family['wang'].pk}/portal-messages/").content.decode()
    assert 'data-test="customer-portal-write"' in card
    response = service.post(f"/customers/{family['wang'].pk}/portal-messages/reply/", {"body": "Your visa is ready."})
    assert response.status_code == 302
    with tenant_context(alpha):
        message = Message.objects.get(customer=family["wang"])
        assert message.trip_id is None and message.direction == "out"
        assert send_message_email.apply(args=[message.pk]).get() is True
    [mail] = mailbox
    assert "/portal/messages/" in text_of(mail) and "Your visa is ready." in text_of(mail)
    client = portal_client(alpha, family["wang"])
    assert "/portal/messages/" in client.get("/portal/").content.decode()  # a new reply, not about a trip
    assert "Your visa is ready." in client.get("/portal/messages/").content.decode()
    with tenant_context(alpha):
        message.refresh_from_db()
        assert message.read_at is not None
    card = service.get(f"/customers/{family['wang'].pk}/portal-messages/").content.decode()
    assert 'data-test="customer-portal-write"' not in card  # the conversation's own form now
