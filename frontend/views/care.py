"""After-sales care pages (R-CARE-1, R-CARE-2): complaints, the survey report, the public survey page.

Thin views: writes go through crm.care.services, reads through crm.care.selectors.
"""
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.roles import Cap
from caravan.forms import MoneyField, errors_onto
from caravan.tenancy import current_agency, require_agency
from crm.care import selectors, services
from crm.care.models import Complaint, Survey
from crm.customers.models import Customer
from crm.trips.models import Trip

from .base import AgencyPage
from .periods import period_form
from .customers import staff_choices

PER_PAGE = 50
FILTERS = ("status", "severity", "owner", "overdue", "escalated")


# --- forms ----------------------------------------------------------------------------------------

class ComplaintForm(forms.Form):
    category = forms.ChoiceField(label=gettext_lazy("Category"), choices=Complaint.Category.choices)
    severity = forms.ChoiceField(label=gettext_lazy("Severity"), choices=Complaint.Severity.choices,
                                 help_text=gettext_lazy("Sets the deadline: critical 4 hours, high 1 day, "
                                                        "medium 3 days, low 1 week."))
    description = forms.CharField(label=gettext_lazy("What happened"), widget=forms.Textarea(attrs={"rows": 5}))
    owner = forms.ModelChoiceField(label=gettext_lazy("Owner"), queryset=staff_choices().none(), required=False,
                                   help_text=gettext_lazy("Empty: the trip's owner, else the account manager, else you."))
    trip = forms.ModelChoiceField(label=gettext_lazy("Trip"), queryset=Trip.objects.none(), required=False)

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = staff_choices()
        self.fields["trip"].queryset = (Trip.objects.filter(customer=customer)
                                        | Trip.objects.filter(travelers__customer=customer)).distinct()


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=gettext_lazy("Status"), choices=Complaint.Status.choices)
    resolution = forms.CharField(label=gettext_lazy("Resolution"), required=False,
                                 widget=forms.Textarea(attrs={"rows": 3}))
    compensation = forms.ChoiceField(label=gettext_lazy("Compensation"), choices=Complaint.Compensation.choices,
                                     required=False)
    compensation_amount = MoneyField(label=gettext_lazy("Amount"), required=False, min_value=0)


