"""The staff side of proposals (issue 21): the trip page's "Proposal" box (versions, who accepted, the
send form, a warning when the quote changed since the last one sent) and the staff PDFs, rendered from the
same templates the customer gets (``crm.proposals.pdf``)."""
from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.roles import Cap
from caravan.forms import MoneyField, errors_onto
from crm.customers.models import Customer
from crm.portal.services import portal_settings
from crm.proposals import pdf, selectors, services
from crm.proposals.models import Proposal
from crm.trips.models import Trip

from ..portal.views.proposals import pdf_response
from .customers import DATE_INPUT
from .trips import MONEY_INPUT, TripPage


class SendForm(forms.Form):
    recipient = forms.ChoiceField(label=gettext_lazy("Send to"))
    message = forms.CharField(label=gettext_lazy("Covering note (optional)"), required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 2}))
    included = forms.CharField(label=gettext_lazy("Included (one per line)"), required=False,
                               widget=forms.Textarea(attrs={"rows": 3}))
    excluded = forms.CharField(label=gettext_lazy("Not included (one per line)"), required=False,
                               widget=forms.Textarea(attrs={"rows": 3}))
    terms = forms.CharField(label=gettext_lazy("Terms"), required=False, widget=forms.Textarea(attrs={"rows": 4}))
    deposit_amount = MoneyField(label=gettext_lazy("Deposit"), required=False, widget=MONEY_INPUT)
    valid_until = forms.DateField(label=gettext_lazy("Valid until (optional)"), required=False, widget=DATE_INPUT)

    def __init__(self, *args, trip: Trip, **kwargs):
        super().__init__(*args, **kwargs)
        self.people = {p.pk: p for p in services.recipients(trip)}
        self.fields["recipient"].choices = [
            (f"{p.pk}:{address}", f"{p.name} <{address}>")
            for p in self.people.values() for address in p.emails.values_list("address", flat=True)]
        self.fields["deposit_amount"].help_text = _("Empty: %(percent)d%% of the total.") % {
            "percent": portal_settings().deposit_percent}

    def recipient_and_email(self) -> tuple[Customer | None, str]:
        pk, _sep, email = self.cleaned_data["recipient"].partition(":")
        return self.people.get(int(pk)) if pk.isdigit() else None, email


def _defaults() -> dict:
    row = portal_settings()
    return {"included": row.proposal_included, "excluded": row.proposal_excluded, "terms": row.proposal_terms}


def _trip(pk) -> Trip:
    return get_object_or_404(Trip.objects.select_related("customer", "opportunity__stage"), pk=pk)


class TripProposalsView(TripPage, View):
    """The trip page's "Proposal" box (loaded by htmx)."""

    def get(self, request, pk):
        trip = _trip(pk)
        versions = list(selectors.versions(trip))
        for version in versions:
            version.trip, version.expired = trip, services.expired(version)
        latest = versions[0] if versions else None
        can_send = request.user.can(Cap.PIPELINE_WORK) and trip.status == Trip.Status.QUOTE and not (
            trip.opportunity_id and trip.opportunity.stage.is_closed)
        return render(request, "frontend/proposals/_trip.html", {
            "trip": trip, "versions": versions, "latest": latest, "changed": services.quote_changed(latest),
            "can_send": can_send, "form": SendForm(trip=trip, initial=_defaults()) if can_send else None,
            "itinerary": trip.status in (Trip.Status.CONFIRMED, Trip.Status.COMPLETED)})


class ProposalSendView(TripPage, View):
    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk):
        trip = _trip(pk)
        form = SendForm(request.POST, trip=trip)
        if form.is_valid():
            recipient, email = form.recipient_and_email()
            with errors_onto(form):
                proposal = services.proposal_send(
                    actor=request.user, trip=trip, recipient=recipient, email=email,
                    message=form.cleaned_data["message"], included=form.cleaned_data["included"],
                    excluded=form.cleaned_data["excluded"], terms=form.cleaned_data["terms"],
                    deposit_amount=form.cleaned_data["deposit_amount"], valid_until=form.cleaned_data["valid_until"])
                messages.success(request, _("Proposal version %(version)d sent to %(email)s.")
                                 % {"version": proposal.version, "email": email})
                return redirect("trip_detail", pk=trip.pk)
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, error)
        return redirect("trip_detail", pk=trip.pk)


class ProposalPdfView(TripPage, View):
    """A sent version's PDF (``?version=``, else the latest), or, before any was sent, a preview of what
    sending now would show (the portal settings' defaults)."""

    def get(self, request, pk):
        trip = _trip(pk)
        version = request.GET.get("version", "")
        proposals = Proposal.objects.filter(trip=trip).select_related("acceptance")
        if version:
            proposal = proposals.filter(version=version).first() if version.isdigit() else None
            if proposal is None:
                raise Http404
        else:
            proposal = proposals.order_by("-version").first()
        if proposal is None:
            defaults = _defaults()
            snapshot = services.snapshot_of(trip, included=defaults["included"], excluded=defaults["excluded"],
                                            terms=defaults["terms"])
            proposal = Proposal(trip=trip, version=0, snapshot=snapshot, content_hash=services.content_hash(snapshot))
        proposal.trip = trip
        return pdf_response(lambda: pdf.proposal_pdf(proposal), f"{trip.reference}-v{proposal.version}.pdf")


class ItineraryPdfView(TripPage, View):
    def get(self, request, pk):
        trip = _trip(pk)
        return pdf_response(lambda: pdf.itinerary_pdf(trip), f"{trip.reference}-itinerary.pdf")
