"""Fence tests generated from the portal's URL map (issue 21): every route under ``/portal/`` whose view is a
``frontend.portal.base.PortalPage`` is tried

- without a portal session → the sign-in page (nothing of the page is answered);
- on the platform domain → 404;
- signed in as Ann with **Bob's** ids (another customer of the same agency: his trip, his proposal, his
  payment, his document, his message) → 404, and with **Ann's own** ids → not 404 (so the 404 comes from
  the fence, not from a wrong URL);
- signed in as Ann with the ids of a customer of **another agency** → 404;
- with Ann's portal cookie on the other agency's host → the sign-in page.

Ids come from the URL kwargs: ``pk`` under ``trips/`` and ``trip`` name a trip; ``proposal``, ``payment``,
``document``, ``message`` name that area's record, made for a trip by ``MAKERS`` through the area's own
services. A portal route with any other kwarg fails here until a maker is added. Each route is asked with its
view's first method of GET, POST (a POST with an empty form: the answer must come before any write).
Sign-in routes (``frontend.public``) are tried in ``tests/test_portal_signin.py``; expired and reused links too.
"""
import re
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.urls import get_resolver
from django_tenants.utils import tenant_context

from frontend.portal.base import PortalPage
from frontend.public import reason

from .conftest import host
from .portal_helpers import confirmed_trip, person, portal_client
from .test_fences import _walk

pytestmark = pytest.mark.django_db

ROUTES = [r for r in _walk(get_resolver("caravan.urls_tenant")) if r.name.startswith("portal:")]
PORTAL = [r for r in ROUTES if r.cls is not None and issubclass(r.cls, PortalPage)]
TRIP_KWARGS = ("trip",)


def _method(route) -> str:
    return next(m for m in ("get", "post") if hasattr(route.cls, m))


def _is_trip(route, kwarg: str) -> bool:
    return kwarg in TRIP_KWARGS or (kwarg == "pk" and "trips/" in route.pattern)


# --- records of each kind, made for a trip through the area's services ------------------------------------

def _message(trip, customer):
    from crm.portal.models import Message

    try:
        from crm.portal import messaging
    except ImportError:
        return Message.objects.create(customer=customer, trip=trip, direction=Message.Direction.FROM_CUSTOMER,
                                      body="你好").pk
    return messaging.message_from_customer(customer=customer, trip=trip, body="你好 hello").pk


def _proposal(trip, customer):
    # A confirmed trip gets no new proposal (proposal_send refuses): its sent version, as proposal_send stores it.
    from crm.proposals import services
    from crm.proposals.models import Proposal

    snapshot = services.snapshot_of(trip, included="早餐", excluded="", terms="条款")
    return Proposal.objects.create(trip=trip, version=1, snapshot=snapshot, content_hash=services.content_hash(snapshot)).pk


def _payment(trip, customer):
    # An online payment waiting for Stripe (no account connected: the page asks Stripe nothing).
    from crm.checkout.models import OnlinePayment

    return OnlinePayment.objects.create(trip=trip, kind="deposit", amount="900.00", currency=trip.currency,
                                        intent_id=f"pi_fence_{uuid.uuid4().hex[:12]}", customer=customer).pk


def _document(trip, customer):
    # A scan the customer uploaded for the trip (crm.documents; a JPEG's first bytes are enough to pass the sniffing).
    from crm.documents.services import file_upload

    return file_upload(uploader=customer, person=customer, kind="photo", data=b"\xff\xd8\xff\xe0fence", trip=trip).pk


MAKERS = {"message": _message, "proposal": _proposal, "payment": _payment, "document": _document}


def _survey(trip, customer):
    """The trip's satisfaction survey, as ``care.after_trip`` makes it for a returned trip."""
    from crm.care.models import Survey

    Survey.objects.get_or_create(trip=trip, defaults={"customer": customer, "email": customer.emails.first().address})


# Pages about something a trip has only at some point of its life: made for every trip the route is tried with.
ROUTE_SETUP = {"portal:survey": _survey}


def _ids(route, trip, customer) -> dict:
    if route.name in ROUTE_SETUP:
        ROUTE_SETUP[route.name](trip, customer)
    values = {}
    for kwarg in route.kwargs:
        if _is_trip(route, kwarg):
            values[kwarg] = trip.pk
        elif kwarg in MAKERS:
            values[kwarg] = MAKERS[kwarg](trip, customer)
        elif kwarg == "kind":  # a payment's kind: deposit or balance
            values[kwarg] = "deposit"
        else:
            pytest.fail(f"{route.pattern}: no maker for the URL kwarg {kwarg!r}: add one to MAKERS in "
                        f"tests/test_portal_fences.py (and name the kwarg after what it identifies)")
    return values


