"""The one base of every signed-in portal page: which customer this is and what they may see.

``PortalPage.dispatch`` is the fence: agency host only (404 elsewhere), a portal session naming a person
whose card still holds the address they signed in with (the sign-in page otherwise), the portal open. It
is sealed like ``frontend.views.base.AgencyPage``: a page that defines ``dispatch`` or ``setup`` is refused
at import time. Pages read through ``self.trips()``, ``self.trip(pk)`` and ``self.people()``, which start
from the signed-in customer (``crm.portal.selectors``), never from a bare ``Trip.objects``;
``tests/test_portal_fences.py`` tries every portal route with another customer's ids, another agency's host
and no session.
"""
from urllib.parse import urlencode

from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation

from caravan.tenancy import current_agency
from crm.customers.models import Customer
from crm.portal import selectors
from crm.portal.services import portal_settings
from crm.proposals.selectors import shown_q

from . import session as portal_session

_SEALED = ("dispatch", "setup")


def portal_language(request, customer: Customer | None = None) -> str:
    """The portal speaks the language the visitor chose here, else the customer's, else the agency's."""
    chosen = request.portal_session.get(portal_session.LANGUAGE) if request.portal_session is not None else None
    agency = current_agency()
    return chosen or (customer.language if customer else "") or (agency.language if agency else "en")


class PortalPage:
    """A portal page for a signed-in customer; ``self.customer`` is who they are."""

    customer: Customer

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for klass in cls.__mro__:
            if klass is PortalPage or klass.__module__.startswith("django."):
                continue
            for name in _SEALED:
                if name in vars(klass):
                    raise TypeError(f"{cls.__name__}: {klass.__name__} defines {name}(), which would run around the "
                                    f"portal fence (frontend.portal.base.PortalPage). Do the work in get()/post().")

    def dispatch(self, request, *args, **kwargs):
        if current_agency() is None or request.portal_session is None:
            raise Http404
        customer = self._signed_in(request)
        if customer is None:
            return redirect(reverse("portal:sign_in") + "?" + urlencode({"next": request.get_full_path()}))
        self.customer = request.portal_customer = customer
        language = portal_language(request, customer)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        return super().dispatch(request, *args, **kwargs)

    @staticmethod
    def _signed_in(request) -> Customer | None:
        session = request.portal_session
        customer_id, email = session.get(portal_session.CUSTOMER), session.get(portal_session.EMAIL)
        if not customer_id or not email or not portal_settings().enabled:
            return None
        customer = (Customer.objects.filter(pk=customer_id, kind=Customer.Kind.PERSON, merged_into__isnull=True,
                                            emails__address=email).first())
        if customer is None:  # merged away, or the address left the card: the session ends
            portal_session.sign_out(request)
        return customer

    # --- what this customer may see: every portal query starts here ------------------------------------

    def trips(self):
        """The trips this customer may see (``crm.portal.selectors.visible_trips``), less quotes no proposal was
        sent for (``crm.proposals.selectors.shown_q``)."""
        return selectors.visible_trips(self.customer).filter(shown_q())

    def trip(self, pk):
        """One trip this customer may see, else 404 (another customer's or agency's id looks like none)."""
        trip = self.trips().filter(pk=pk).select_related("customer", "owner", "opportunity").first()
        if trip is None:
            raise Http404
        return trip

    def people(self):
        """The people this customer acts for: themselves and, for a booker, the travelers on trips they see."""
        return selectors.visible_people(self.customer)
