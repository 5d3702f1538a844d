"""Pipeline pages (R-SALE-1, 2, 6): the board, the list, a new lead, the opportunity with its moves,
owner and tasks, the managers' report, the task list, the pipeline settings, and the public
enquiry form an agency embeds on its own web site.

Thin views: every write goes through crm.pipeline.services, every non-trivial read through
crm.pipeline.selectors. Working leads needs ``pipeline.work``; choosing someone else's pipeline,
assigning and the report need ``pipeline.manage``; the settings need ``settings.manage``.
"""
from datetime import datetime, time as dt_time, timedelta
from functools import partial
from urllib.parse import urlencode

from csp.decorators import csp_replace
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from accounts.models import User
from accounts.roles import Cap
from caravan.forms import MoneyField, errors_onto
from caravan.tenancy import current_agency, require_agency
from crm.customers.models import Customer
from crm.pipeline import intake, selectors, services
from crm.pipeline.models import AssignmentRule, IntakeSettings, Opportunity, Stage, Task, Team
from crm.tiers.selectors import tiers_for

from .base import AgencyPage
from .customers import DATE_INPUT, _next_url

PER_PAGE = 50
LIST_FILTERS = ("owner", "stage", "source", "key", "created_from", "created_to", "q", "unassigned")
DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
MONEY_INPUT = forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.00"})


# --- helpers ----------------------------------------------------------------------------------------

def sellers():
    """Active colleagues who work leads: the owners one may assign or filter by."""
    people = User.objects.filter(is_active=True, is_operator=False).order_by("full_name", "email")
    return [u for u in people if u.can(Cap.PIPELINE_WORK)]


def seller_queryset():
    return User.objects.filter(pk__in=[u.pk for u in sellers()]).order_by("full_name", "email")


def _opportunity(pk) -> Opportunity:
    return get_object_or_404(Opportunity.objects.select_related("customer", "stage", "owner"), pk=pk)


def _task(request, pk) -> Task:
    """A task the user may change: their own, or anyone's for a manager. Otherwise not found."""
    task = get_object_or_404(Task.objects.select_related("customer", "opportunity", "owner"), pk=pk)
    if task.owner_id != request.user.pk and not request.user.can(Cap.PIPELINE_MANAGE):
        raise Http404
    return task


def whose(request) -> tuple[User | None, bool, str]:
    """Whose pipeline a page shows: one's own; a manager may choose ``?owner=<id>`` or ``?owner=all``.
    Returns (owner, everyone, the choice as given)."""
    choice = request.GET.get("owner", "").strip()
    if not request.user.can(Cap.PIPELINE_MANAGE):
        return request.user, False, ""
    if choice == "all":
        return None, True, choice
    if choice.isdigit():
        owner = User.objects.filter(pk=choice).first()
        if owner is not None:
            return owner, False, choice
    return request.user, False, ""


def _currency() -> str:
    return require_agency().currency


