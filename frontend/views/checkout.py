"""The staff side of online payments (``crm.checkout``): connecting the agency's Stripe account
(``/settings/portal/payments/``, admins) and the trip page's "Online payments" box (loaded by htmx)."""
from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.roles import Cap
from caravan.forms import errors_onto
from caravan.tenancy import require_agency
from crm.checkout import selectors, services
from crm.checkout.models import Method
from crm.trips.models import Trip

from .base import AgencyPage
from .trips import TripPage

EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded")


class AccountForm(forms.Form):
    publishable_key = forms.CharField(label=gettext_lazy("Publishable key"), max_length=200,
                                      help_text=gettext_lazy("Starts with pk_live_ (or pk_test_ to try it out)."))
    secret_key = forms.CharField(label=gettext_lazy("Secret key"), max_length=300, required=False,
                                 widget=forms.PasswordInput(render_value=False),
                                 help_text=gettext_lazy("Starts with sk_live_ or rk_live_. Kept encrypted; left "
                                                        "empty, the stored key stays."))
    webhook_secret = forms.CharField(label=gettext_lazy("Webhook signing secret"), max_length=300, required=False,
                                     widget=forms.PasswordInput(render_value=False),
                                     help_text=gettext_lazy("Starts with whsec_. Kept encrypted; left empty, the "
                                                            "stored secret stays."))
    methods = forms.MultipleChoiceField(label=gettext_lazy("Customers may pay with"), choices=Method.choices,
                                        widget=forms.CheckboxSelectMultiple, initial=[Method.CARD])


class CheckoutSettingsView(AgencyPage, View):
    required_cap = Cap.SETTINGS_MANAGE
    template_name = "frontend/checkout/settings.html"

    def _render(self, request, form, status=200):
        return render(request, self.template_name, {
            "form": form, "account": selectors.account(), "events": EVENTS,
            "webhook_url": require_agency().url(reverse("checkout_stripe_webhook"))}, status=status)

    def get(self, request):
        account = selectors.account()
        initial = {"publishable_key": account.publishable_key, "methods": account.methods} if account else None
        return self._render(request, AccountForm(initial=initial))

    def post(self, request):
        if request.POST.get("action") == "disconnect":
            services.account_disconnect(actor=request.user)
            messages.success(request, _("The Stripe account is disconnected: customers are asked to pay by bank "
                                        "transfer."))
            return redirect("checkout_settings")
        form = AccountForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.account_connect(actor=request.user, **form.cleaned_data)
                messages.success(request, _("Stripe account connected: customers can pay online."))
                return redirect("checkout_settings")
        return self._render(request, form, status=400)


class TripOnlinePaymentsView(TripPage, View):
    """The trip page's "Online payments" box: each Stripe payment with its id and status."""

    def get(self, request, pk):
        trip = get_object_or_404(Trip, pk=pk)
        return render(request, "frontend/checkout/_trip.html", {
            "trip": trip, "online_payments": selectors.online_payments(trip)[:20], "account": selectors.account(),
            "lines": selectors.schedule(trip)})