class AssignForm(forms.Form):
    owner = forms.ModelChoiceField(label=gettext_lazy("Owner"), queryset=staff_choices().none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = staff_choices().filter(is_active=True)


PeriodForm = period_form(selectors.default_period)


class SurveyAnswerForm(forms.Form):
    csat = forms.TypedChoiceField(label=gettext_lazy("How satisfied were you with your trip?"), coerce=int,
                                  choices=[(n, str(n)) for n in range(1, 6)], widget=forms.RadioSelect)
    nps = forms.TypedChoiceField(label=gettext_lazy("How likely are you to recommend us to a friend?"), coerce=int,
                                 choices=[(n, str(n)) for n in range(0, 11)], widget=forms.RadioSelect)
    comment = forms.CharField(label=gettext_lazy("Anything you would like to tell us?"), required=False,
                              max_length=4000, widget=forms.Textarea(attrs={"rows": 4}))


# --- complaints -----------------------------------------------------------------------------------

def _list_filters(params) -> tuple[dict, dict]:
    typed = {key: params.get(key, "").strip() for key in FILTERS}
    selector_filters = {
        "status": typed["status"] if typed["status"] in Complaint.Status.values else "",
        "severity": typed["severity"] if typed["severity"] in Complaint.Severity.values else "",
        "owner": typed["owner"] if typed["owner"] == "none" or typed["owner"].isdigit() else "",
        "overdue": typed["overdue"] == "1", "escalated": typed["escalated"] == "1",
    }
    return typed, selector_filters


class ComplaintListView(AgencyPage, View):
    required_cap = Cap.COMPLAINTS_HANDLE

    def get(self, request):
        typed, selector_filters = _list_filters(request.GET)
        page = Paginator(selectors.complaint_list(filters=selector_filters), PER_PAGE).get_page(request.GET.get("page"))
        return render(request, "frontend/care/complaint_list.html", {
            "page": page, "filters": typed, "filter_query": urlencode({k: v for k, v in typed.items() if v}),
            "statuses": Complaint.Status.choices, "severities": Complaint.Severity.choices, "staff": staff_choices(),
            "now": timezone.now()})


def _complaint(pk) -> Complaint:
    return get_object_or_404(Complaint.objects.select_related("customer", "owner", "trip", "survey", "created_by"), pk=pk)


class ComplaintDetailView(AgencyPage, View):
    required_cap = Cap.COMPLAINTS_HANDLE

    @staticmethod
    def context(complaint, status_form=None, assign_form=None) -> dict:
        moves = services.COMPLAINT_TRANSITIONS[complaint.status]
        return {
            "complaint": complaint, "now": timezone.now(),
            "moves": [(value, label) for value, label in Complaint.Status.choices
                      if value in moves and value != Complaint.Status.RESOLVED],
            "can_resolve": Complaint.Status.RESOLVED in moves,
            "status_form": status_form or StatusForm(initial={"status": Complaint.Status.RESOLVED}),
            "assign_form": assign_form or AssignForm(initial={"owner": complaint.owner_id}),
        }

    def get(self, request, pk):
        return render(request, "frontend/care/complaint_detail.html", self.context(_complaint(pk)))


class ComplaintStatusView(AgencyPage, View):
    required_cap = Cap.COMPLAINTS_HANDLE

    def post(self, request, pk):
        complaint = _complaint(pk)
        form = StatusForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.complaint_set_status(actor=request.user, complaint=complaint, **form.cleaned_data)
                messages.success(request, _("Complaint updated."))
                return redirect("complaint_detail", pk=complaint.pk)
        return render(request, "frontend/care/complaint_detail.html",
                      ComplaintDetailView.context(complaint, status_form=form), status=400)


class ComplaintAssignView(AgencyPage, View):
    required_cap = Cap.COMPLAINTS_HANDLE

    def post(self, request, pk):
        complaint = _complaint(pk)
        form = AssignForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.complaint_assign(actor=request.user, complaint=complaint, owner=form.cleaned_data["owner"])
                messages.success(request, _("Complaint reassigned."))
                return redirect("complaint_detail", pk=complaint.pk)
        return render(request, "frontend/care/complaint_detail.html",
                      ComplaintDetailView.context(complaint, assign_form=form), status=400)


class ComplaintCreateView(AgencyPage, View):
    """Log a complaint for a customer; ``?trip=<id>`` or ``?survey=<id>`` prefill it."""

    required_cap = Cap.COMPLAINTS_HANDLE
    template = "frontend/care/complaint_form.html"

    def _survey(self, request, customer) -> Survey | None:
        survey_id = request.GET.get("survey") or request.POST.get("survey") or ""
        if not survey_id.isdigit():
            return None
        return get_object_or_404(Survey.objects.select_related("trip"), pk=survey_id, customer=customer)

    def get(self, request, pk):
        customer = get_object_or_404(Customer, pk=pk, merged_into__isnull=True)
        survey = self._survey(request, customer)
        form = ComplaintForm(customer=customer, initial={"severity": Complaint.Severity.MEDIUM})
        trip_id = request.GET.get("trip", "")
        if survey is not None:
            form.initial.update(trip=survey.trip_id, severity=Complaint.Severity.HIGH, description=survey.comment)
        elif trip_id.isdigit():
            form.initial["trip"] = get_object_or_404(form.fields["trip"].queryset, pk=trip_id).pk
        return render(request, self.template, {"form": form, "customer": customer, "survey": survey})

    def post(self, request, pk):
        customer = get_object_or_404(Customer, pk=pk)  # merged away: refused by the service, naming the survivor
        survey = self._survey(request, customer)
        form = ComplaintForm(request.POST, customer=customer)
        if form.is_valid():
            with errors_onto(form):
                complaint = services.complaint_log(actor=request.user, customer=customer, survey=survey,
                                                   **form.cleaned_data)
                messages.success(request, _("Complaint logged."))
                return redirect("complaint_detail", pk=complaint.pk)
        return render(request, self.template, {"form": form, "customer": customer, "survey": survey}, status=400)


# --- surveys --------------------------------------------------------------------------------------

class SurveyReportView(AgencyPage, View):
    """The agency's survey report; for complaint handlers and those who read reports."""

    def get(self, request):
        if not selectors.can_see_surveys(request.user):
            raise PermissionDenied
        form = PeriodForm(request.GET or None)
        date_from, date_to = form.period()
        report = selectors.survey_report(date_from=date_from, date_to=date_to)
        return render(request, "frontend/care/survey_report.html", {
            "form": form, "report": report, "can_handle": request.user.can(Cap.COMPLAINTS_HANDLE)})


class SurveyAnswerView(View):
    """The public page a customer reaches from the survey e-mail. No sign-in: the signed link is the key."""

    template = "frontend/care/survey_answer.html"

    def _survey(self, token):
        if current_agency() is None:
            raise Http404
        try:
            return services.survey_from_token(token)
        except services.InvalidSurveyLink:
            return None

    def _invalid(self, request):
        return render(request, "frontend/care/survey_invalid.html", {}, status=404)

    def get(self, request, token):
        survey = self._survey(token)
        if survey is None:
            return self._invalid(request)
        return render(request, self.template, {"survey": survey, "form": SurveyAnswerForm(),
                                               "agency": require_agency()})

    def post(self, request, token):
        survey = self._survey(token)
        if survey is None:
            return self._invalid(request)
        form = SurveyAnswerForm(request.POST)
        if form.is_valid() and not survey.answered_at:
            with errors_onto(form):
                try:
                    services.survey_answer(survey=survey, **form.cleaned_data)
                except services.SurveyAlreadyAnswered:
                    survey.answered_at = survey.answered_at or timezone.now()
                else:
                    return render(request, self.template, {"survey": survey, "thanks": True})
        if survey.answered_at:
            return render(request, self.template, {"survey": survey, "already": True}, status=409)
        return render(request, self.template, {"survey": survey, "form": form}, status=400)