def _errors_to_messages(request, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


# --- forms ------------------------------------------------------------------------------------------

class MoveForm(forms.Form):
    stage = forms.ModelChoiceField(label=gettext_lazy("Move to"), queryset=Stage.objects.none(),
                                   error_messages={"required": gettext_lazy("Choose a stage."),
                                                   "invalid_choice": gettext_lazy("Choose a stage.")})
    lost_reason = forms.ChoiceField(label=gettext_lazy("Lost reason"), required=False,
                                    choices=[("", "—"), *Opportunity.LostReason.choices])
    lost_note = forms.CharField(label=gettext_lazy("Note"), max_length=300, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stage"].queryset = Stage.objects.filter(is_active=True)


class AssignForm(forms.Form):
    owner = forms.ModelChoiceField(label=gettext_lazy("Owner"), queryset=User.objects.none(),
                                   error_messages={"required": gettext_lazy("Choose a colleague.")})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = seller_queryset()


class OpportunityForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    destination = forms.CharField(label=gettext_lazy("Destination"), max_length=120, required=False)
    depart_on = forms.DateField(label=gettext_lazy("Departure"), required=False, widget=DATE_INPUT)
    return_on = forms.DateField(label=gettext_lazy("Return"), required=False, widget=DATE_INPUT)
    adults = forms.IntegerField(label=gettext_lazy("Adults"), min_value=1, max_value=99, initial=1)
    children = forms.IntegerField(label=gettext_lazy("Children"), min_value=0, max_value=99, initial=0)
    budget = MoneyField(label=gettext_lazy("Budget"), required=False, min_value=0, widget=MONEY_INPUT)
    value = MoneyField(label=gettext_lazy("Expected value"), min_value=0, widget=MONEY_INPUT)
    is_key = forms.BooleanField(label=gettext_lazy("Key opportunity"), required=False)
    message = forms.CharField(label=gettext_lazy("Enquiry"), required=False, widget=forms.Textarea(attrs={"rows": 3}))


class LeadForm(forms.Form):
    """A lead typed in by staff or the call center. Name/phone/e-mail only when no customer is chosen;
    the service checks them (and matches the customer on file by phone or e-mail)."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=200, required=False)
    phone = forms.CharField(label=gettext_lazy("Phone"), max_length=40, required=False,
                            widget=forms.TextInput(attrs={"type": "tel"}))
    email = forms.EmailField(label=gettext_lazy("E-mail"), required=False)
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200, required=False,
                            help_text=gettext_lazy("Left empty: the destination."))
    destination = forms.CharField(label=gettext_lazy("Destination"), max_length=120, required=False)
    depart_on = forms.DateField(label=gettext_lazy("Departure"), required=False, widget=DATE_INPUT)
    return_on = forms.DateField(label=gettext_lazy("Return"), required=False, widget=DATE_INPUT)
    adults = forms.IntegerField(label=gettext_lazy("Adults"), min_value=1, max_value=99, initial=1)
    children = forms.IntegerField(label=gettext_lazy("Children"), min_value=0, max_value=99, initial=0)
    budget = MoneyField(label=gettext_lazy("Budget"), required=False, min_value=0, widget=MONEY_INPUT)
    message = forms.CharField(label=gettext_lazy("Enquiry"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    source = forms.ChoiceField(label=gettext_lazy("Source"), choices=[
        (Opportunity.Source.CALL_CENTER, Opportunity.Source.CALL_CENTER.label),
        (Opportunity.Source.STAFF, Opportunity.Source.STAFF.label)])
    owner = forms.ModelChoiceField(label=gettext_lazy("Owner"), queryset=User.objects.none(), required=False,
                                   help_text=gettext_lazy("Left empty: the assignment rules decide."))
    take = forms.BooleanField(label=gettext_lazy("I take it myself"), required=False)

    def __init__(self, *args, can_assign: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if can_assign:
            self.fields["owner"].queryset = seller_queryset()
        else:
            del self.fields["owner"]


class TaskForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("What needs doing"), max_length=200)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Task.Kind.choices, initial=Task.Kind.FOLLOW_UP)
    due_at = forms.DateTimeField(label=gettext_lazy("Due"), widget=DATETIME_INPUT)
    remind_at = forms.DateTimeField(label=gettext_lazy("Remind me at"), required=False, widget=DATETIME_INPUT)
    owner = forms.ModelChoiceField(label=gettext_lazy("Owner"), queryset=User.objects.none(), required=False)
    notes = forms.CharField(label=gettext_lazy("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, can_assign: bool = False, with_kind: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if can_assign:
            self.fields["owner"].queryset = seller_queryset()
        else:
            del self.fields["owner"]
        if not with_kind:
            del self.fields["kind"]


def default_due() -> datetime:
    """Tomorrow at 10:00 in the agency's time zone."""
    return timezone.make_aware(datetime.combine(timezone.localdate() + timedelta(days=1), dt_time(10)))


class PeriodForm(forms.Form):
    start = forms.DateField(label=gettext_lazy("From"), widget=DATE_INPUT)
    end = forms.DateField(label=gettext_lazy("To"), widget=DATE_INPUT)

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", _("The end cannot be before the start."))
        return data


class StageForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=60, required=False)
    probability = forms.IntegerField(label=gettext_lazy("Win probability (%)"), min_value=0, max_value=100)
    position = forms.IntegerField(label=gettext_lazy("Position"), min_value=0, max_value=999)
    is_active = forms.BooleanField(label=gettext_lazy("In use"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():  # the settings table puts each row's fields outside its <form>
            field.widget.attrs["form"] = self.prefix


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "members"]
        widgets = {"members": forms.CheckboxSelectMultiple}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = seller_queryset()


class RuleForm(forms.ModelForm):
    class Meta:
        model = AssignmentRule
        fields = ["kind", "position", "destination", "team", "user", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = seller_queryset()



class IntakeForm(forms.ModelForm):
    class Meta:
        model = IntakeSettings
        fields = ["form_enabled", "form_thanks"]


class EnquiryForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Your name"), max_length=200)
    phone = forms.CharField(label=gettext_lazy("Phone"), max_length=40, required=False,
                            widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}))
    email = forms.EmailField(label=gettext_lazy("E-mail"), required=False,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    destination = forms.CharField(label=gettext_lazy("Where would you like to go?"), max_length=120, required=False)
    depart_on = forms.DateField(label=gettext_lazy("Departure"), required=False, widget=DATE_INPUT)
    return_on = forms.DateField(label=gettext_lazy("Return"), required=False, widget=DATE_INPUT)
    adults = forms.IntegerField(label=gettext_lazy("Adults"), min_value=1, max_value=99, initial=2)
    children = forms.IntegerField(label=gettext_lazy("Children"), min_value=0, max_value=99, initial=0)
    budget = MoneyField(label=gettext_lazy("Budget"), required=False, min_value=0, widget=MONEY_INPUT)
    message = forms.CharField(label=gettext_lazy("Anything else we should know?"), max_length=3000, required=False,
                              widget=forms.Textarea(attrs={"rows": 4}))

    def clean(self):
        data = super().clean()
        if not (data.get("phone") or "").strip() and not (data.get("email") or "").strip() \
                and "email" not in self.errors:
            self.add_error("phone", _("Give a phone number or an e-mail address."))
        if data.get("depart_on") and data.get("return_on") and data["return_on"] < data["depart_on"]:
            self.add_error("return_on", _("The return cannot be before the departure."))
        return data


# --- the board and the list -------------------------------------------------------------------------

BOARD_CARDS = 20  # cards per column on the board; the column's count and value cover all of it
LEADS_SHOWN = 8  # waiting leads above the board, oldest first; the rest are on the list


def with_tiers(opportunities):
    """Give each opportunity ``customer_tier`` (the customer's service tier, for its badge): one query."""
    opportunities = list(opportunities)
    tiers = tiers_for(o.customer_id for o in opportunities)
    for o in opportunities:
        o.customer_tier = tiers.get(o.customer_id)
    return opportunities


class BoardView(AgencyPage, View):
    """The kanban. Two queries plus one per column (selectors.board); nothing is fetched per card."""

    required_cap = Cap.PIPELINE_WORK

    def get(self, request):
        owner, everyone, choice = whose(request)
        columns = selectors.board(owner=owner, everyone=everyone, cards=BOARD_CARDS)
        now = timezone.now()
        stages = [column["stage"] for column in columns]
        # Each card's move menu lists the stages the move service allows from its column: built once per
        # column, not once per card (at 2,000 opportunities the per-card loops were most of the page's time).
        for column in columns:
            column["move_options"] = format_html_join(
                "", '<option value="{}" data-kind="{}">{}</option>',
                ((s.pk, s.kind, str(s)) for s in services.move_targets(column["stage"], stages)))
            for item in column["items"]:
                item.days_in_stage = (now - item.stage_changed_at).days
        leads = list(selectors.leads_waiting(limit=LEADS_SHOWN))
        with_tiers([*leads, *(item for column in columns for item in column["items"])])
        can_manage = request.user.can(Cap.PIPELINE_MANAGE)
        return render(request, "frontend/pipeline/board.html", {
            "columns": columns, "stages": stages, "leads": leads,
            "leads_total": Opportunity.objects.filter(owner__isnull=True, closed_at__isnull=True).count(),
            "lost_options": format_html_join("", '<option value="{}">{}</option>', Opportunity.LostReason.choices),
            "currency": _currency(),
            "can_manage": can_manage, "sellers": sellers() if can_manage else [], "choice": choice,
            "owner": owner, "everyone": everyone, "back": request.get_full_path()})


def list_filters(request) -> tuple[dict, dict]:
    """The list's filters as typed, and as selectors.opportunities takes them."""
    raw = {key: request.GET.get(key, "").strip() for key in LIST_FILTERS}
    owner, everyone, choice = whose(request)
    raw["owner"] = choice
    given = {"owner": owner, "everyone": everyone, "unassigned": bool(raw["unassigned"]), "q": raw["q"]}
    if raw["stage"].isdigit():
        given["stage"] = Stage.objects.filter(pk=raw["stage"]).first()
    if raw["source"] in Opportunity.Source.values:
        given["source"] = raw["source"]
    if raw["key"] in ("yes", "no"):
        given["key"] = raw["key"] == "yes"
    for name in ("created_from", "created_to"):
        try:
            given[name] = forms.DateField().clean(raw[name]) if raw[name] else None
        except ValidationError:
            raw[name] = ""
    return raw, given


class OpportunityListView(AgencyPage, View):
    required_cap = Cap.PIPELINE_WORK

    def get(self, request):
        raw, given = list_filters(request)
        found = selectors.opportunities(**given)
        totals = found.aggregate(count=Count("pk"), value=Sum("value"))
        page = Paginator(found.order_by("-created_at", "-pk"), PER_PAGE).get_page(request.GET.get("page"))
        with_tiers(page)
        can_manage = request.user.can(Cap.PIPELINE_MANAGE)
        return render(request, "frontend/pipeline/list.html", {
            "page": page, "filters": raw, "query": urlencode({k: v for k, v in raw.items() if v}),
            "totals": totals, "currency": _currency(), "stages": Stage.objects.all(),
            "sources": Opportunity.Source.choices, "can_manage": can_manage,
            "sellers": sellers() if can_manage else []})


# --- a new lead -------------------------------------------------------------------------------------

class OpportunityCreateView(AgencyPage, View):
    """A lead typed in by staff, or by the call center from the screen pop (``?customer=`` or ``?phone=``)."""

    required_cap = Cap.PIPELINE_WORK

    def _customer(self, request) -> Customer | None:
        pk = request.POST.get("customer") or request.GET.get("customer") or ""
        if not pk.isdigit():
            return None
        return get_object_or_404(Customer, pk=pk)  # merged away: refused by the service, naming the survivor

    def _render(self, request, form, customer, status=200):
        return render(request, "frontend/pipeline/new.html", {"form": form, "customer": customer}, status=status)

    def get(self, request):
        # The source is only a default; the screen pop asks for "call center".
        source = request.GET.get("source")
        source = source if source in (Opportunity.Source.CALL_CENTER, Opportunity.Source.STAFF) else Opportunity.Source.STAFF
        initial = {"source": source, "phone": request.GET.get("phone", "")}
        form = LeadForm(initial=initial, can_assign=request.user.can(Cap.PIPELINE_MANAGE))
        return self._render(request, form, self._customer(request))

    def post(self, request):
        customer = self._customer(request)
        form = LeadForm(request.POST, can_assign=request.user.can(Cap.PIPELINE_MANAGE))
        if form.is_valid():
            data = form.cleaned_data
            owner = data.get("owner") or (request.user if data["take"] else None)
            contact = {} if customer else {"name": data["name"], "phone": data["phone"], "email": data["email"]}
            with errors_onto(form):
                opportunity = services.lead_intake(
                    source=data["source"], customer=customer, actor=request.user, owner=owner, title=data["title"],
                    destination=data["destination"], depart_on=data["depart_on"], return_on=data["return_on"],
                    adults=data["adults"], children=data["children"], budget=data["budget"], message=data["message"],
                    **contact)
                messages.success(request, _("Lead for %(name)s created.") % {"name": opportunity.customer.name})
                return redirect("opportunity_detail", pk=opportunity.pk)
        return self._render(request, form, customer, 400)


# --- the opportunity --------------------------------------------------------------------------------

def detail_context(request, opportunity: Opportunity, **given) -> dict:
    user = request.user
    edit_initial = {name: getattr(opportunity, name) for name in services.OPPORTUNITY_EDITABLE}
    task_initial = {"due_at": default_due(), "owner": opportunity.owner_id}
    return {
        "opportunity": opportunity, "customer": opportunity.customer, "currency": opportunity.currency,
        "customer_tier": tiers_for([opportunity.customer_id]).get(opportunity.customer_id),
        "history": opportunity.stage_changes.select_related("from_stage", "to_stage", "actor"),
        "tasks": opportunity.tasks.select_related("owner", "customer").order_by("done_at", "due_at", "pk"),
        "now": timezone.now(), "can_manage": user.can(Cap.PIPELINE_MANAGE),
        "move_form": given.get("move_form") or MoveForm(),
        "stages": services.move_targets(opportunity.stage, Stage.objects.filter(is_active=True)),
        "assign_form": given.get("assign_form") or AssignForm(initial={"owner": opportunity.owner_id}),
        "edit_form": given.get("edit_form") or OpportunityForm(initial=edit_initial),
        "task_form": given.get("task_form") or TaskForm(initial=task_initial,
                                                        can_assign=user.can(Cap.PIPELINE_MANAGE)),
        "open_form": given.get("open_form", ""),
    }


def _detail(request, opportunity, status=200, **given):
    return render(request, "frontend/pipeline/detail.html", detail_context(request, opportunity, **given), status=status)


class OpportunityDetailView(AgencyPage, View):
    required_cap = Cap.PIPELINE_WORK

    def get(self, request, pk):
        return _detail(request, _opportunity(pk))


class OpportunityMoveView(AgencyPage, View):
    """From the board (``next`` given: errors as a message, back to the board) or the opportunity page."""

    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk):
        opportunity = _opportunity(pk)
        back = _next_url(request, "")
        form = MoveForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            with errors_onto(form):
                moved = services.opportunity_move(actor=request.user, opportunity=opportunity, to=data["stage"],
                                                  lost_reason=data["lost_reason"], lost_note=data["lost_note"])
                messages.success(request, _("“%(title)s” moved to %(stage)s.") % {"title": moved.title,
                                                                                   "stage": moved.stage})
                return redirect(back or reverse("opportunity_detail", args=[pk]))
        if back:
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return redirect(back)
        return _detail(request, _opportunity(pk), 400, move_form=form, open_form="move")


class OpportunityTakeView(AgencyPage, View):
    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk):
        opportunity = _opportunity(pk)
        try:
            services.opportunity_take(actor=request.user, opportunity=opportunity)
        except ValidationError as exc:  # AlreadyTaken names who has it
            _errors_to_messages(request, exc)
        else:
            messages.success(request, _("The lead is yours."))
        return redirect(_next_url(request, reverse("opportunity_detail", args=[pk])))


