"""The staff side of the customer portal: its settings page (branding, contact, proposal defaults) and
inviting a customer from the card or a trip (``crm.portal.services``)."""
from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.roles import Cap
from caravan.forms import errors_onto
from crm.customers.models import Customer
from crm.portal import selectors, services
from crm.portal.models import PortalSettings
from crm.trips.models import Trip

from .base import AgencyPage
from .trips import TripPage


class PortalSettingsForm(forms.ModelForm):
    logo_file = forms.FileField(label=gettext_lazy("Logo"), required=False,
                                help_text=gettext_lazy("PNG, JPEG or WebP, up to 300 KB; shown on a white background."))
    remove_logo = forms.BooleanField(label=gettext_lazy("Remove the logo"), required=False)

    class Meta:
        model = PortalSettings
        fields = ["enabled", "brand_name", "primary_colour", "accent_colour", "contact_email", "contact_phone",
                  "contact_hours", "deposit_percent", "proposal_included", "proposal_excluded", "proposal_terms"]
        widgets = {"primary_colour": forms.TextInput(attrs={"type": "color"}),
                   "accent_colour": forms.TextInput(attrs={"type": "color"}),
                   "proposal_included": forms.Textarea(attrs={"rows": 4}),
                   "proposal_excluded": forms.Textarea(attrs={"rows": 4}),
                   "proposal_terms": forms.Textarea(attrs={"rows": 6})}


class PortalSettingsView(AgencyPage, View):
    required_cap = Cap.SETTINGS_MANAGE
    template_name = "frontend/portal/settings.html"

    def get(self, request):
        row = services.portal_settings()
        return render(request, self.template_name, {"form": PortalSettingsForm(instance=row), "portal": row})

    def post(self, request):
        row = services.portal_settings()
        form = PortalSettingsForm(request.POST, request.FILES, instance=PortalSettings.objects.get(pk=row.pk))
        if form.is_valid():
            with errors_onto(form):
                upload = form.cleaned_data.get("logo_file")
                logo = None
                if upload is not None:
                    logo = upload.read(services.LOGO_MAX_BYTES + 1)
                services.settings_update(actor=request.user, logo=logo, remove_logo=form.cleaned_data["remove_logo"],
                                         **{name: form.cleaned_data[name] for name in form.Meta.fields})
                messages.success(request, _("Portal settings saved."))
                return redirect("portal_settings")
        return render(request, self.template_name, {"form": form, "portal": row}, status=400)


class InviteForm(forms.Form):
    email = forms.ChoiceField(label=gettext_lazy("Send to"))
    note = forms.CharField(label=gettext_lazy("A line from you (optional)"), required=False, max_length=500,
                           widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].choices = [(a, a) for a in customer.emails.values_list("address", flat=True)]


class CustomerInviteView(AgencyPage, View):
    """Invite a customer into the portal from the card."""

    required_cap = Cap.CUSTOMERS_EDIT

    def post(self, request, pk):
        customer = get_object_or_404(Customer, pk=pk)
        return _invite(request, customer, None, redirect_to=("customer_detail", customer.pk))


class TripInviteView(AgencyPage, View):
    """Invite the trip's customer, or one of its travelers, into the portal at this trip."""

    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk):
        trip = get_object_or_404(Trip, pk=pk)
        people = {trip.customer_id} | set(trip.travelers.values_list("customer_id", flat=True))
        customer = get_object_or_404(Customer, pk=request.POST.get("customer") or trip.customer_id, pk__in=people)
        return _invite(request, customer, trip, redirect_to=("trip_detail", trip.pk))


def _invite(request, customer, trip, *, redirect_to):
    form = InviteForm(request.POST, customer=customer)
    if form.is_valid():
        with errors_onto(form):
            services.invitation_send(actor=request.user, customer=customer, email=form.cleaned_data["email"],
                                     trip=trip, note=form.cleaned_data["note"])
            messages.success(request, _("Portal invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]})
            return redirect(*redirect_to)
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)
    return redirect(*redirect_to)


class CustomerPortalView(AgencyPage, View):
    """The card's "Customer portal" box (loaded by htmx): invite, and the links sent and used."""

    required_cap = Cap.CUSTOMERS_VIEW

    def get(self, request, pk):
        customer = get_object_or_404(Customer, pk=pk)
        return render(request, "frontend/portal/_customer.html", {
            "customer": customer, "form": InviteForm(customer=customer), "portal": services.portal_settings(),
            "can_invite": request.user.can(Cap.CUSTOMERS_EDIT) and customer.kind == Customer.Kind.PERSON,
            "links": customer.portal_links.select_related("sent_by").order_by("-created_at")[:5]})


class TripPortalView(TripPage, View):
    """The trip page's "Customer portal" box (loaded by htmx): who can see this trip, and inviting them."""

    def get(self, request, pk):
        trip = get_object_or_404(Trip.objects.select_related("customer"), pk=pk)
        people = selectors.trip_people(trip)
        return render(request, "frontend/portal/_trip.html", {
            "trip": trip, "portal": services.portal_settings(),
            "can_invite": request.user.can(Cap.PIPELINE_WORK),
            "invites": [(person, InviteForm(customer=person)) for person in people]})
