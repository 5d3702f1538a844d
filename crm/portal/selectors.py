"""What a signed-in customer may see (the portal's fence, read by ``frontend.portal.base.PortalPage``).

A traveler sees the trips they buy or travel on. A booker of a corporate account (``Employment.is_booker``,
active) also sees the account's trips and the trips of travelers travelling for it. Quotes appear once a
proposal was sent (``crm.proposals.selectors.shown_q``, applied by the page base).
"""
from django.db.models import Exists, OuterRef, Q, QuerySet

from crm.customers.models import Customer, Employment
from crm.trips.models import Traveler, Trip


def booked_companies(customer: Customer) -> QuerySet:
    """The corporate accounts this person books for."""
    return Employment.objects.filter(person=customer, is_booker=True, active=True).values("company_id")


def visible_trips(customer: Customer) -> QuerySet:
    companies = booked_companies(customer)
    travels = Traveler.objects.filter(trip=OuterRef("pk")).filter(
        Q(customer=customer) | Q(company_id__in=companies))
    return (Trip.objects.filter(Q(customer=customer) | Q(customer_id__in=companies) | Exists(travels))
            .order_by("-depart_on", "-id"))


def visible_people(customer: Customer) -> QuerySet:
    """The people this customer acts for: themselves, the travelers on the trips they buy, and for a booker
    the travelers travelling for the accounts they book for. A fellow traveler on someone else's trip is
    not one of them (they see the trip, not each other's documents or details)."""
    companies = booked_companies(customer)
    on_trips = Traveler.objects.filter(Q(trip__customer=customer) | Q(trip__customer_id__in=companies)
                                       | Q(company_id__in=companies)).values("customer_id")
    return Customer.objects.filter(Q(pk=customer.pk) | Q(pk__in=on_trips), kind=Customer.Kind.PERSON,
                                   merged_into__isnull=True)


def trip_people(trip: Trip) -> list[Customer]:
    """The people who may be invited into the portal for ``trip``: its buyer when a person, then its travelers."""
    people = [trip.customer] + [t.customer for t in trip.travelers.select_related("customer")]
    unique = list(dict.fromkeys(people))
    return [p for p in unique if p.kind == Customer.Kind.PERSON]
