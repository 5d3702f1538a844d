"""Service-tier pages (R-TIER-1 … R-TIER-3): the tier settings, a customer's tier with its override
and history, the clocks, and the service-level report with its CSV export.

Thin views: writes go through crm.tiers.services, reads through crm.tiers.selectors. Defining
tiers needs ``policies.manage``; overriding a customer's tier ``policies.manage`` or
``pipeline.manage``; the report is for managers and report readers.
"""
import csv
from functools import partial
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.roles import Cap
from caravan.forms import errors_onto
from caravan.tenancy import require_agency
from crm.customers.exports import _Line, _row
from crm.customers.models import Customer
from crm.tiers import selectors, services
from crm.tiers.models import ServiceClock, ServiceTier, TierRecompute, TierSettings
from crm.value.models import CustomerValue

from .base import AgencyPage
from .periods import period_form
from .customers import DATE_INPUT

PER_PAGE = 50
MONEY_INPUT = forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.00"})


# --- forms ----------------------------------------------------------------------------------------

class TierForm(forms.ModelForm):
    """Field types and labels only; the rules are in ``services.tier_save``."""

    value_segments = forms.MultipleChoiceField(
        label=gettext_lazy("Value segments"), choices=CustomerValue.Segment.choices, required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Only customers in one of these segments (customer value, computed nightly); none: any."))

    class Meta:
        model = ServiceTier
        fields = ["name", "color", "applies_to", "min_spend_12m", "min_spend_month", "min_trips_12m",
                  "value_segments", "dedicated_manager", "lead_response_hours", "request_response_hours",
                  "complaint_response_hours", "visit_cadence", "outreach_days", "perks"]
        widgets = {"color": forms.TextInput(attrs={"type": "color"}), "min_spend_12m": MONEY_INPUT,
                   "min_spend_month": MONEY_INPUT, "perks": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("min_spend_12m", "min_spend_month"):
            self.fields[name].help_text = _("In %(currency)s; empty: no minimum.") % {"currency": currency}
        self.fields["min_trips_12m"].help_text = _("Empty: no minimum.")
        for name in services.HOURS_FIELDS:
            self.fields[name].help_text = _("Empty: no target, no clock.")

    def _post_clean(self):
        """No model validation here: ``services.tier_save`` checks every field and reports each error
        on its field (the model's constraints would only give one error for the whole form)."""


class TierSettingsForm(forms.ModelForm):
    class Meta:
        model = TierSettings
        fields = ["hysteresis_percent", "min_days_in_tier", "notify_owner"]


class OverrideForm(forms.Form):
    tier = forms.ModelChoiceField(label=gettext_lazy("Tier"), queryset=ServiceTier.objects.none())
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300, required=False,
                             widget=forms.TextInput(attrs={"size": 50}))
    until = forms.DateField(label=gettext_lazy("Until (included)"), required=False, widget=DATE_INPUT,
                            help_text=gettext_lazy("Empty: until someone removes the override."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].queryset = ServiceTier.objects.order_by("rank")


PeriodForm = period_form(selectors.default_period)


# --- tier settings --------------------------------------------------------------------------------

class TierSettingsView(AgencyPage, View):
    """Define, order and edit the tiers; the agency-wide rules; "recompute now". Each form posts an
    ``action``; a form with errors is shown again with them (400)."""

    required_cap = Cap.POLICIES_MANAGE
    template = "frontend/tiers/settings.html"

    def context(self, **given) -> dict:
        currency = require_agency().currency
        tiers = selectors.tier_list()
        return {
            "tier_forms": [(tier, given.get(f"tier-{tier.pk}") or TierForm(instance=tier, prefix=f"tier-{tier.pk}",
                                                                            currency=currency)) for tier in tiers],
            "new_tier_form": given.get("tier-new") or TierForm(prefix="tier-new", currency=currency),
            "rules_form": given.get("rules") or TierSettingsForm(instance=services.tier_settings(), prefix="rules"),
            "rules": services.tier_settings(), "currency": currency,
            "has_default": any(tier.is_default for tier in tiers),
            **recompute_context(services.recompute_latest()),
        }

    def get(self, request):
        return render(request, self.template, self.context())

    def post(self, request):
        action, _sep, target = request.POST.get("action", "").partition(":")
        handler = {"tier": self.tier, "move": self.move, "rules": self.rules, "recompute": self.recompute}.get(action)
        if handler is None:
            raise Http404
        return handler(request, target)

    def _saved(self, message=None):
        messages.success(self.request, message or _("Saved."))
        return redirect("tier_settings")

    def _submit(self, request, key, form, save):
        if form.is_valid():
            with errors_onto(form):
                save(**form.cleaned_data)
                return self._saved()
        return render(request, self.template, self.context(**{key: form}), status=400)

    def tier(self, request, target):
        tier = get_object_or_404(ServiceTier, pk=target) if target != "new" else None
        if tier is not None and request.POST.get("delete"):
            services.tier_delete(actor=request.user, tier=tier)
            return self._saved(_("Tier deleted. Its customers get a tier at the next assignment."))
        key = f"tier-{target}"
        form = TierForm(request.POST, instance=tier, prefix=key, currency=require_agency().currency)
        return self._submit(request, key, form, partial(services.tier_save, actor=request.user, tier=tier))

    def move(self, request, target):
        tier = get_object_or_404(ServiceTier, pk=target)
        services.tier_move(actor=request.user, tier=tier, up=request.POST.get("direction") == "up")
        return self._saved()

    def rules(self, request, target):
        form = TierSettingsForm(request.POST, instance=services.tier_settings(), prefix="rules")
        return self._submit(request, "rules", form, partial(services.tier_settings_update, actor=request.user))

    def recompute(self, request, target):
        services.assignment_queue(actor=request.user)
        return self._saved(_("Recomputing the tiers now; its progress shows below."))


def recompute_context(recompute: TierRecompute | None) -> dict:
    """What the "recompute now" progress shows (frontend/tiers/_recompute.html)."""
    running = recompute is not None and recompute.status == TierRecompute.Status.RUNNING
    return {"recompute": recompute, "recompute_started": running and bool(recompute.lease_owner),
            "recompute_measuring": services.assignment_population() if running else None}


class TierRecomputeView(AgencyPage, View):
    """The progress of one "recompute now", polled by its fragment (htmx) while it runs, as imports and
    campaign sends show theirs: waiting for a worker, recomputing (how many customers), done with its counts."""

    required_cap = Cap.POLICIES_MANAGE

    def get(self, request, pk):
        recompute = get_object_or_404(TierRecompute, pk=pk)
        return render(request, "frontend/tiers/_recompute.html", recompute_context(recompute))


# --- one customer's tier --------------------------------------------------------------------------

def _customer(pk) -> Customer:
    return get_object_or_404(Customer, pk=pk, merged_into__isnull=True)


class CustomerTierView(AgencyPage, View):
    """A customer's tier: why, since when, the measures, the service promised, the history; and for
    managers the override form."""

    required_cap = Cap.CUSTOMERS_VIEW
    template = "frontend/tiers/customer.html"

    def context(self, request, customer, form=None) -> dict:
        status = selectors.customer_tier(customer)
        initial = {}
        if status is not None and status.has_override:
            initial = {"tier": status.override_tier_id, "reason": status.override_reason, "until": status.override_until}
        return {"customer": customer, "status": status, "tier": status.tier if status else None,
                "history": selectors.tier_history(customer, limit=50),
                "clocks": list(selectors.clock_list(filters={"customer": customer.pk})[:20]),
                "can_override": services.can_override(request.user), "form": form or OverrideForm(initial=initial),
                "currency": require_agency().currency, "last_run": services.tier_settings().last_run_at}

    def get(self, request, pk):
        return render(request, self.template, self.context(request, _customer(pk)))

    def post(self, request, pk):
        customer = _customer(pk)
        if not services.can_override(request.user):
            raise PermissionDenied
        if request.POST.get("remove"):
            try:
                services.override_remove(actor=request.user, customer=customer)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, _("Override removed; the customer is back on the computed tier."))
            return redirect("customer_tier", pk=customer.pk)
        form = OverrideForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.override_set(actor=request.user, customer=customer, **form.cleaned_data)
                messages.success(request, _("Tier overridden."))
                return redirect("customer_tier", pk=customer.pk)
        return render(request, self.template, self.context(request, customer, form), status=400)


# --- clocks and the report ------------------------------------------------------------------------

class ClockListView(AgencyPage, View):
    """Service-level clocks: everyone's for managers, one's own otherwise."""

    def permits(self, user) -> bool:
        return selectors.sees_all_clocks(user) or user.can(Cap.PIPELINE_WORK) or user.can(Cap.COMPLAINTS_HANDLE)

    def get(self, request):
        user = request.user
        typed = {key: request.GET.get(key, "").strip() for key in ("state", "kind", "owner")}
        filters = {"state": typed["state"] if typed["state"] in selectors.CLOCK_STATES else "",
                   "kind": typed["kind"] if typed["kind"] in ServiceClock.Kind.values else "",
                   "owner": typed["owner"] if typed["owner"].isdigit() else ""}
        page = Paginator(selectors.clock_list(filters=filters, user=user), PER_PAGE).get_page(request.GET.get("page"))
        return render(request, "frontend/tiers/clocks.html", {
            "page": page, "filters": typed, "filter_query": urlencode({k: v for k, v in typed.items() if v}),
            "kinds": ServiceClock.Kind.choices, "sees_all": selectors.sees_all_clocks(user), "now": timezone.now(),
            "states": [("running", _("Running")), ("near", _("Near the target")), ("breached", _("Breached")),
                       ("met", _("Answered within target")), ("missed", _("Target missed"))]})


class _ReportPage(AgencyPage, View):
    def permits(self, user) -> bool:
        return selectors.can_see_report(user)

    def report(self, request):
        form = PeriodForm(request.GET or None)
        date_from, date_to = form.period()
        return form, selectors.service_level_report(date_from=date_from, date_to=date_to)


class ServiceLevelReportView(_ReportPage):
    def get(self, request):
        form, report = self.report(request)
        query = urlencode({"date_from": report.date_from.isoformat(), "date_to": report.date_to.isoformat()})
        return render(request, "frontend/tiers/report.html", {
            "form": form, "report": report, "csv_url": reverse("service_level_report_csv") + "?" + query,
            "sections": [(_("By tier"), "by-tier", report.by_tier), (_("By kind"), "by-kind", report.by_kind),
                         (_("By team"), "by-team", report.by_team), (_("By person"), "by-person", report.by_person)]})


class ServiceLevelReportCsvView(_ReportPage):
    """The report as CSV (UTF-8 with BOM, formula-safe): one line per group."""

    def get(self, request):
        _form, report = self.report(request)
        writer = csv.writer(_Line())
        sections = [(_("overall"), [report.overall]), (_("tier"), report.by_tier), (_("kind"), report.by_kind),
                    (_("team"), report.by_team), (_("person"), report.by_person)]

        def lines():
            yield "\ufeff" + _row(writer, [_("group"), _("name"), _("due"), _("within target"), _("missed"),
                                           _("attainment (%)"), _("median response (hours)")])
            for group, rows in sections:
                for row in rows:
                    yield _row(writer, [group, row.label or ("—" if group != _("overall") else ""), row.total,
                                        row.met, row.missed, "" if row.attainment is None else row.attainment,
                                        "" if row.median_hours is None else row.median_hours])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (f'attachment; filename="service-levels-{report.date_from.isoformat()}-'
                                           f'{report.date_to.isoformat()}.csv"')
        return response