class OpportunityAssignView(AgencyPage, View):
    required_cap = Cap.PIPELINE_MANAGE

    def post(self, request, pk):
        opportunity = _opportunity(pk)
        form = AssignForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.opportunity_assign(actor=request.user, opportunity=opportunity, owner=form.cleaned_data["owner"])
                messages.success(request, _("Assigned to %(name)s.") % {"name": form.cleaned_data["owner"]})
                return redirect(_next_url(request, reverse("opportunity_detail", args=[pk])))
        return _detail(request, opportunity, 400, assign_form=form, open_form="assign")


class OpportunityEditView(AgencyPage, View):
    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk):
        opportunity = _opportunity(pk)
        form = OpportunityForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.opportunity_update(actor=request.user, opportunity=opportunity, **form.cleaned_data)
                messages.success(request, _("Saved."))
                return redirect("opportunity_detail", pk=pk)
        return _detail(request, _opportunity(pk), 400, edit_form=form, open_form="edit")


class OpportunityTaskAddView(AgencyPage, View):
    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk):
        opportunity = _opportunity(pk)
        can_assign = request.user.can(Cap.PIPELINE_MANAGE)
        form = TaskForm(request.POST, can_assign=can_assign)
        if form.is_valid():
            data = form.cleaned_data
            owner = data.get("owner") or opportunity.owner or request.user
            with errors_onto(form):
                services.task_create(actor=request.user, title=data["title"], owner=owner, due_at=data["due_at"],
                                     kind=data["kind"], remind_at=data["remind_at"], notes=data["notes"],
                                     customer=opportunity.customer, opportunity=opportunity)
                messages.success(request, _("Task added."))
                return redirect(reverse("opportunity_detail", args=[pk]) + "#tasks")
        return _detail(request, opportunity, 400, task_form=form, open_form="task")


