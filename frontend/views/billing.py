"""The agency admin's Billing page (R-BILL-1): plan, seats and status; subscribe or change plan and
interval (the seats follow the active staff by themselves); a new card (which also pays what is
overdue); cancel at period end; invoices.

Card numbers never reach Caravan: Stripe.js (localstripe's stand-in under `make run` and the tests)
confirms a SetupIntent in the browser and the form posts only the PaymentMethod id. Every action
goes through ``billing.services``; errors come back next to the field they concern. The page stays
writable while the agency is read-only (``caravan.tenancy.middleware`` exempts it), so an admin can
always pay and reactivate the agency.
"""
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.roles import Cap
from billing import services
from billing.models import Interval, Plan
from caravan.forms import errors_onto
from caravan.tenancy import require_agency

from .base import AgencyPage

class SubscribeForm(forms.Form):
    plan = forms.ModelChoiceField(label=gettext_lazy("Plan"), queryset=Plan.objects.none(), empty_label=None)
    interval = forms.ChoiceField(label=gettext_lazy("Billing"), choices=Interval.choices, initial=Interval.MONTH)
    payment_method = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.filter(active=True)


class ChangeForm(SubscribeForm):
    """Plan and interval; the seats follow the active staff by themselves."""


class BillingView(AgencyPage, View):
    required_cap = Cap.BILLING_MANAGE
    template = "frontend/billing/page.html"

    def _render(self, request, *, subscribe=None, change=None, card_error=None, status=200):
        agency = require_agency()
        account = services.account_for(agency)
        subscribed = bool(account.stripe_subscription_id) and account.stripe_status not in services.ENDED
        context = {
            "account": account, "subscribed": subscribed, "seats_in_use": services.seats_in_use(agency),
            "subscribe_form": subscribe or SubscribeForm(),
            "change_form": change or ChangeForm(initial={"plan": account.plan_id, "interval": account.interval}),
            "card_error": card_error, "plans": Plan.objects.filter(active=True), "usage": services.usage(agency),
        }
        try:
            context.update(client_secret=services.card_setup(agency), stripe_js=services.stripe_js(),
                           card_reasons=services.card_error_reasons(),
                           invoices=services.invoices(agency))
        except ValidationError as exc:  # Stripe not configured
            context["unavailable"] = exc.messages[0]
        return render(request, self.template, context, status=status)

    def get(self, request):
        return self._render(request)

    def post(self, request):
        agency = require_agency()
        action = request.POST.get("action")
        if action == "subscribe":
            return self._form(request, SubscribeForm(request.POST), "subscribe", _("Subscribed. Thank you!"),
                              lambda data: services.subscribe(agency=agency, plan=data["plan"], interval=data["interval"],
                                                              payment_method=data["payment_method"]))
        if action == "change":
            return self._form(request, ChangeForm(request.POST), "change",
                              _("Subscription changed; the difference is prorated on the next invoice."),
                              lambda data: services.change_subscription(agency=agency, plan=data["plan"],
                                                                        interval=data["interval"]))
        try:
            if action == "card":
                services.update_payment_method(agency=agency, payment_method=request.POST.get("payment_method", ""))
                messages.success(request, _("Card saved; anything overdue has been paid with it."))
            elif action in ("cancel", "resume"):
                services.cancel_at_period_end(agency=agency, cancel=action == "cancel")
                messages.success(request, _("The subscription will end with the paid period.") if action == "cancel"
                                 else _("The subscription continues."))
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"payment_method": exc.messages}
            return self._render(request, card_error=" ".join(m for ms in errors.values() for m in ms), status=400)
        return redirect("billing")

    def _form(self, request, form, key: str, done: str, call):
        """Validate ``form``, hand its data to the service; errors go back next to their fields."""
        if form.is_valid():
            with errors_onto(form):
                call(form.cleaned_data)
                messages.success(request, done)
                return redirect("billing")
        return self._render(request, status=400, **{key: form})
