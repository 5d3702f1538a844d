"""Personal-data pages: the access log (agency-wide and per customer) and a customer's data export.

Thin: crm.privacy.selectors reads the log, crm.privacy.export builds the archive (and logs it).
"""
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views import View

from accounts.models import User
from accounts.roles import Cap
from crm.customers.models import Customer
from crm.privacy import export, selectors
from crm.privacy.models import AccessEntry

from .base import AgencyPage

PER_PAGE = 50
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class AccessLogFilterForm(forms.Form):
    """The log's filters; invalid values are field errors (the page answers 400 and lists nothing)."""

    user = forms.ModelChoiceField(label=gettext_lazy("Who"), queryset=User.objects.none(), required=False,
                                  empty_label=gettext_lazy("Everyone"))
    customer = forms.IntegerField(label=gettext_lazy("Customer number"), required=False, min_value=1,
                                  max_value=2**63 - 1, widget=forms.NumberInput(attrs={"placeholder": "#"}))
    what = forms.ChoiceField(label=gettext_lazy("What"), required=False,
                             choices=[("", gettext_lazy("Everything")), *AccessEntry.What.choices])
    via = forms.ChoiceField(label=gettext_lazy("Via"), required=False,
                            choices=[("", gettext_lazy("Pages and API")), *AccessEntry.Via.choices])
    date_from = forms.DateField(label=pgettext_lazy("date range", "From"), required=False, widget=DATE)
    date_to = forms.DateField(label=pgettext_lazy("date range", "To"), required=False, widget=DATE)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = User.objects.order_by("full_name", "email")
        self.fields["user"].label_from_instance = lambda u: u.full_name or u.email

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", gettext_lazy("The end of the period comes before its start."))
        return data

    def filters(self) -> dict:
        data = self.cleaned_data
        return {"user": data.get("user"), "what": data.get("what") or "", "via": data.get("via") or "",
                "date_from": data.get("date_from"), "date_to": data.get("date_to")}


def _query(params) -> str:
    return urlencode({k: v for k, v in params.items() if k != "page" and v})


class AccessLogView(AgencyPage, View):
    """Every access to customers' personal data in the agency, filterable, newest first."""

    required_cap = Cap.ACCESS_LOG_VIEW

    def get(self, request):
        form = AccessLogFilterForm(request.GET or None)
        entries = AccessEntry.objects.none()
        customer = None
        if not request.GET or form.is_valid():
            filters = form.filters() if request.GET else {}
            customer_id = form.cleaned_data.get("customer") if request.GET else None
            if customer_id:
                customer = Customer.objects.filter(pk=customer_id).first()
                filters["customer"] = customer_id
            entries = selectors.access_log(**filters)
        page = Paginator(entries, PER_PAGE).get_page(request.GET.get("page"))
        return render(request, "frontend/privacy/access_log.html", {
            "form": form, "page": page, "filter_query": _query(request.GET), "customer": customer,
            "retention_days": settings.ACCESS_LOG_RETENTION_DAYS,
        }, status=400 if form.errors else 200)


class CustomerAccessLogView(AgencyPage, View):
    """One customer's access log: a page, or (htmx) the card's section."""

    required_cap = Cap.ACCESS_LOG_VIEW

    def get(self, request, pk):
        customer = get_object_or_404(Customer, pk=pk)
        page = Paginator(selectors.access_log(customer=customer), PER_PAGE).get_page(request.GET.get("page"))
        context = {"customer": customer, "page": page, "filter_query": "",
                   "can_export": request.user.can(Cap.PERSONAL_DATA_EXPORT)}
        if request.htmx and not request.htmx.history_restore_request:
            return render(request, "frontend/privacy/_customer_log.html", context)
        return render(request, "frontend/privacy/customer_log.html", context)


class CustomerDataExportView(AgencyPage, View):
    """What the export holds and the button; ``?download=zip``: the ZIP (logged in the access log).

    A GET, so a suspended agency, which may read and export but not change, can still answer a
    customer's request for their data."""

    required_cap = Cap.PERSONAL_DATA_EXPORT

    def get(self, request, pk):
        customer = Customer.objects.select_related("merged_into").filter(pk=pk).first()
        if customer is None:
            raise Http404
        if request.GET.get("download") != "zip":
            return render(request, "frontend/privacy/export.html", {
                "customer": customer, "format": export.FORMAT, "version": export.VERSION})
        name, archive = export.customer_data_export(actor=request.user, customer=customer,
                                                    via=AccessEntry.Via.PAGE)
        response = FileResponse(archive, as_attachment=True, filename=name, content_type="application/zip")
        response["Cache-Control"] = "no-store"
        return response