# --- the managers' report ---------------------------------------------------------------------------

class ReportView(AgencyPage, View):
    required_cap = Cap.PIPELINE_MANAGE

    def get(self, request):
        today = timezone.localdate()
        params = {"start": request.GET.get("start") or today - timedelta(days=90),
                  "end": request.GET.get("end") or today}
        form = PeriodForm(params)
        owner = None
        if request.GET.get("owner", "").isdigit():
            owner = User.objects.filter(pk=request.GET["owner"]).first()
        context = {"form": form, "owner": owner, "sellers": sellers(), "currency": _currency()}
        if not form.is_valid():
            return render(request, "frontend/pipeline/report.html", context, status=400)
        period = form.cleaned_data
        context.update(conversion=selectors.conversion(start=period["start"], end=period["end"], owner=owner),
                       people=selectors.by_salesperson())
        return render(request, "frontend/pipeline/report.html", context)


# --- tasks ------------------------------------------------------------------------------------------

class TaskListView(AgencyPage, View):
    required_cap = Cap.PIPELINE_WORK

    def get(self, request):
        everyone = bool(request.GET.get("everyone")) and request.user.can(Cap.PIPELINE_MANAGE)
        now = timezone.now()
        _start, end_of_today = selectors.day_bounds(timezone.localdate())
        groups = {"overdue": [], "today": [], "upcoming": []}
        for task in selectors.tasks_for(user=request.user, everyone=everyone)[:500]:
            key = "overdue" if task.due_at < now else "today" if task.due_at < end_of_today else "upcoming"
            groups[key].append(task)
        return render(request, "frontend/pipeline/tasks.html", {
            "groups": groups, "everyone": everyone, "can_manage": request.user.can(Cap.PIPELINE_MANAGE),
            "overdue_by_owner": selectors.overdue_by_owner() if everyone else [],
            "done": selectors.tasks_for(user=request.user, everyone=everyone, done=True)[:10]})


