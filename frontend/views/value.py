"""Customer-value pages (R-VAL-1 … R-VAL-6): the value dashboard with its charts and exports, the
drill-down lists, the early-warning list and the value settings.

Thin views: figures come from crm.value.selectors (and the pipeline, tiers and campaigns selectors
for their panels), writes go through crm.value.services. Charts are drawn in the browser by the
vendored Chart.js from the same numbers the CSV exports carry.
"""
import csv
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from accounts.models import User
from accounts.roles import Cap
from caravan import formatting
from caravan.forms import errors_onto
from caravan.tenancy import require_agency
from crm.customers.exports import _Line, _row
from crm.pipeline import selectors as pipeline_selectors
from crm.tiers import selectors as tiers_selectors
from crm.value import selectors, services
from crm.value.models import CustomerValue, LifetimeFit, ValueSettings, ValueWarning

from .base import AgencyPage

PER_PAGE = 50


def _campaign_results() -> list[dict]:
    """The campaigns panel: the latest campaigns' results."""
    from crm.campaigns.selectors import recent_results

    return recent_results(limit=6)


class ValueDashboardView(AgencyPage, View):
    """Segments and their margin share, the 80/20 view, the RFM grid, the scale × loyalty map with the
    strategy for each quadrant, the revenue and margin trend, the pipeline funnel, campaign results,
    service-level attainment, and the dormant and at-risk customers."""

    required_cap = Cap.REPORTS_VIEW

    def get(self, request):
        today = timezone.localdate()
        segments = selectors.segment_summary()
        quadrants = selectors.quadrant_summary()
        trend = selectors.trend(today=today)
        funnel = pipeline_selectors.conversion(start=today - timedelta(days=365), end=today)
        date_from, date_to = tiers_selectors.default_period()
        service = tiers_selectors.service_level_report(date_from=date_from, date_to=date_to)
        campaigns = _campaign_results()
        counts = selectors.warning_counts()
        charts = {
            "segments": {"labels": [str(s["label"]) for s in segments],
                         "customers": [s["customers"] for s in segments],
                         "margin_share": [round(s["margin_share"] * 100, 1) for s in segments],
                         "series": [_("Customers"), _("Share of margin (%)")]},
            "quadrants": {"labels": [str(q["label"]) for q in quadrants], "customers": [q["customers"] for q in quadrants],
                          "value": [float(q["value"]) for q in quadrants], "series": [_("Customers")]},
            "trend": {"labels": [formatting.month(row["month"]) for row in trend],
                      "revenue": [float(row["revenue"]) for row in trend],
                      "margin": [float(row["margin"]) for row in trend],
                      "series": [_("Revenue"), _("Margin")]},
            "funnel": {"labels": [s["stage"].name for s in funnel["stages"]], "reached": [s["reached"] for s in funnel["stages"]],
                       "series": [_("Opportunities that reached the stage")]},
            "campaigns": {"labels": [c["name"] for c in campaigns],
                          "send_rate": [c["send_conversion"] for c in campaigns],
                          "control_rate": [c["control_conversion"] for c in campaigns],
                          "series": [_("Mailed: booked (%)"), _("Control: booked (%)")]},
            "service": {"labels": [row.label or "—" for row in service.by_tier],
                        "attainment": [row.attainment or 0 for row in service.by_tier],
                        "series": [_("Attainment (%)")]},
        }
        return render(request, "frontend/value/dashboard.html", {
            "segments": segments, "quadrants": quadrants, "pareto": selectors.pareto(), "grid": selectors.rfm_grid(),
            "funnel": funnel, "service": service, "campaigns": campaigns, "charts": charts,
            "warning_counts": [(value, label, counts.get(value, 0)) for value, label in ValueWarning.Kind.choices],
            "can_settings": request.user.can(Cap.SETTINGS_MANAGE),
            "at_risk": selectors.at_risk(), "dormant": selectors.dormant(),
            "fit": LifetimeFit.objects.order_by("-fitted_at").first(), "rules": services.value_settings(),
            "scored": CustomerValue.objects.count(), "currency": require_agency().currency,
        })


EXPORTS = ("segments", "quadrants", "rfm", "trend", "customers")


