"""Helpers for the customer portal's tests: people, trips, and a client signed in to the portal the way a
customer signs in (a link spent through the link page's button)."""
import re
import time
from datetime import date, timedelta
from email.header import decode_header, make_header

from django.core.cache import cache
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from crm.customers.models import ChangeLog, Customer
from crm.customers.services import customer_create, employment_set
from crm.portal import services as portal_services
from crm.portal.models import SignInLink
from crm.trips import services as trips
from crm.trips.models import Trip

from .conftest import host


def person(name: str, email: str, *, language: str = "en", **fields) -> Customer:
    """A person with an e-mail address (call inside the agency's tenant_context)."""
    return customer_create(actor=None, via=ChangeLog.Via.PAGE, name=name, emails=[email], language=language, **fields)


def company(name: str) -> Customer:
    return customer_create(actor=None, via=ChangeLog.Via.PAGE, name=name, kind=Customer.Kind.COMPANY)


def booker_of(company_row: Customer, person_row: Customer):
    return employment_set(actor=None, company=company_row, person=person_row, is_booker=True, is_traveler=False)


def confirmed_trip(customer: Customer, *, title: str = "Kyoto in autumn", days_ahead: int = 60, items: int = 2,
                   status: str = Trip.Status.CONFIRMED) -> Trip:
    """A trip with items (quote or confirmed) for ``customer``, starting ``days_ahead`` from today."""
    depart = date.today() + timedelta(days=days_ahead)
    trip = trips.trip_create(actor=None, customer=customer, title=title, destination="Kyoto 京都",
                             depart_on=depart, return_on=depart + timedelta(days=6))
    for n in range(items):
        trips.item_add(actor=None, trip=trip, kind="hotel", description=f"Hotel night block {n + 1}",
                       starts_on=depart, ends_on=depart + timedelta(days=2), cost="1000.00", sell="1500.00")
    if status == Trip.Status.CONFIRMED:
        trip = trips.trip_confirm(actor=None, trip=trip)
    return trip


def link_for(customer: Customer, *, purpose: str = SignInLink.Purpose.REQUEST, next_path: str = "") -> tuple[str, str]:
    """A fresh link's token and code for ``customer`` (inside tenant_context), as the e-mail would carry them."""
    link, token, code = portal_services._make_link(customer, customer.emails.first().address, purpose,
                                                   next_path=next_path)
    return token, code


def portal_client(agency, customer: Customer) -> Client:
    """A client on ``agency``'s host signed in to the portal as ``customer``, through the link page."""
    with tenant_context(agency):
        token, _code = link_for(customer)
    connection.set_schema_to_public()
    client = Client(HTTP_HOST=host(agency.slug))
    response = client.post(f"/portal/link/{token}/")
    assert response.status_code == 302, response.status_code
    return client


def subject_of(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def text_of(message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    return ""


def link_and_code(message) -> tuple[str, str]:
    """The sign-in link's token and the six-digit code in a sign-in e-mail."""
    body = text_of(message)
    token = re.search(r"/portal/link/([A-Za-z0-9_-]+)/", body)[1]
    code = re.search(r"\b(\d{6})\b", body)[1]
    return token, code


def forget_limits(*people):
    """Test databases are made anew, so customer ids come back while Redis keeps the portal's per-customer
    counts (``caravan.clients.rate_hit``): forget this window's (inside the agency's tenant_context)."""
    from crm.portal import messaging, selfservice

    now = int(time.time())
    for customer in people:
        for key, window in (("portal-message", messaging.PER_HOUR[1]),
                            ("portal-complaint", selfservice.COMPLAINTS_PER_DAY[1])):
            cache.delete(f"rate:{key}:{customer.pk}:{now // window * window}")
