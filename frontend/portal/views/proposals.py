"""The customer's proposal: read it, accept it (typed name + tick), and the PDFs (issue 21).

Every lookup starts from the signed-in customer: ``self.trip(...)`` (404 when not theirs) and, for a
proposal's id, ``Proposal.objects.filter(trip__in=self.trips())``.
"""
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from caravan.clients import request_address
from caravan.forms import errors_onto
from crm.proposals import pdf, selectors, services
from crm.proposals.models import Proposal
from crm.trips.models import Trip

from ..base import PortalPage

PDF_STATUSES = (Trip.Status.CONFIRMED, Trip.Status.COMPLETED)


class AcceptForm(forms.Form):
    # Not required here: the service gives the one set of refusals (the page, a test, any other path).
    typed_name = forms.CharField(label=gettext_lazy("Your full name"), max_length=200, required=False,
                                 widget=forms.TextInput(attrs={"autocomplete": "name"}))
    agreed = forms.BooleanField(label=gettext_lazy("I accept the terms"), required=False)
    shown_hash = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)


def pdf_response(make, filename: str) -> HttpResponse:
    """``make()``'s PDF as an inline download; 503 when this machine cannot render PDFs (no Pango)."""
    try:
        document = make()
    except pdf.Unavailable:
        return HttpResponse(_("PDFs cannot be made on this server at the moment. Please try again later."),
                            status=503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(document, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


class ProposalView(PortalPage, View):
    """The latest version sent for the trip; the accept form while it can be accepted."""

    template_name = "portal/proposals/proposal.html"

    def _page(self, request, trip, proposal, form=None, status=200):
        expired = trip.status == Trip.Status.QUOTE and services.expired(proposal)
        can_accept = (trip.status == Trip.Status.QUOTE and proposal.superseded_at is None and not expired
                      and not services.accepted(proposal) and selectors.may_accept(self.customer, proposal))
        form = form or AcceptForm(initial={"shown_hash": proposal.content_hash, "typed_name": self.customer.name})
        return render(request, self.template_name, {
            "trip": trip, "proposal": proposal, "shown": selectors.shown(proposal), "form": form,
            "can_accept": can_accept, "expired": expired, "acceptance": getattr(proposal, "acceptance", None)},
                      status=status)

    def get(self, request, trip):
        trip = self.trip(trip)
        proposal = selectors.latest(trip)
        if proposal is None:  # a trip confirmed without a proposal: its own page says it all
            return redirect("portal:trip", pk=trip.pk)
        proposal.trip = trip
        return self._page(request, trip, proposal)

    def post(self, request, trip):
        trip = self.trip(trip)
        proposal = selectors.latest(trip)
        if proposal is None:
            raise Http404
        proposal.trip = trip
        if not selectors.may_accept(self.customer, proposal):
            raise PermissionDenied
        form = AcceptForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.proposal_accept(
                    customer=self.customer, proposal=proposal, typed_name=form.cleaned_data["typed_name"],
                    agreed=form.cleaned_data["agreed"], shown_hash=form.cleaned_data["shown_hash"],
                    address=request_address(request), user_agent=request.META.get("HTTP_USER_AGENT", ""))
                messages.success(request, _("Thank you: your trip is confirmed. A confirmation is on its way by e-mail."))
                return redirect("portal:proposal", trip=trip.pk)
        return self._page(request, trip, proposal, form=form, status=400)


class ProposalPdfView(PortalPage, View):
    def get(self, request, trip, proposal):
        trip = self.trip(trip)
        row = (Proposal.objects.filter(trip__in=self.trips(), trip=trip, pk=proposal)
               .select_related("acceptance").first())
        if row is None:
            raise Http404
        row.trip = trip
        return pdf_response(lambda: pdf.proposal_pdf(row), f"{trip.reference}-v{row.version}.pdf")


class ItineraryPdfView(PortalPage, View):
    def get(self, request, trip):
        trip = self.trip(trip)
        if trip.status not in PDF_STATUSES:
            raise Http404
        return pdf_response(lambda: pdf.itinerary_pdf(trip), f"{trip.reference}-itinerary.pdf")


# --- what the proposals add to the trip page and the home page (frontend.portal.panels) -----------------

def trip_panel(page, trip) -> dict | None:
    proposal = selectors.latest(trip)
    if proposal is None and trip.status not in PDF_STATUSES:
        return None
    return {"template": "portal/proposals/_panel.html", "trip": trip, "proposal": proposal,
            "acceptance": getattr(proposal, "acceptance", None) if proposal else None,
            "waiting": proposal is not None and trip.status == Trip.Status.QUOTE and proposal.superseded_at is None
            and not services.accepted(proposal),
            "itinerary": trip.status in PDF_STATUSES}


def home_notices(page, trips) -> list[dict]:
    from django.urls import reverse

    return [{"text": _("A proposal for “%(title)s” is waiting for you: read and accept it.") % {"title": p.trip.title},
             "url": reverse("portal:proposal", kwargs={"trip": p.trip_id}), "tone": ""}
            for p in selectors.waiting(page.trips())]
