"""Personal data pages: erasing one customer, and the retention policy with its reports
(``crm.retention``). Thin: the services do the work and the checks."""
from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.roles import Cap
from caravan.forms import errors_onto
from crm.customers.models import Customer
from crm.retention import services
from crm.retention.api import ERASE_REASONS
from crm.retention.models import Erasure, RetentionPolicy, RetentionRun
from crm.customers.services import customer_survivor

from .base import AgencyPage


class EraseForm(forms.Form):
    reason = forms.ChoiceField(label=gettext_lazy("Why is the customer's data erased?"),
                               choices=[("", "—")] + ERASE_REASONS)
    confirm = forms.CharField(label=gettext_lazy("Type the customer number to confirm"), max_length=20,
                              widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}))


class CustomerEraseView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_ERASE
    template = "frontend/retention/erase.html"

    @staticmethod
    def _customer(pk) -> Customer:
        customer = Customer.objects.filter(pk=pk).select_related("merged_into").first()
        if customer is None:
            raise Http404
        return customer

    def _render(self, request, customer, form, status=200):
        erased = services.is_erased(customer)
        return render(request, self.template, {
            "customer": customer, "form": form, "erased": erased,
            "plan": None if erased or customer.kind != Customer.Kind.PERSON else services.erasure_preview(customer),
        }, status=status)

    def get(self, request, pk):
        customer = self._customer(pk)
        if customer.merged_into_id:
            return redirect("customer_erase", pk=customer_survivor(customer).pk)
        return self._render(request, customer, EraseForm())

    def post(self, request, pk):
        customer = self._customer(pk)
        form = EraseForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.customer_erase(actor=request.user, customer=customer, via=Erasure.Via.PAGE,
                                        **form.cleaned_data)
                messages.success(request, _("The customer's personal data was erased. Trips and payments are kept."))
                return redirect("customer_detail", pk=customer_survivor(customer).pk)
        return self._render(request, customer, form, status=400)


NEVER = ""
DOCUMENT_CHOICES = [(NEVER, gettext_lazy("Never (keep document numbers)"))] + [
    (str(m), label) for m, label in ((6, gettext_lazy("6 months")), (12, gettext_lazy("12 months")),
                                     (24, gettext_lazy("24 months")), (36, gettext_lazy("36 months")),
                                     (60, gettext_lazy("5 years")), (120, gettext_lazy("10 years")))]
INACTIVE_CHOICES = [(NEVER, gettext_lazy("Off (keep inactive customers)"))] + [
    (str(y), label) for y, label in ((2, gettext_lazy("2 years")), (3, gettext_lazy("3 years")),
                                     (5, gettext_lazy("5 years")), (7, gettext_lazy("7 years")),
                                     (10, gettext_lazy("10 years")))]


class PolicyForm(forms.Form):
    document_months = forms.TypedChoiceField(
        label=gettext_lazy("Delete travel document numbers and scans"), choices=DOCUMENT_CHOICES, required=False,
        coerce=int, empty_value=None,
        help_text=gettext_lazy("Counted from the end of the customer's last trip (or from when the document was "
                               "added, if later)."))
    inactive_years = forms.TypedChoiceField(
        label=gettext_lazy("Anonymise customers inactive for"), choices=INACTIVE_CHOICES, required=False,
        coerce=int, empty_value=None,
        help_text=gettext_lazy("No trip, contact, enquiry or change for this long. Their contact details, "
                               "documents and notes are erased; trips and payments stay for the accounts."))
    email_report = forms.BooleanField(label=gettext_lazy("E-mail each run's report to the agency admins"),
                                      required=False)

    def __init__(self, *args, policy: RetentionPolicy | None = None, **kwargs):
        if policy is not None and "initial" not in kwargs:
            kwargs["initial"] = {"document_months": "" if policy.document_months is None else str(policy.document_months),
                                 "inactive_years": "" if policy.inactive_years is None else str(policy.inactive_years),
                                 "email_report": policy.email_report}
        super().__init__(*args, **kwargs)
        if policy is not None:
            for name in ("document_months", "inactive_years"):
                value, field = getattr(policy, name), self.fields[name]
                if value is not None and str(value) not in dict(field.choices):
                    field.choices = [*field.choices, (str(value), str(value))]  # a value set through the API


class PersonalDataView(AgencyPage, View):
    """Settings → Personal data: the retention policy, its dry run and reports, and the erasure log."""

    required_cap = Cap.SETTINGS_MANAGE
    template = "frontend/retention/settings.html"

    def _render(self, request, form, status=200):
        return render(request, self.template, {
            "form": form, "preview": services.retention_preview(), "runs": services.recent_runs(),
            "erasures": services.recent_erasures(), "can_erase": request.user.can(Cap.CUSTOMERS_ERASE),
        }, status=status)

    def get(self, request):
        return self._render(request, PolicyForm(policy=RetentionPolicy.load()))

    def post(self, request):
        if request.POST.get("action") == "run":
            run = services.retention_run(trigger=RetentionRun.Trigger.MANUAL, actor=request.user)
            messages.success(request, _("Retention ran: %(documents)s documents deleted, %(customers)s customers "
                                        "anonymised.") % {"documents": run.documents_deleted,
                                                          "customers": run.customers_anonymised})
            return redirect("personal_data")
        form = PolicyForm(request.POST, policy=RetentionPolicy.load())
        if form.is_valid():
            with errors_onto(form):
                services.policy_update(actor=request.user, **form.cleaned_data)
                messages.success(request, _("Retention policy saved."))
                return redirect("personal_data")
        return self._render(request, form, status=400)
