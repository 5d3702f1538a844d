"""Test data for the care tests (no tests here). Rows are written inside ``tenant_context``."""
from datetime import timedelta

from django.utils import timezone

from accounts.models import User
from crm.customers import services as crm_services
from crm.customers.models import ChangeLog, Customer
from crm.trips.models import Traveler, Trip


def user(agency, role: str) -> User:
    return User.objects.get(email=f"{role}@{agency.slug}.test")


def customer(name: str, *, email: str | None = None, language: str = "en", kind: str = Customer.Kind.PERSON,
             owner: User | None = None) -> Customer:
    return crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=name, kind=kind, language=language,
                                        emails=[email] if email else [], owner=owner)


def agency_today(agency):
    with timezone.override(agency.time_zone):
        return timezone.localdate()


def trip(buyer: Customer, *, returned_days_ago: int, status: str = Trip.Status.CONFIRMED, owner: User | None = None,
         lead: Customer | None = None, title: str = "Kyoto in autumn 京都秋色", today=None) -> Trip:
    today = today or timezone.localdate()
    made = Trip.objects.create(customer=buyer, title=title, destination="Japan", currency="CNY", status=status,
                               depart_on=today - timedelta(days=returned_days_ago + 7),
                               return_on=today - timedelta(days=returned_days_ago), owner=owner)
    if lead is not None:
        Traveler.objects.create(trip=made, customer=lead, is_lead=True)
    return made