class ValueExportView(AgencyPage, View):
    """``/value/export/<what>.csv``: the numbers behind each chart (UTF-8 with BOM, formula-safe)."""

    required_cap = Cap.REPORTS_VIEW

    def get(self, request, what):
        if what not in EXPORTS:
            raise Http404
        writer = csv.writer(_Line())
        rows = getattr(self, what)(request)
        response = StreamingHttpResponse(("\ufeff" if i == 0 else "") + _row(writer, row) for i, row in enumerate(rows))
        response["Content-Type"] = "text/csv; charset=utf-8"
        response["Content-Disposition"] = f'attachment; filename="value-{what}-{timezone.localdate().isoformat()}.csv"'
        return response

    def segments(self, request):
        yield [_("segment"), _("customers"), _("revenue to date"), _("margin to date"), _("share of margin (%)")]
        for s in selectors.segment_summary():
            yield [s["label"], s["customers"], s["revenue"], s["margin"], round(s["margin_share"] * 100, 1)]

    def quadrants(self, request):
        yield [_("quadrant"), _("customers"), _("value in the window"), _("strategy")]
        for q in selectors.quadrant_summary():
            yield [q["label"], q["customers"], q["value"], q["strategy"]]

    def rfm(self, request):
        yield [_("recency score"), _("frequency score"), _("customers"), _("value in the window")]
        for line in selectors.rfm_grid():
            for cell in line:
                yield [cell["r"], cell["f"], cell["customers"], cell["value"]]

    def trend(self, request):
        yield [_("month"), _("trips"), _("revenue"), _("margin")]
        for row in selectors.trend():
            yield [row["month"].strftime("%Y-%m"), row["trips"], row["revenue"], row["margin"]]

    def customers(self, request):
        segment, quadrant = _drill_filters(request)
        yield [_("customer id"), _("name"), _("account manager"), "RFM", _("value segment"), _("scale × loyalty"),
               _("trips in all"), _("revenue to date"), _("margin to date"), _("days late paying, on average"),
               _("probability still active (%)"), _("expected trips, next 12 months"),
               _("expected value, next 12 months")]
        for row in selectors.customers_in(segment=segment, quadrant=quadrant).iterator(chunk_size=2000):
            owner = row.customer.owner
            yield [row.customer_id, row.customer.name, (owner.full_name or owner.email) if owner else "", row.rfm,
                   row.get_segment_display(), row.get_quadrant_display() or "", row.trips_total,
                   row.revenue_total, row.margin_total, "" if row.days_late is None else round(row.days_late, 1),
                   "" if row.p_alive is None else round(row.p_alive * 100),
                   "" if row.expected_trips_12m is None else round(row.expected_trips_12m, 2),
                   "" if row.expected_value_12m is None else row.expected_value_12m]


def _drill_filters(request) -> tuple[str, str]:
    segment, quadrant = request.GET.get("segment", ""), request.GET.get("quadrant", "")
    if segment and segment not in CustomerValue.Segment.values or quadrant and quadrant not in CustomerValue.Quadrant.values:
        raise Http404
    return segment, quadrant


class ValueCustomersView(AgencyPage, View):
    """The customers of one segment or quadrant, most valuable first, with what to do about them."""

    required_cap = Cap.REPORTS_VIEW

    def get(self, request):
        segment, quadrant = _drill_filters(request)
        page = Paginator(selectors.customers_in(segment=segment, quadrant=quadrant), PER_PAGE).get_page(
            request.GET.get("page"))
        title = (CustomerValue.Segment(segment).label if segment else
                 CustomerValue.Quadrant(quadrant).label if quadrant else _("All scored customers"))
        return render(request, "frontend/value/customers.html", {
            "page": page, "title": title, "segment": segment, "quadrant": quadrant,
            "hint": selectors.SEGMENT_HINTS.get(segment) if segment else selectors.STRATEGIES.get(quadrant),
            "query": urlencode({key: value for key, value in (("segment", segment), ("quadrant", quadrant)) if value}),
            "currency": require_agency().currency})


class WarningListView(AgencyPage, View):
    """The early warnings: managers see everyone's, others their own customers'."""

    required_cap = Cap.VALUE_VIEW

    def get(self, request):
        user = request.user
        everyone = user.can(Cap.PIPELINE_MANAGE) or user.can(Cap.REPORTS_VIEW)
        kind = request.GET.get("kind", "")
        if kind and kind not in ValueWarning.Kind.values:
            kind = ""
        owner = None if everyone else user
        if everyone and request.GET.get("owner", "").isdigit():
            owner = User.objects.filter(pk=request.GET["owner"]).first()
        show_closed = request.GET.get("closed") == "1"
        page = Paginator(selectors.warning_list(kind=kind, owner=owner, open_only=not show_closed), PER_PAGE).get_page(
            request.GET.get("page"))
        return render(request, "frontend/value/warnings.html", {
            "page": page, "kind": kind, "kinds": ValueWarning.Kind.choices, "everyone": everyone, "owner": owner,
            "staff": User.objects.filter(is_active=True, is_operator=False).order_by("full_name", "email") if everyone else [],
            "show_closed": show_closed, "currency": require_agency().currency,
            "query": urlencode({key: request.GET[key] for key in ("kind", "owner", "closed") if request.GET.get(key)})})


class ValueSettingsForm(forms.ModelForm):
    class Meta:
        model = ValueSettings
        fields = ["window_months", "monetary_basis", "late_days", "spend_drop_share", "complaints_window_days",
                  "complaints_rise_min", "dormant_days", "at_risk_p_alive"]


class ValueSettingsView(AgencyPage, View):
    """How value is measured and when warnings fire; "recompute now"."""

    required_cap = Cap.SETTINGS_MANAGE
    template = "frontend/value/settings.html"

    def get(self, request):
        rules = services.value_settings()
        return render(request, self.template, {"form": ValueSettingsForm(instance=rules), "rules": rules})

    def post(self, request):
        rules = services.value_settings()
        if request.POST.get("action") == "recompute":
            services.value_queue(actor=request.user)
            messages.success(request, _("Recomputing customer value now; the new figures show in a minute or two."))
            return redirect("value_settings")
        form = ValueSettingsForm(request.POST, instance=rules)
        if form.is_valid():
            with errors_onto(form):
                services.settings_save(actor=request.user, **form.cleaned_data)
                messages.success(request, _("Saved. The new rules apply from the next computation."))
                return redirect("value_settings")
        return render(request, self.template, {"form": form, "rules": rules}, status=400)
