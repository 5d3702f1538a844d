"""Key-account visit pages (R-TIER-4): plans, visit records, the report, the calendar feed.

Thin views: writes go through crm.visits.services, reads through crm.visits.selectors. Anyone who
works the pipeline records visits and plans them for the accounts they manage; managers plan for
anyone and see everyone's.
"""
import csv
from datetime import datetime

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.models import User
from accounts.roles import Cap
from caravan.forms import errors_onto
from caravan.tenancy import current_agency, require_agency
from crm.customers.exports import _Line, _row
from crm.customers.models import Customer, Employment
from crm.pipeline.models import Task
from crm.visits import ical, selectors, services
from crm.visits.models import VisitPlan

from .base import AgencyPage
from .periods import period_form
from .customers import DATE_INPUT

TIME_INPUT = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _colleagues():
    return User.objects.filter(is_active=True, is_operator=False).order_by("full_name", "email")


def _account(request) -> Customer | None:
    raw = request.GET.get("account") or request.POST.get("account_id") or ""
    return get_object_or_404(Customer, pk=raw, merged_into__isnull=True) if raw.isdigit() else None


# --- plans ----------------------------------------------------------------------------------------

class PlanForm(forms.ModelForm):
    """Field types and labels; the rules are in ``services.plan_save``."""

    class Meta:
        model = VisitPlan
        fields = ["owner", "cadence", "weekday", "week_of_month", "time_of_day", "duration_minutes", "starts_on",
                  "ends_on", "location", "notes", "active"]
        widgets = {"time_of_day": TIME_INPUT, "starts_on": DATE_INPUT, "ends_on": DATE_INPUT,
                   "notes": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        owners = _colleagues()
        if not user.can(Cap.PIPELINE_MANAGE):
            owners = owners.filter(pk=user.pk)
        self.fields["owner"].queryset = owners
        self.fields["owner"].empty_label = None

    def _post_clean(self):
        """No model validation here: ``services.plan_save`` reports each error on its field."""


class PlanFormView(AgencyPage, View):
    """Create (``/visits/plans/new/?account=<id>``) or change (``/visits/plans/<id>/``) a visit plan."""

    required_cap = Cap.PIPELINE_WORK
    template = "frontend/visits/plan_form.html"

    def _plan(self, request, pk) -> tuple[VisitPlan | None, Customer]:
        if pk is None:
            account = _account(request)
            if account is None:
                raise Http404
            return None, account
        plan = get_object_or_404(VisitPlan.objects.select_related("account", "owner"), pk=pk)
        return plan, plan.account

    def _render(self, request, form, plan, account, status=200):
        return render(request, self.template, {"form": form, "plan": plan, "account": account,
                                               "timezone": require_agency().time_zone}, status=status)

    def get(self, request, pk=None):
        plan, account = self._plan(request, pk)
        if not services.can_plan_for(request.user, account):
            raise PermissionDenied
        initial = {} if plan else {"owner": account.owner_id if account.owner_id else request.user.pk,
                                   "starts_on": services.agency_today(), "time_of_day": "10:00",
                                   "cadence": _tier_cadence(account)}
        return self._render(request, PlanForm(instance=plan, initial=initial, user=request.user), plan, account)

    def post(self, request, pk=None):
        plan, account = self._plan(request, pk)
        if not services.can_plan_for(request.user, account):
            raise PermissionDenied
        form = PlanForm(request.POST, instance=plan, user=request.user)
        if form.is_valid():
            with errors_onto(form):
                plan = services.plan_save(actor=request.user, plan=plan, account=account, **form.cleaned_data)
                messages.success(request, _("Visit plan saved; its slots are in the task list."))
                return redirect("customer_detail", pk=account.pk)
        return self._render(request, form, plan, account, status=400)


def _tier_cadence(account: Customer) -> str:
    """A new plan's cadence: what the account's service tier promises, when that is one we plan."""
    from crm.tiers.selectors import tier_of

    tier = tier_of(account)
    cadence = tier.visit_cadence if tier else ""
    return cadence if cadence in VisitPlan.Cadence.values else VisitPlan.Cadence.WEEKLY


# --- visit records --------------------------------------------------------------------------------

class VisitForm(forms.Form):
    visited_at = forms.DateTimeField(label=gettext_lazy("When"), widget=DATETIME_INPUT)
    staff = forms.ModelMultipleChoiceField(label=gettext_lazy("Our people"), queryset=User.objects.none(),
                                           required=False)
    met_people = forms.ModelMultipleChoiceField(label=gettext_lazy("Their people"), queryset=Customer.objects.none(),
                                                required=False)
    met_others = forms.CharField(label=gettext_lazy("Also met"), max_length=300, required=False,
                                 help_text=gettext_lazy("Names and titles of people not on file, e.g. 王总 (CFO)."))
    executive_ours = forms.BooleanField(label=gettext_lazy("One of our executives took part"), required=False)
    executive_theirs = forms.BooleanField(label=gettext_lazy("One of their executives took part"), required=False)
    topics = forms.CharField(label=gettext_lazy("Topics"), widget=forms.Textarea(attrs={"rows": 3}), required=False)
    concerns = forms.CharField(label=gettext_lazy("Concerns and complaints"), widget=forms.Textarea(attrs={"rows": 2}),
                               required=False)
    next_steps = forms.CharField(label=gettext_lazy("Next steps"), widget=forms.Textarea(attrs={"rows": 2}),
                                 required=False)
    next_step_due = forms.DateField(label=gettext_lazy("Next step due"), widget=DATE_INPUT, required=False)
    satisfaction = forms.TypedChoiceField(label=gettext_lazy("Satisfaction"), coerce=int, empty_value=None,
                                          required=False, choices=[("", "—")] + [(n, f"{n}/5") for n in range(1, 6)])

    def __init__(self, *args, account: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["staff"].queryset = _colleagues()
        people = Customer.objects.filter(pk__in=Employment.objects.filter(company=account).values("person_id"))
        self.fields["met_people"].queryset = people.order_by("name") if account.kind == Customer.Kind.COMPANY \
            else Customer.objects.filter(pk=account.pk)


class VisitCreateView(AgencyPage, View):
    """Record a visit to ``?account=<id>`` (from its card, the visits page or a slot's ``?task=<id>``)."""

    required_cap = Cap.PIPELINE_WORK
    template = "frontend/visits/visit_form.html"

    def _task(self, request, account) -> Task | None:
        raw = request.GET.get("task") or request.POST.get("task") or ""
        if not raw.isdigit():
            return None
        return get_object_or_404(Task, pk=raw, customer=account, kind=Task.Kind.VISIT)

    def _render(self, request, form, account, task, status=200):
        return render(request, self.template, {"form": form, "account": account, "task": task}, status=status)

    def get(self, request):
        account = _account(request)
        if account is None:
            raise Http404
        task = self._task(request, account)
        moment = task.due_at if task and task.due_at <= timezone.now() else timezone.now()
        with timezone.override(require_agency().time_zone):
            local = timezone.localtime(moment).replace(second=0, microsecond=0, tzinfo=None)
        form = VisitForm(account=account, initial={"visited_at": local, "staff": [request.user.pk]})
        return self._render(request, form, account, task)

    def post(self, request):
        account = _account(request)
        if account is None:
            raise Http404
        task = self._task(request, account)
        form = VisitForm(request.POST, account=account)
        if form.is_valid():
            data = dict(form.cleaned_data)
            data["visited_at"] = _aware(data["visited_at"])
            with errors_onto(form):
                visit = services.visit_record(actor=request.user, account=account, task=task, **data)
                messages.success(request, _("Visit recorded."))
                return redirect("visit_detail", pk=visit.pk)
        return self._render(request, form, account, task, status=400)


def _aware(moment: datetime) -> datetime:
    """A datetime typed in the form, read in the agency's time zone."""
    if timezone.is_aware(moment):
        moment = moment.replace(tzinfo=None)
    with timezone.override(require_agency().time_zone):
        return timezone.make_aware(moment)


class VisitDetailView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_VIEW

    def get(self, request, pk):
        visit = get_object_or_404(selectors.visit_list(), pk=pk)
        return render(request, "frontend/visits/visit_detail.html", {"visit": visit})


# --- the visits page, the report, the calendar ----------------------------------------------------

class VisitHomeView(AgencyPage, View):
    """One's visit plans, the next two weeks of slots, missed slots and recent visits (everyone's for managers)."""

    required_cap = Cap.PIPELINE_WORK

    def get(self, request):
        user = request.user
        mine = None if selectors.sees_all(user) else user
        today = services.agency_today()
        return render(request, "frontend/visits/home.html", {
            "plans": selectors.plan_list(user=user).filter(active=True),
            "upcoming": selectors.upcoming_slots(owner=mine)[:50],
            "missed": selectors.missed_slots(date_from=today.replace(day=1), owner=mine)[:50],
            "recent": selectors.visit_list(owner=mine)[:20],
            "sees_all": mine is None,
            "feed_url": request.build_absolute_uri(reverse("visit_calendar", args=[ical.feed_token(user)])),
        })


PeriodForm = period_form(selectors.default_period)


def _report(request):
    """The period form and the report of its period (the default period while the form has errors)."""
    form = PeriodForm(request.GET or None)
    date_from, date_to = form.period()
    mine = None if selectors.sees_all(request.user) else request.user
    return form, selectors.visit_report(date_from=date_from, date_to=date_to, owner=mine)


class VisitReportView(AgencyPage, View):
    """Planned, held and missed visits and executive visits per account manager and per account."""

    required_cap = Cap.PIPELINE_WORK

    def get(self, request):
        form, report = _report(request)
        return render(request, "frontend/visits/report.html", {"form": form, "report": report,
                                                                "query": request.GET.urlencode()},
                      status=400 if form.errors else 200)


class VisitReportCsvView(AgencyPage, View):
    required_cap = Cap.PIPELINE_WORK

    def get(self, request):
        form, report = _report(request)
        if form.errors:
            return HttpResponse(" ".join(e for errors in form.errors.values() for e in errors), status=400)
        header = [_("group"), _("name"), _("planned"), _("held"), _("missed"), _("visits"), _("executive visits")]
        rows = [[_("account manager"), r["name"], r["planned"], r["held"], r["missed"], r["visits"], r["executive"]]
                for r in report.by_owner]
        rows += [[_("account"), r["name"], r["planned"], r["held"], r["missed"], r["visits"], r["executive"]]
                 for r in report.by_account]
        writer = csv.writer(_Line())

        def lines():  # UTF-8 with a BOM (Excel reads Chinese), formula-safe cells
            yield "\ufeff" + _row(writer, header)
            for row in rows:
                yield _row(writer, row)

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (f'attachment; filename="visits-{report.date_from}-{report.date_to}.csv"')
        return response


def calendar_feed(request, token: str):
    """Public (no sign-in; calendar apps cannot sign in): the signed token names the colleague."""
    if current_agency() is None:
        raise Http404
    user = ical.user_from_token(token)
    if user is None:
        raise Http404
    response = HttpResponse(ical.feed(user, host=request.get_host()), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="visits.ics"'
    return response
