"""What a signed-in customer changes themselves in the portal (issue 21): their language, travel preferences,
loyalty numbers, family dates and marketing e-mail consent; their trip's survey; "something went wrong".

Each goes through the service staff use, with ``actor=None`` and ``via=ChangeLog.Via.PORTAL`` ("The customer,
in the portal"), so the card's change history shows it beside staff edits: preferences as
``preferences.<name>``, loyalty numbers as ``loyalty.<programme>``, family dates, ``marketing_email``.
A complaint from the portal gets the model's default severity (medium: a 72-hour deadline); the customer
does not choose it, staff triage it.
"""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from caravan.clients import rate_hit
from crm.campaigns import services as campaigns
from crm.campaigns.consent import may_email
from crm.campaigns.models import Consent
from crm.care import services as care
from crm.care.models import Complaint, Survey
from crm.customers import services as customers
from crm.customers.models import ChangeLog, Customer, FamilyDate, LoyaltyMembership, Preferences
from crm.trips.models import Trip

VIA = ChangeLog.Via.PORTAL
PREFERENCE_FIELDS = ("seat", "meal", "cabin", "airlines", "room_type")
COMPLAINTS_PER_DAY = (5, 24 * 60 * 60)
DESCRIPTION_MAX = 4000


def language_set(*, customer: Customer, language: str) -> Customer:
    if language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": [_("Choose a language.")]})
    return customers.customer_update(actor=None, via=VIA, customer=customer, language=language)


def preferences_of(customer: Customer) -> Preferences:
    return Preferences.objects.filter(customer=customer).first() or Preferences(customer=customer)


def preferences_set(*, customer: Customer, **values) -> Preferences:
    unknown = set(values) - set(PREFERENCE_FIELDS)
    if unknown:
        raise ValueError(f"Not portal preferences: {sorted(unknown)}")
    return customers.customer_preferences_set(actor=None, customer=customer, via=VIA, **values)


def loyalty_set(*, customer: Customer, programme: str, number: str) -> LoyaltyMembership:
    errors = {}
    if len((programme or "").strip()) > 60:
        errors["programme"] = [_("Keep the programme's name under 60 characters.")]
    if len((number or "").strip()) > 40:
        errors["number"] = [_("Keep the member number under 40 characters.")]
    if errors:
        raise ValidationError(errors)
    return customers.loyalty_set(actor=None, customer=customer, programme=programme or "", number=number or "",
                                 via=VIA)


def loyalty_remove(*, customer: Customer, pk: int) -> None:
    membership = LoyaltyMembership.objects.filter(customer=customer, pk=pk).first()
    if membership is not None:
        customers.loyalty_remove(actor=None, customer=customer, membership=membership, via=VIA)


def family_date_add(*, customer: Customer, label: str, date) -> FamilyDate:
    if len((label or "").strip()) > 60:
        raise ValidationError({"label": [_("Keep the occasion under 60 characters.")]})
    return customers.family_date_add(actor=None, customer=customer, label=label, date=date, via=VIA)


def family_date_remove(*, customer: Customer, pk: int) -> None:
    row = FamilyDate.objects.filter(customer=customer, pk=pk).first()
    if row is not None:
        customers.family_date_remove(actor=None, customer=customer, family_date=row, via=VIA)


def marketing_of(customer: Customer) -> bool:
    return may_email(customer)


def marketing_set(*, customer: Customer, opt_in: bool) -> Consent:
    """Opt in to or out of marketing e-mail (an opt-out is an unsubscribe until they opt in again)."""
    return campaigns.consent_record(actor=None, customer=customer, opt_in=opt_in, source=Consent.Source.PORTAL,
                                    via=VIA)


# --- surveys and complaints -------------------------------------------------------------------------

def survey_of(customer: Customer, trip: Trip) -> Survey | None:
    """The trip's survey when it was made for this customer (the buyer), answered or not."""
    return Survey.objects.filter(trip=trip, customer=customer).first()


def open_survey(customer: Customer, trip: Trip) -> Survey | None:
    """The trip's survey when it was made for this customer and is not answered yet."""
    return Survey.objects.filter(trip=trip, customer=customer, answered_at__isnull=True).first()


def open_surveys(customer: Customer, trips: QuerySet) -> QuerySet:
    return Survey.objects.filter(trip__in=trips, customer=customer, answered_at__isnull=True).select_related("trip")


def survey_answer(*, customer: Customer, trip: Trip, csat, nps, comment: str = "") -> Survey:
    survey = survey_of(customer, trip)
    if survey is None:
        raise ValidationError({"csat": [_("There is no survey for this trip.")]})
    return care.survey_answer(survey=survey, csat=csat, nps=nps, comment=comment)


def complaint_from_customer(*, customer: Customer, trip: Trip | None, category: str, description: str) -> Complaint:
    """"Something went wrong?": a complaint logged as staff log one, with no actor; staff set the severity."""
    if len((description or "").strip()) > DESCRIPTION_MAX:
        raise ValidationError({"description": [_("Please keep the description under 4,000 characters.")]})
    severity = Complaint._meta.get_field("severity").default
    if category not in Complaint.Category.values or not (description or "").strip():  # its own errors, uncounted
        return care.complaint_log(actor=None, customer=customer, category=category, severity=severity,
                                  description=description, trip=trip)
    if rate_hit(f"portal-complaint:{customer.pk}", limit=COMPLAINTS_PER_DAY[0], window=COMPLAINTS_PER_DAY[1]):
        raise ValidationError({"description": [_("You have already told us about several problems today. "
                                                 "Please call us.")]})
    return care.complaint_log(actor=None, customer=customer, category=category,
                              severity=severity, description=description,
                              trip=trip)


def complaints_of(customer: Customer) -> QuerySet:
    return Complaint.objects.filter(customer=customer).select_related("trip").order_by("-created_at")