class TaskDoneView(AgencyPage, View):
    """Tick a task off (or back on). With htmx, answers the task's row."""

    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk):
        task = services.task_done(actor=request.user, task=_task(request, pk), done=request.POST.get("done", "1") != "0")
        if request.htmx:
            return render(request, "frontend/pipeline/_task_row.html", {"task": task, "now": timezone.now(),
                                                                         "everyone": request.POST.get("everyone")})
        return redirect(_next_url(request, reverse("task_list")))


class TaskCreateView(AgencyPage, View):
    required_cap = Cap.PIPELINE_WORK

    def _customer(self, request):
        pk = request.POST.get("customer") or request.GET.get("customer") or ""
        return get_object_or_404(Customer, pk=pk) if pk.isdigit() else None

    def _render(self, request, form, customer, status=200):
        return render(request, "frontend/pipeline/task_form.html", {"form": form, "customer": customer}, status=status)

    def get(self, request):
        form = TaskForm(initial={"due_at": default_due(), "owner": request.user.pk},
                        can_assign=request.user.can(Cap.PIPELINE_MANAGE))
        return self._render(request, form, self._customer(request))

    def post(self, request):
        customer = self._customer(request)
        form = TaskForm(request.POST, can_assign=request.user.can(Cap.PIPELINE_MANAGE))
        if form.is_valid():
            data = form.cleaned_data
            with errors_onto(form):
                services.task_create(actor=request.user, title=data["title"], owner=data.get("owner") or request.user,
                                     due_at=data["due_at"], kind=data["kind"], remind_at=data["remind_at"],
                                     notes=data["notes"], customer=customer)
                messages.success(request, _("Task added."))
                return redirect(_next_url(request, reverse("task_list")))
        return self._render(request, form, customer, 400)


