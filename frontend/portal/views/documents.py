"""Document scans in the portal: the trip panel "Documents we need", the upload page (the phone's camera) and
the customer's own scans streamed back (``crm.documents``). Every query starts from ``PortalPage``'s
``trip()`` / ``people()``: another customer's trip or scan is a 404."""
from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View

from caravan.forms import errors_onto
from crm.documents import selectors, services
from crm.documents.models import DocumentFile
from crm.trips.models import Trip

from ..base import PortalPage

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class UploadForm(forms.Form):
    person = forms.TypedChoiceField(label=gettext_lazy("Whose document"), coerce=int)
    kind = forms.ChoiceField(label=gettext_lazy("Document"), choices=DocumentFile.Kind.choices)
    file = forms.FileField(label=gettext_lazy("Photo or PDF"), widget=forms.ClearableFileInput(
        attrs={"accept": "image/*,application/pdf", "capture": "environment"}),
        help_text=gettext_lazy("Take a photo of the whole page, flat and sharp, or choose a PDF."))
    number = forms.CharField(label=gettext_lazy("Document number (optional)"), max_length=30, required=False,
                             widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}))
    expires_on = forms.DateField(label=gettext_lazy("Expiry date (optional)"), required=False, widget=DATE_INPUT)
    issuing_country = forms.CharField(label=gettext_lazy("Issuing country"), max_length=2, required=False,
                                      initial="CN", help_text=gettext_lazy("Two letters, e.g. CN."))

    def __init__(self, *args, people, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].choices = [(p.pk, p.name) for p in people]


def _people_on(page, trip: Trip) -> list:
    """The trip's travelers this customer acts for."""
    mine = set(page.people().values_list("pk", flat=True))
    return [p for p in services.trip_people(trip) if p.pk in mine]


def documents_panel(page, trip: Trip) -> dict | None:
    """The trip page's panel "Documents we need" (``frontend.portal.panels.TRIP_PANELS``)."""
    people = _people_on(page, trip)
    if not people or trip.status == Trip.Status.CANCELLED:
        return None
    return {"template": "portal/documents/_panel.html", "trip": trip, "rows": selectors.needed_for(trip, people),
            "warnings": selectors.passport_warnings(trip, people), "visa": trip.needs_visa}


def documents_notices(page, trips) -> list[dict]:
    """Home page lines (``HOME_NOTICES``): documents still needed or rejected, per trip ahead."""
    notices = []
    for trip in trips:
        if trip.status in (Trip.Status.CANCELLED, Trip.Status.COMPLETED) or not trip.needs_visa:
            continue
        people = _people_on(page, trip)
        if not people:
            continue
        missing, rejected = selectors.still_needed(trip, people)
        url = reverse("portal:trip", args=[trip.pk]) + "#documents"
        if rejected:
            notices.append({"text": _("“%(trip)s”: a document needs to be sent again.") % {"trip": trip.title},
                            "url": url, "tone": "warn"})
        elif missing:
            notices.append({"text": _("“%(trip)s”: %(count)s documents still needed for the visa.")
                            % {"trip": trip.title, "count": missing}, "url": url})
    return notices


class UploadView(PortalPage, TemplateView):
    template_name = "portal/documents/upload.html"

    def _context(self, form, trip, people):
        return {"form": form, "trip": trip, "warnings": selectors.passport_warnings(trip, people),
                "rows": selectors.needed_for(trip, people), "max_mb": services.max_bytes() // (1024 * 1024)}

    def get(self, request, trip):
        trip = self.trip(trip)
        people = _people_on(self, trip)
        if not people:
            raise Http404
        initial = {"person": request.GET.get("person") or people[0].pk, "kind": request.GET.get("kind") or "passport",
                   "issuing_country": "CN"}
        form = UploadForm(initial=initial, people=people)
        return self.render_to_response(self._context(form, trip, people))

    def post(self, request, trip):
        trip = self.trip(trip)
        people = _people_on(self, trip)
        if not people:
            raise Http404
        form = UploadForm(request.POST, request.FILES, people=people)
        if form.is_valid():
            person = next(p for p in people if p.pk == form.cleaned_data["person"])
            data = form.cleaned_data["file"].read(services.max_bytes() + 1)
            with errors_onto(form):
                services.file_upload(uploader=self.customer, person=person, kind=form.cleaned_data["kind"], data=data,
                                     trip=trip, number=form.cleaned_data["number"],
                                     expires_on=form.cleaned_data["expires_on"],
                                     issuing_country=form.cleaned_data["issuing_country"])
                messages.success(request, _("Thank you: your document was sent. Your travel consultant will check it."))
                return redirect(reverse("portal:trip", args=[trip.pk]) + "#documents")
        return self.render_to_response(self._context(form, trip, people), status=400)


class FileView(PortalPage, View):
    """One of this customer's scans (theirs, or a traveler's they act for), streamed back inline."""

    def get(self, request, trip, document):
        trip = self.trip(trip)
        file = DocumentFile.objects.filter(trip=trip, customer__in=self.people(), pk=document).first()
        if file is None:
            raise Http404
        data = services.file_open(file=file, customer=self.customer)
        return scan_response(file, data)


def scan_response(file: DocumentFile, data: bytes) -> HttpResponse:
    """A scan for the browser to show, never to keep: inline, private, no-store, its sniffed type only."""
    from crm.documents.storage import EXTENSIONS

    response = HttpResponse(data, content_type=file.content_type)
    response["Content-Disposition"] = f'inline; filename="document-{file.pk}.{EXTENSIONS.get(file.content_type, "bin")}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