def _ids_apart() -> None:
    """Bravo's ids start far above alpha's, so an id of bravo's is never one of alpha's own records too
    (then a 404 could only come from the fence). Sequences are not rolled back: later ids just grow."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = current_schema()")
        for (name,) in cursor.fetchall():
            cursor.execute(f'SELECT setval(%s, greatest(500000, (SELECT last_value FROM "{name}")))', [name])


@pytest.fixture
def people(alpha, bravo):
    tag = uuid.uuid4().hex[:6]
    with tenant_context(alpha):
        ann = person("安娜 Ann", f"ann.{tag}@example.cn")
        bob = person("鲍勃 Bob", f"bob.{tag}@example.cn")
        ann_trip, bob_trip = confirmed_trip(ann, title="Ann's trip"), confirmed_trip(bob, title="Bob's trip")
    with tenant_context(bravo):
        _ids_apart()
        carl = person("卡尔 Carl", f"carl.{tag}@example.cn")
        carl_trip = confirmed_trip(carl, title="Carl's trip")
    connection.set_schema_to_public()
    return {"ann": ann, "bob": bob, "carl": carl, "ann_trip": ann_trip, "bob_trip": bob_trip, "carl_trip": carl_trip}


def _ask(client, route, values):
    return getattr(client, _method(route))(route.url(**values))


def test_every_portal_route_is_a_portal_page_or_a_sign_in_route():
    loose = [f"{r.pattern} ({r.name})" for r in ROUTES
             if not (r.cls is not None and issubclass(r.cls, PortalPage)) and not reason(r.name)]
    assert not loose, "Portal routes neither a PortalPage nor on frontend.public.PUBLIC_ROUTES:\n  " + "\n  ".join(loose)
    assert {"portal:home", "portal:trip"} <= {r.name for r in PORTAL}


@pytest.mark.parametrize("route", PORTAL, ids=[r.name for r in PORTAL])
def test_a_portal_route_refuses_everyone_but_the_customer_it_belongs_to(route, alpha, bravo, people):
    with tenant_context(alpha):
        own = _ids(route, people["ann_trip"], people["ann"])
        bobs = _ids(route, people["bob_trip"], people["bob"])
    with tenant_context(bravo):
        carls = _ids(route, people["carl_trip"], people["carl"])
    connection.set_schema_to_public()

    anonymous = _ask(Client(HTTP_HOST=host("alpha")), route, own)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/portal/sign-in/"), route.pattern
    assert _ask(Client(HTTP_HOST=host(None)), route, own).status_code == 404

    ann = portal_client(alpha, people["ann"])
    mine = _ask(ann, route, own)
    assert mine.status_code != 404 and mine.status_code < 500, (route.pattern, mine.status_code)
    if route.kwargs:
        assert _ask(ann, route, bobs).status_code == 404, f"{route.pattern}: Ann reached Bob's {bobs}"
        assert _ask(ann, route, carls).status_code == 404, f"{route.pattern}: Ann reached bravo's {carls}"

    elsewhere = Client(HTTP_HOST=host("bravo"))
    elsewhere.cookies["caravan_portal"] = ann.cookies["caravan_portal"].value
    refused = _ask(elsewhere, route, carls)
    assert refused.status_code == 302 and refused["Location"].startswith("/portal/sign-in/"), route.pattern


def test_a_booker_sees_the_accounts_trips_and_a_fellow_traveler_not_the_buyers_people(alpha):
    """The visibility rule itself (crm.portal.selectors): a booker sees the corporate account's trips; a
    traveler on someone else's trip sees the trip but does not act for its other travelers."""
    from crm.portal import selectors
    from crm.trips import services as trips

    from .portal_helpers import booker_of, company

    tag = uuid.uuid4().hex[:6]
    with tenant_context(alpha):
        acme = company("Acme 株式会社")
        booker, guest, stranger = (person("订票员 Booker", f"booker.{tag}@example.cn"),
                                   person("同行 Guest", f"guest.{tag}@example.cn"),
                                   person("路人 Stranger", f"stranger.{tag}@example.cn"))
        booker_of(acme, booker)
        account_trip = confirmed_trip(acme, title="Acme offsite")
        buyer = person("买家 Buyer", f"buyer.{tag}@example.cn")
        family_trip = confirmed_trip(buyer, title="Family trip")
        trips.traveler_add(actor=None, trip=family_trip, customer=guest)
        assert set(selectors.visible_trips(booker)) == {account_trip}
        assert set(selectors.visible_trips(guest)) == {family_trip}
        assert set(selectors.visible_trips(stranger)) == set()
        assert set(selectors.visible_people(buyer)) == {buyer, guest}
        assert set(selectors.visible_people(guest)) == {guest}