class TaskEditView(AgencyPage, View):
    required_cap = Cap.PIPELINE_WORK

    def _form(self, request, data=None, task=None):
        initial = {name: getattr(task, name) for name in ("due_at", "remind_at")} if task else None
        if task:
            initial["title"] = task.display_title  # a system title in the reader's language
            initial["notes"] = task.display_notes  # and its notes
            initial["owner"] = task.owner_id
        return TaskForm(data, initial=initial, can_assign=request.user.can(Cap.PIPELINE_MANAGE), with_kind=False)

    def get(self, request, pk):
        task = _task(request, pk)
        return render(request, "frontend/pipeline/task_form.html", {"form": self._form(request, task=task), "task": task})

    def post(self, request, pk):
        task = _task(request, pk)
        form = self._form(request, request.POST)
        if form.is_valid():
            fields = dict(form.cleaned_data)
            if not fields.get("owner"):
                fields.pop("owner", None)
            with errors_onto(form):
                services.task_update(actor=request.user, task=task, **fields)
                messages.success(request, _("Saved."))
                return redirect("task_list")
        return render(request, "frontend/pipeline/task_form.html", {"form": form, "task": task}, status=400)


# --- settings ---------------------------------------------------------------------------------------

class PipelineSettingsView(AgencyPage, View):
    """Stages, teams, assignment rules, the enquiry form and the webhook secret. Each form posts an
    ``action``; a form with errors is shown again with them (400). The webhook secret is shown once,
    on the answer to "Rotate", and never again."""

    required_cap = Cap.SETTINGS_MANAGE

    def context(self, **given) -> dict:
        intake_row = services.intake_settings()
        stages = list(Stage.objects.all())
        return {
            "stage_forms": [(stage, given.get(f"stage-{stage.pk}") or self.stage_form(stage)) for stage in stages],
            "new_stage_form": given.get("stage-new") or StageForm(prefix="stage-new", initial={
                "probability": 20, "position": max((s.position for s in stages), default=0) + 1, "is_active": True}),
            "team_forms": [(team, given.get(f"team-{team.pk}") or TeamForm(instance=team, prefix=f"team-{team.pk}"))
                           for team in Team.objects.prefetch_related("members")],
            "new_team_form": given.get("team-new") or TeamForm(prefix="team-new"),
            "rule_forms": [(rule, given.get(f"rule-{rule.pk}") or RuleForm(instance=rule, prefix=f"rule-{rule.pk}"))
                           for rule in AssignmentRule.objects.select_related("team", "user")],
            "new_rule_form": given.get("rule-new") or RuleForm(prefix="rule-new"),
            "intake_form": given.get("intake") or IntakeForm(instance=intake_row),
            "intake": intake_row, "has_secret": bool(intake_row.webhook_secret),
            "new_secret": given.get("new_secret"),
            "enquiry_url": require_agency().url(reverse("enquiry_form")),
        }

    @staticmethod
    def stage_form(stage: Stage, data=None) -> StageForm:
        form = StageForm(data, prefix=f"stage-{stage.pk}", initial={
            "name": stage.name, "probability": stage.probability, "position": stage.position,
            "is_active": stage.is_active})
        form.fields["name"].widget.attrs["placeholder"] = str(stage)  # a default stage shows its name translated
        return form

    def get(self, request):
        return render(request, "frontend/pipeline/settings.html", self.context())

    def post(self, request):
        action, _sep, target = request.POST.get("action", "").partition(":")
        handler = {"stage": self.stage, "team": self.team, "rule": self.rule, "intake": self.intake,
                   "rotate": self.rotate}.get(action)
        if handler is None:
            raise Http404
        return handler(request, target)

    def _saved(self):
        messages.success(self.request, _("Saved."))
        return redirect("pipeline_settings")

    def _again(self, request, key, form):
        return render(request, "frontend/pipeline/settings.html", self.context(**{key: form}), status=400)

    def _submit(self, request, key, form, save):
        """Validate the row's form, hand it to the service, and show the service's errors on it."""
        if form.is_valid():
            with errors_onto(form):
                save(**form.cleaned_data)
                return self._saved()
        return self._again(request, key, form)

    def stage(self, request, target):
        stage = get_object_or_404(Stage, pk=target) if target != "new" else None
        key = f"stage-{target}"
        form = self.stage_form(stage, request.POST) if stage else StageForm(request.POST, prefix=key)
        return self._submit(request, key, form, partial(services.stage_save, actor=request.user, stage=stage))

    def team(self, request, target):
        team = get_object_or_404(Team, pk=target) if target != "new" else None
        if team is not None and request.POST.get("delete"):
            services.team_delete(actor=request.user, team=team)
            return self._saved()
        key = f"team-{target}"
        return self._submit(request, key, TeamForm(request.POST, instance=team, prefix=key),
                            partial(services.team_save, actor=request.user, team=team))

    def rule(self, request, target):
        rule = get_object_or_404(AssignmentRule, pk=target) if target != "new" else None
        if rule is not None and request.POST.get("delete"):
            services.rule_delete(actor=request.user, rule=rule)
            return self._saved()
        key = f"rule-{target}"
        return self._submit(request, key, RuleForm(request.POST, instance=rule, prefix=key),
                            partial(services.rule_save, actor=request.user, rule=rule))

    def intake(self, request, target):
        return self._submit(request, "intake", IntakeForm(request.POST, instance=services.intake_settings()),
                            partial(services.intake_settings_update, actor=request.user))

    def rotate(self, request, target):
        secret = services.webhook_secret_rotate(actor=request.user)
        messages.success(request, _("A new webhook secret was made. The old one no longer works."))
        response = render(request, "frontend/pipeline/settings.html", self.context(new_secret=secret))
        response["Cache-Control"] = "no-store"
        return response


