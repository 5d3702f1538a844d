"""Staff side of document scans (``crm.documents``): the "Documents to verify" queue with accept/reject, the
trip page's and card's boxes (loaded by htmx), and a scan streamed through a fenced, logged view."""
from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.roles import Cap
from caravan.forms import errors_onto
from crm.customers.models import Customer
from crm.documents import selectors, services
from crm.documents.models import DocumentFile
from crm.trips.models import Trip
from frontend.portal.views.documents import scan_response

from .base import AgencyPage


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("accept", gettext_lazy("Accept")), ("reject", gettext_lazy("Reject"))])
    reason = forms.CharField(label=gettext_lazy("Reason (sent to the customer)"), max_length=300, required=False)


def _back(request, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


class ReviewListView(AgencyPage, View):
    """Scans waiting for review, newest first; "mine": those of my trips (or my customers')."""

    required_cap = Cap.DOCUMENTS_VIEW

    def get(self, request):
        mine = request.GET.get("mine") == "1"
        files = list(selectors.review_queue(owner=request.user if mine else None)[:200])
        return render(request, "frontend/document_files/review.html", {
            "files": files, "mine": mine, "can_review": request.user.can(Cap.DOCUMENTS_REVEAL)})


class ReviewView(AgencyPage, View):
    required_cap = Cap.DOCUMENTS_REVEAL

    def post(self, request, pk):
        file = get_object_or_404(DocumentFile, pk=pk)
        form = ReviewForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.file_review(actor=request.user, file=file, accept=form.cleaned_data["decision"] == "accept",
                                     reason=form.cleaned_data["reason"])
                messages.success(request, _("Document accepted.") if form.cleaned_data["decision"] == "accept"
                                 else _("Document rejected; the customer was asked for a new one."))
                return redirect(_back(request, "document_review"))
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(_back(request, "document_review"))


class FileView(AgencyPage, View):
    """A scan, for roles that may reveal documents; every view is in the access log."""

    required_cap = Cap.DOCUMENTS_REVEAL

    def get(self, request, pk):
        file = get_object_or_404(DocumentFile, pk=pk)
        return scan_response(file, services.file_open(file=file, actor=request.user))


class TripFilesView(AgencyPage, View):
    """The trip page's "Document scans" box."""

    required_cap = Cap.DOCUMENTS_VIEW

    def get(self, request, pk):
        trip = get_object_or_404(Trip, pk=pk)
        return render(request, "frontend/document_files/_box.html", {
            "files": list(selectors.files_for_trip(trip)), "warnings": selectors.passport_warnings(trip),
            "trip": trip, "back": request.headers.get("HX-Current-URL", ""),
            "can_view": request.user.can(Cap.DOCUMENTS_REVEAL), "can_review": request.user.can(Cap.DOCUMENTS_REVEAL)})


class CustomerFilesView(AgencyPage, View):
    """The card's "Document scans" box."""

    required_cap = Cap.DOCUMENTS_VIEW

    def get(self, request, pk):
        customer = get_object_or_404(Customer, pk=pk)
        files = list(selectors.files_for_customer(customer))
        if not files:
            return render(request, "frontend/document_files/_empty.html")
        return render(request, "frontend/document_files/_box.html", {
            "files": files, "warnings": [], "customer": customer, "back": "",
            "can_view": request.user.can(Cap.DOCUMENTS_REVEAL), "can_review": request.user.can(Cap.DOCUMENTS_REVEAL)})