# --- the public enquiry form ------------------------------------------------------------------------

def _agency_or_404():
    if current_agency() is None:
        raise Http404


# The enquiry form is made to sit in an iframe on the agency's own web site, wherever that is.
EMBEDDABLE = {"frame-ancestors": None}


def _thanks(request):
    row = services.intake_settings()
    return render(request, "frontend/pipeline/enquiry_thanks.html", {"thanks": row.form_thanks})


@csrf_exempt
@xframe_options_exempt
@csp_replace(EMBEDDABLE)
def enquiry_form(request):
    """The agency's public enquiry form, embeddable in an iframe on the agency's own web site.

    No CSRF token: inside a third-party iframe the browser may withhold our cookies (SameSite=Lax),
    so a token check would refuse real visitors. A forged cross-site post gains nothing here — it
    acts for no signed-in user, it only files an enquiry — and abuse is held off by the signed time
    stamp (too fast or too old is refused), the honeypot field and the per-address rate limit.
    Bots are answered as if accepted, so they learn nothing.
    """
    _agency_or_404()
    if request.method != "POST":
        return render(request, "frontend/pipeline/enquiry.html", {"form": EnquiryForm(), "stamp": intake.form_stamp()})
    if not services.intake_settings().form_enabled:
        return render(request, "frontend/pipeline/enquiry.html", {"closed": intake.form_unavailable_message()})
    if intake.form_rate_limited(intake.client_address(request.META, settings.PROXY_COUNT)):
        return render(request, "frontend/pipeline/enquiry.html", {"limited": True}, status=429)
    if intake.form_spam_reason(stamp=request.POST.get("stamp", ""), honeypot=request.POST.get("website", "")):
        return _thanks(request)
    form = EnquiryForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        with errors_onto(form):
            services.lead_intake(source=Opportunity.Source.WEBSITE_FORM, name=data["name"], phone=data["phone"],
                                 email=data["email"], destination=data["destination"], depart_on=data["depart_on"],
                                 return_on=data["return_on"], adults=data["adults"], children=data["children"],
                                 budget=data["budget"], message=data["message"],
                                 language=translation.get_language() or "")
            return redirect("enquiry_thanks")
    return render(request, "frontend/pipeline/enquiry.html", {"form": form, "stamp": request.POST.get("stamp", "")},
                  status=400)


@xframe_options_exempt
@csp_replace(EMBEDDABLE)
def enquiry_thanks(request):
    _agency_or_404()
    return _thanks(request)
